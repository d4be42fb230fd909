"""QuickBooks' version taken into the TMS, when a person says QuickBooks is right.

Someone changed fields we send (amounts, lines, dates, the customer, an email) in QuickBooks;
the clerk compared both versions on the page and chose QuickBooks'. Each type's hook here turns
QuickBooks' copy into a change of the TMS record through the finance services, so every guard
of a finance edit applies (a customer cannot move off an invoice with payments, an email must
be valid). What the TMS cannot take (an item no charge code maps to, a payment's amount) is
refused with the reason, and nothing changes. The hooks are registered on the mappers
(`Mapper.adopt`), like `pull`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from finance.models import ChargeCode, CreditMemo, Customer, Invoice, Payment
from finance.services import (
    CENT,
    ChargeSetSpec,
    LineSpec,
    code_update,
    credit_memo_update,
    customer_update,
    invoice_replace_charges,
    invoice_update,
    payment_update,
)
from sync.services.client import QboObject

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _text(obj: QboObject | None, key: str) -> str:
    return str((obj or {}).get(key) or "").strip()


def _date(value: Any, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValidationError(f"QuickBooks' {what} {value!r} is not a date.") from None


def _money(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0)).quantize(CENT)
    except InvalidOperation:
        raise ValidationError(f"QuickBooks' {what} {value!r} is not an amount.") from None


def _sales_lines(obj: QboObject) -> list[QboObject]:
    return [
        line for line in obj.get("Line") or [] if line.get("DetailType") == "SalesItemLineDetail"
    ]


def _party(model_company_id: int, obj: QboObject, current: Customer) -> Customer:
    """The TMS customer QuickBooks' CustomerRef names (it must be one we hold)."""
    qb_id = str((obj.get("CustomerRef") or {}).get("value") or "")
    if not qb_id or qb_id == current.qb_id:
        return current
    found = Customer.objects.filter(company_id=model_company_id, qb_id=qb_id).first()
    if found is None:
        name = (obj.get("CustomerRef") or {}).get("name") or qb_id
        raise ValidationError(
            f"QuickBooks moved it to customer {name}, which no TMS customer is linked to. Link "
            "or create that customer in the TMS first."
        )
    return found


def _charge_codes(company_id: int) -> dict[str, ChargeCode]:
    codes = ChargeCode.objects.filter(company_id=company_id).exclude(qb_id="")
    return {code.qb_id: code for code in codes}


def _line(
    number: int, line: QboObject, codes: dict[str, ChargeCode]
) -> tuple[ChargeCode, Decimal, Decimal]:
    """(charge code, quantity, rate) of QuickBooks line `number`."""
    detail = line.get("SalesItemLineDetail") or {}
    item = detail.get("ItemRef") or {}
    code = codes.get(str(item.get("value") or ""))
    if code is None:
        raise ValidationError(
            f"QuickBooks line {number} uses item {item.get('name') or item.get('value')}, which "
            "no charge code is mapped to. Map it under Finance settings → Charge codes first."
        )
    amount = _money(line.get("Amount"), f"line {number} amount")
    quantity = _money(detail.get("Qty") or 1, f"line {number} quantity")
    rate = _money(
        detail.get("UnitPrice") if detail.get("UnitPrice") is not None else amount, "rate"
    )
    if quantity <= 0 or (quantity * rate).quantize(CENT) != amount:
        quantity, rate = Decimal("1"), amount  # the amount is what is billed
    return code, quantity, rate


def invoice_adopt(invoice: Invoice, obj: QboObject, *, user: User | None) -> None:
    codes = _charge_codes(invoice.company_id)
    sets = list(invoice.charge_sets.select_related("load").prefetch_related("lines"))
    if not sets:
        raise ValidationError(f"{invoice} has no load to put QuickBooks' lines on.")
    ours = [(charge_set, line) for charge_set in sets for line in charge_set.lines.all()]
    specs = {cs.pk: ChargeSetSpec(load=cs.load, label=cs.label) for cs in sets}
    for number, line in enumerate(_sales_lines(obj), 1):
        code, quantity, rate = _line(number, line, codes)
        # Line n stays on the load line n was on (lines QuickBooks added go on the last load);
        # its note stays when it is still the same charge.
        charge_set, old = ours[number - 1] if number <= len(ours) else (sets[-1], None)
        note = old.note if old is not None and old.charge_code_id == code.pk else ""
        specs[charge_set.pk].lines.append(
            LineSpec(charge_code=code, rate=rate, quantity=quantity, note=note)
        )
    wanted = [(cs, spec_line) for cs, spec in specs.items() for spec_line in spec.lines]
    held = [
        (cs.pk, (line.charge_code_id, line.quantity, line.rate, line.note)) for cs, line in ours
    ]
    if [(cs, (s.charge_code.pk, s.quantity, s.rate, s.note)) for cs, s in wanted] != held:
        invoice_replace_charges(
            invoice=invoice,
            charge_sets=[spec for spec in specs.values() if spec.lines],
            user=user,
            confirm_conflict=True,  # QuickBooks' own payments fit QuickBooks' own total
        )
    fields: dict[str, Any] = {"customer": _party(invoice.company_id, obj, invoice.customer)}
    fields["invoice_date"] = _date(obj.get("TxnDate"), "invoice date") or invoice.invoice_date
    fields["due_date"] = _date(obj.get("DueDate"), "due date")
    fields["memo"] = _text(obj, "PrivateNote")[:1000]
    invoice_update(invoice=invoice, user=user, confirm_conflict=True, **fields)


def customer_adopt(customer: Customer, obj: QboObject, *, user: User | None) -> None:
    address = obj.get("BillAddr") or {}
    fields: dict[str, Any] = {
        "display_name": _text(obj, "DisplayName") or customer.display_name,
        "company_name": _text(obj, "CompanyName")[:100],
        "billing_email": _text(obj.get("PrimaryEmailAddr"), "Address"),
        "phone": _text(obj.get("PrimaryPhone"), "FreeFormNumber")[:30],
        "is_active": bool(obj.get("Active", True)),
    }
    if address or customer.address_line1:
        fields |= {
            "address_line1": _text(address, "Line1")[:200],
            "city": _text(address, "City")[:100],
            "state": _text(address, "CountrySubDivisionCode")[:40],
            "postal_code": _text(address, "PostalCode")[:20],
            "country": _text(address, "Country")[:40] or customer.country,
        }
    customer_update(customer=customer, **fields)


def item_adopt(code: ChargeCode, obj: QboObject, *, user: User | None) -> None:
    code_update(
        code=code,
        name=_text(obj, "Name")[:100] or code.name,
        description=_text(obj, "Description")[:400],
        default_rate=_money(obj.get("UnitPrice"), "unit price"),
        is_active=bool(obj.get("Active", True)),
    )


def payment_adopt(payment: Payment, obj: QboObject, *, user: User | None) -> None:
    applied = {
        str(a.invoice.qb_id): a.amount for a in payment.applications.select_related("invoice")
    }
    theirs: dict[str, Decimal] = {}
    for line in obj.get("Line") or []:
        for linked in line.get("LinkedTxn") or []:
            key = str(linked.get("TxnId"))
            theirs[key] = theirs.get(key, Decimal(0)) + _money(line.get("Amount"), "amount")
    total = _money(obj.get("TotalAmt"), "payment amount")
    if total != payment.amount or theirs != applied:
        raise ValidationError(
            f"QuickBooks changed the amount or the invoices of {payment} ({total}). A payment's "
            "amount and invoices are fixed once entered in the TMS: overwrite QuickBooks, or clear "
            "this one and enter the payment again as QuickBooks has it."
        )
    payment_update(
        payment=payment,
        payment_date=_date(obj.get("TxnDate"), "payment date") or payment.payment_date,
        reference_number=_text(obj, "PaymentRefNum")[:40],
    )


def credit_memo_adopt(memo: CreditMemo, obj: QboObject, *, user: User | None) -> None:
    codes = _charge_codes(memo.company_id)
    ours = [(line.charge_code_id, line.amount) for line in memo.lines.all()]
    theirs = []
    for number, line in enumerate(_sales_lines(obj), 1):
        code, quantity, rate = _line(number, line, codes)
        theirs.append((code.pk, (quantity * rate).quantize(CENT)))
    if theirs != ours:
        raise ValidationError(
            f"QuickBooks changed the lines of {memo}. Credit memo lines cannot be rewritten from "
            "QuickBooks yet: overwrite QuickBooks, or clear this one and issue the credit again."
        )
    credit_memo_update(
        credit_memo=memo,
        customer=_party(memo.company_id, obj, memo.customer),
        memo_date=_date(obj.get("TxnDate"), "credit memo date") or memo.memo_date,
    )
