"""Business operations on finance records. Every change that must reach QuickBooks goes
through `record_mark_changed`, which bumps `version` and makes the record PENDING."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import F, Q, QuerySet, Sum
from django.forms.models import model_to_dict

from finance.models import (
    Bill,
    ChargeCode,
    ChargeLine,
    ChargeSet,
    Company,
    CreditMemo,
    CreditMemoLine,
    Customer,
    FinanceSettings,
    Invoice,
    InvoiceAttachment,
    Load,
    ManualAction,
    Membership,
    PayCode,
    Payment,
    PaymentApplication,
    SyncedRecord,
)
from finance.registry import RECORD_TYPES
from finance.signals import records_changed, sweep_wanted
from finance.syncstate import (
    FRESH_START,
    SYNC_OFF_CODE,
    SyncStatus,
    move,
    sources_for,
    transition,
)
from finance.validators import money, validate_business_date

if TYPE_CHECKING:
    from django.contrib.auth.models import User

CENT = Decimal("0.01")
ModelT = TypeVar("ModelT", bound=models.Model)
RecordT = TypeVar("RecordT", bound=SyncedRecord)


class QuickBooksConflict(ValidationError):
    """The change contradicts money already applied in QuickBooks; needs explicit confirmation."""


def company_get_default() -> Company:
    company, _ = Company.objects.get_or_create(name="PortPro Demo Trucking")
    finance_settings_get(company=company)
    return company


def company_get(*, name: str = "") -> Company:
    """A tenant by its exact name (the default company without one); refused when unknown."""
    if not name:
        return company_get_default()
    company = Company.objects.filter(name=name).first()
    if company is None:
        raise ValidationError(f"No company named {name!r}: create it with tenant_create.")
    return company


@transaction.atomic
def tenant_ensure(*, name: str) -> tuple[Company, bool]:
    """A tenant with its finance settings (idempotent: the same name is the same tenant)."""
    clean = " ".join(name.split())
    if not clean:
        raise ValidationError("A company needs a name.")
    company, created = Company.objects.get_or_create(name=clean)
    finance_settings_get(company=company)
    return company, created


@transaction.atomic
def membership_ensure(
    *, company: Company, username: str, password: str, role: str
) -> tuple[User, bool]:
    """A user of this tenant with this role (its Django group too); the password is set as
    given. Support users are staff (they reach admin, every tenant)."""
    from django.contrib.auth.models import Group
    from django.contrib.auth.models import User as UserModel

    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role {role!r}: finance or support.")
    if not username.strip() or not password:
        raise ValidationError("Give USER:PASSWORD.")
    user, created = UserModel.objects.get_or_create(username=username.strip())
    user.set_password(password)
    user.is_staff = user.is_staff or role == Membership.Role.SUPPORT
    user.save()
    user.groups.add(Group.objects.get_or_create(name=Membership.Role(role).label)[0])
    Membership.objects.update_or_create(user=user, company=company, defaults={"role": role})
    return user, created


def finance_settings_get(*, company: Company) -> FinanceSettings:
    settings_row, _ = FinanceSettings.objects.get_or_create(
        company=company,
        defaults={"description_fields": ["container", "po", "charge_note"]},
    )
    return settings_row


@transaction.atomic
def finance_settings_update(
    *, settings_row: FinanceSettings, fields: dict[str, Any], user: User | None
) -> FinanceSettings:
    """Save a settings section, all or nothing, with a ManualAction holding what changed."""
    row = FinanceSettings.objects.select_for_update().get(pk=settings_row.pk)
    changed = {
        name: (getattr(row, name), value)
        for name, value in fields.items()
        if getattr(row, name) != value
    }
    if not changed:
        return row
    for name, (_, value) in changed.items():
        setattr(row, name, value)
    row.updated_by = user
    row.full_clean()
    row.save(update_fields=[*changed, "updated_by", "updated_at"])
    _resume_switched_on(row, [name for name, (old, new) in changed.items() if new and not old])
    if "attach_document_kinds" in changed:
        before, after = changed["attach_document_kinds"]
        _resume_document_kinds(row, set(after or []) - set(before or []))
    ManualAction.objects.create(
        kind=ManualAction.Kind.SETTINGS,
        record_type="settings",
        record_id=row.pk,
        user=user,
        before={k: old for k, (old, _) in changed.items()},
        after={k: new for k, (_, new) in changed.items()},
    )
    return row


def _resume_switched_on(row: FinanceSettings, switched_on: list[str]) -> None:
    """A record type switched on again: the records skipped while it was off go back in the
    queue (nothing stays "skipped" for good), and a sweep sends them."""
    for rt in RECORD_TYPES.values():
        if rt.settings_toggle and rt.settings_toggle in switched_on:
            _resume_skipped(
                rt.model.objects.filter(company_id=row.company_id, last_error_code=SYNC_OFF_CODE)
            )


def _resume_document_kinds(row: FinanceSettings, kinds: set[str]) -> None:
    """A document kind ticked again: its attachments skipped while it was unticked go back in
    the queue, as a record type switched on does. (Invoices sent before it was ever ticked
    are not attached after the fact: only their new documents are.)"""
    if kinds:
        _resume_skipped(
            InvoiceAttachment.objects.filter(
                company_id=row.company_id, qb_id="", document__kind__in=sorted(kinds)
            )
        )


def _resume_skipped(records: QuerySet[Any]) -> None:
    """Skipped records whose reason to be skipped is gone: back in the queue, and a sweep."""
    if move(
        records,
        SyncStatus.PENDING,
        how="type_on",
        sources=[SyncStatus.SKIPPED],
        last_error_code="",
        last_error_message="",
        next_retry_at=None,
        attempts=0,
    ):
        transaction.on_commit(lambda: sweep_wanted.send(sender=Company))


def _announce(records: Iterable[SyncedRecord]) -> None:
    records = list(records)
    keys = [(r.sync_type, r.pk) for r in records]
    tenants = sorted({r.company_id for r in records})
    transaction.on_commit(
        lambda: records_changed.send(sender=Company, records=keys, company_ids=tenants)
    )


def record_mark_changed(*, record: SyncedRecord) -> None:
    """Something QuickBooks must learn: new version, back to PENDING (unless in flight, where
    the engine sees the newer version when it settles and queues the record again)."""
    model = type(record)
    model.objects.filter(pk=record.pk).update(version=F("version") + 1)
    move(
        model.objects.filter(pk=record.pk),
        SyncStatus.PENDING,
        how="changed",
        sources=[s for s in sources_for(SyncStatus.PENDING) if s != SyncStatus.IN_FLIGHT],
        **FRESH_START,
    )
    record.refresh_from_db(fields=["version", "sync_status", "attempts", "next_retry_at"])
    _announce([record])


def _clean_save(obj: ModelT, **kwargs: Any) -> ModelT:
    obj.full_clean(**kwargs)
    obj.save()
    return obj


# --- customers and charge codes --------------------------------------------------------


@transaction.atomic
def customer_create(*, company: Company, display_name: str, **fields: Any) -> Customer:
    customer = _clean_save(Customer(company=company, display_name=display_name.strip(), **fields))
    _announce([customer])
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, **fields: Any) -> Customer:
    # Re-read under lock: the caller's copy may predate a sync that stored the QuickBooks ID.
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    return _update_synced(customer, fields)


@transaction.atomic
def charge_code_create(*, company: Company, code: str, name: str, **fields: Any) -> ChargeCode:
    # A new charge code is unmapped: finance maps it to a QuickBooks item (or asks us to create
    # the item) on the settings page; until then invoices using it are "missing item mapping".
    charge_code = _clean_save(ChargeCode(company=company, code=code, name=name, **fields))
    return transition(charge_code, SyncStatus.SKIPPED, how="unmapped")


CodeT = TypeVar("CodeT", ChargeCode, PayCode)


@transaction.atomic
def code_update(*, code: CodeT, **fields: Any) -> CodeT:
    """A charge code or a pay code: only a mapped one (an item, an account) has anything to
    update in QuickBooks."""
    code = type(code).objects.select_for_update().get(pk=code.pk)
    changed: list[str] = [name for name, value in fields.items() if getattr(code, name) != value]
    for name in changed:
        setattr(code, name, fields[name])
    if changed:
        code.full_clean()
        code.save(update_fields=[*changed, "updated_at"])
        if code.qb_id:
            record_mark_changed(record=code)
    return code


@transaction.atomic
def payment_update(*, payment: Payment, **fields: Any) -> Payment:
    """Date, reference and method; amounts and applications are fixed once entered."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    return _update_synced(payment, fields)


@transaction.atomic
def credit_memo_update(*, credit_memo: CreditMemo, **fields: Any) -> CreditMemo:
    credit_memo = CreditMemo.objects.select_for_update().get(pk=credit_memo.pk)
    return _update_synced(credit_memo, fields)


def _update_synced(record: RecordT, fields: dict[str, Any]) -> RecordT:
    changed = [name for name, value in fields.items() if getattr(record, name) != value]
    for name in changed:
        setattr(record, name, fields[name])
    if changed:
        record.full_clean()
        record.save(update_fields=[*changed, "updated_at"])
        record_mark_changed(record=record)
    return record


def _json_ready(record: models.Model) -> dict[str, Any]:
    return json.loads(json.dumps(model_to_dict(record), cls=DjangoJSONEncoder))


@transaction.atomic
def record_delete(*, record: SyncedRecord, user: User | None) -> None:
    """Delete a synced-type record that QuickBooks does not have, with an audit row. One that
    QuickBooks has (or may have) is refused: deleting it here would leave QuickBooks' copy
    behind, and reusing its number later would collide with it."""
    record = type(record).objects.select_for_update().get(pk=record.pk)
    if record.qb_id:
        raise ValidationError(
            f"{record} is in QuickBooks (ID {record.qb_id}) and cannot be deleted here. "
            + (
                "Void it instead, "
                if isinstance(record, (Invoice, Bill))
                else "Make it inactive or remove it in QuickBooks, "
            )
            + "or remove its QuickBooks ID first (QuickBooks then keeps its copy)."
        )
    if record.sync_status == SyncStatus.IN_FLIGHT or record.create_uncertain:
        raise ValidationError(
            f"{record} may already be in QuickBooks (it is being sent, or its last send got no "
            "answer). Let it sync first, then void or unlink it."
        )
    touched: list[int] = []
    if isinstance(record, Payment):
        touched = list(record.applications.values_list("invoice_id", flat=True))
    ManualAction.objects.create(
        kind=ManualAction.Kind.DELETE,
        record_type=record.sync_type,
        record_id=record.pk,
        user=user,
        before=_json_ready(record),
        note=f"Deleted {record}"[:500],
    )
    record.delete()
    for invoice in Invoice.objects.filter(pk__in=touched):
        invoice_refresh_paid_status(invoice=invoice)


def load_create(*, company: Company, load_number: str, **fields: Any) -> Load:
    return _clean_save(Load(company=company, load_number=load_number, **fields))


# --- invoices ---------------------------------------------------------------------------


@dataclass
class LineSpec:
    charge_code: ChargeCode
    rate: Decimal
    quantity: Decimal = Decimal("1")
    note: str = ""


@dataclass
class ChargeSetSpec:
    load: Load
    lines: list[LineSpec] = field(default_factory=list)
    label: str = ""


def _write_charge_sets(invoice: Invoice, charge_sets: list[ChargeSetSpec]) -> Decimal:
    if not charge_sets or not any(spec.lines for spec in charge_sets):
        raise ValidationError("An invoice needs at least one charge line.")
    total = Decimal("0")
    for set_position, spec in enumerate(charge_sets, start=1):
        charge_set = ChargeSet.objects.create(
            invoice=invoice, load=spec.load, position=set_position, label=spec.label
        )
        for line_position, line in enumerate(spec.lines, start=1):
            if line.charge_code.company_id != invoice.company_id:
                raise ValidationError("A charge code belongs to another company.")
            amount = (Decimal(line.quantity) * Decimal(line.rate)).quantize(CENT)
            if amount <= 0:
                raise ValidationError(
                    f"Charge {line.charge_code.code}: quantity × rate must be positive."
                )
            row = ChargeLine(
                charge_set=charge_set,
                charge_code=line.charge_code,
                quantity=line.quantity,
                rate=line.rate,
                amount=amount,
                note=line.note,
                position=line_position,
            )
            row.full_clean(exclude=["charge_set"])
            row.save()
            total += amount
    return total


@transaction.atomic
def invoice_create(
    *,
    company: Company,
    customer: Customer,
    doc_number: str,
    invoice_date: date,
    charge_sets: list[ChargeSetSpec],
    status: str = Invoice.Status.APPROVED,
    memo: str = "",
    terms_days: int | None = None,
) -> Invoice:
    terms = customer.terms_days if terms_days is None else terms_days
    validate_business_date(invoice_date, "The invoice date")  # before any date arithmetic
    invoice = _clean_save(
        Invoice(
            company=company,
            customer=customer,
            doc_number=doc_number,
            invoice_date=invoice_date,
            due_date=invoice_date + timedelta(days=terms),
            terms_days=terms,
            status=status,
            memo=memo,
        )
    )
    invoice.total = _write_charge_sets(invoice, charge_sets)
    invoice.save(update_fields=["total"])
    _announce([invoice])
    return invoice


def invoice_paid_in_quickbooks(invoice: Invoice) -> Decimal:
    """Money applied to this invoice inside QuickBooks (pulled payments)."""
    paid = PaymentApplication.objects.filter(
        invoice=invoice, payment__origin=Payment.Origin.QUICKBOOKS
    ).aggregate(total=Sum("amount"))["total"]
    return paid or Decimal("0")


def _guard_quickbooks_payments(
    invoice: Invoice, *, confirm_conflict: bool, user: User | None, what: str
) -> None:
    applied = invoice_paid_in_quickbooks(invoice)
    if not applied:
        return
    if not confirm_conflict:
        raise QuickBooksConflict(
            f"{applied} has already been applied to invoice {invoice.doc_number} in QuickBooks. "
            f"To {what} anyway, confirm it: the payment in QuickBooks stays where it is and "
            "must be moved or refunded there by hand."
        )
    ManualAction.objects.create(
        kind=ManualAction.Kind.CONFIRM_CONFLICT,
        record_type="invoice",
        record_id=invoice.pk,
        user=user,
        note=f"Confirmed {what} with {applied} applied in QuickBooks",
    )


def invoice_update_check(*, invoice: Invoice, fields: dict[str, Any]) -> None:
    """What invoice_update refuses, for a form to show before saving (admin)."""
    if "customer" in fields and fields["customer"] != invoice.customer:
        _guard_customer_change(invoice)


def _guard_customer_change(invoice: Invoice) -> None:
    """Money applied to an invoice belongs to its customer: moving the invoice would leave the
    payment on another customer's invoice (QuickBooks accepts that silently)."""
    applied = invoice.applications.aggregate(total=Sum("amount"))["total"]
    if applied:
        raise ValidationError(
            {
                "customer": f"{applied} in payments is applied to invoice {invoice.doc_number}. "
                "Remove those payments (or void the invoice and bill the right customer) "
                "before changing its customer."
            }
        )


@transaction.atomic
def invoice_update(
    *, invoice: Invoice, user: User | None = None, confirm_conflict: bool = False, **fields: Any
) -> Invoice:
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    changed = [name for name, value in fields.items() if getattr(invoice, name) != value]
    if not changed:
        return invoice
    if "customer" in changed or "customer_id" in changed:
        _guard_customer_change(invoice)
    if "status" in changed:
        # Voiding or re-drafting an invoice paid in QuickBooks leaves that payment stranded.
        _guard_quickbooks_payments(
            invoice, confirm_conflict=confirm_conflict, user=user, what="change its status"
        )
    for name in changed:
        setattr(invoice, name, fields[name])
    invoice.full_clean()
    invoice.save(update_fields=[*changed, "updated_at"])
    record_mark_changed(record=invoice)
    return invoice


@transaction.atomic
def invoice_replace_charges(
    *,
    invoice: Invoice,
    charge_sets: list[ChargeSetSpec],
    user: User | None = None,
    confirm_conflict: bool = False,
) -> Invoice:
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    old_total = invoice.total
    invoice.charge_sets.all().delete()
    new_total = _write_charge_sets(invoice, charge_sets)
    if new_total != old_total:
        _guard_quickbooks_payments(
            invoice, confirm_conflict=confirm_conflict, user=user, what="change its total"
        )
    invoice.total = new_total
    invoice.save(update_fields=["total"])
    record_mark_changed(record=invoice)
    return invoice


@transaction.atomic
def invoice_void(
    *, invoice: Invoice, user: User | None = None, confirm_conflict: bool = False
) -> Invoice:
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status == Invoice.Status.VOID:
        return invoice
    _guard_quickbooks_payments(
        invoice, confirm_conflict=confirm_conflict, user=user, what="void it"
    )
    invoice.status = Invoice.Status.VOID
    invoice.save(update_fields=["status"])
    record_mark_changed(record=invoice)
    return invoice


def invoice_open_balance(invoice: Invoice) -> Decimal:
    applied = invoice.applications.aggregate(total=Sum("amount"))["total"] or Decimal("0")
    credited = invoice.credit_memos.aggregate(total=Sum("total"))["total"] or Decimal("0")
    return invoice.total - applied - credited


def _balance_token(sync_token: int | str | None) -> int | None:
    text = str(sync_token)
    return int(text) if text.isdigit() else None


def _newer_balance(token: int | None) -> Q:
    newer = Q(qb_balance_token__isnull=True)
    if token is not None:
        newer |= Q(qb_balance_token__lte=token)
    return newer


def record_quickbooks_balance(
    *, record: Invoice | Bill, balance: Decimal | float | str, sync_token: int | str | None
) -> bool:
    """Keep QuickBooks' open balance of an invoice or a bill unless we already hold a newer
    one. QuickBooks bumps a document's SyncToken on every change, a payment applied to it
    included, so the token orders the answers; an older one is ignored (False)."""
    token = _balance_token(sync_token)
    amount = Decimal(str(balance))
    if (
        not type(record)
        .objects.filter(_newer_balance(token), pk=record.pk)
        .update(qb_balance=amount, qb_balance_token=token)
    ):
        return False
    record.qb_balance, record.qb_balance_token = amount, token
    return True


def quickbooks_balance_fields(
    *, balance: Decimal | float | str, sync_token: int | str | None
) -> dict[str, Any]:
    """QuickBooks' balance as plain fields, for an UPDATE of an invoice no newer balance can
    have reached yet (its first answer); otherwise use record_quickbooks_balance."""
    return {"qb_balance": Decimal(str(balance)), "qb_balance_token": _balance_token(sync_token)}


def invoice_refresh_paid_status(*, invoice: Invoice) -> Invoice:
    """Billing status from what has been paid (TMS payments, QBO payments, QBO balance)."""
    if invoice.status in {Invoice.Status.VOID, Invoice.Status.DRAFT}:
        return invoice
    open_balance = invoice_open_balance(invoice)
    if invoice.qb_balance is not None:
        open_balance = min(open_balance, invoice.qb_balance)
    status: str
    if open_balance <= 0:
        status = Invoice.Status.PAID
    elif open_balance < invoice.total:
        status = Invoice.Status.PARTIALLY_PAID
    else:
        status = invoice.status if invoice.status != Invoice.Status.PAID else Invoice.Status.BILLED
        if status == Invoice.Status.PARTIALLY_PAID:
            status = Invoice.Status.BILLED
    if status != invoice.status:
        # Paid status is TMS bookkeeping, not content QuickBooks needs: no version bump.
        Invoice.objects.filter(pk=invoice.pk).update(status=status)
        invoice.status = status
    return invoice


# --- payments and credit memos ----------------------------------------------------------


@transaction.atomic
def payment_create(
    *,
    company: Company,
    customer: Customer,
    amount: Decimal,
    payment_date: date | str,  # or an ISO date (from QuickBooks): full_clean parses it
    applications: list[tuple[Invoice, Decimal]],
    reference_number: str = "",
    method: str = Payment.Method.CHECK,
    origin: str = Payment.Origin.TMS,
    qb_id: str = "",
    sync_status: str | None = None,
) -> Payment:
    """A payment and its applications. One applied in QuickBooks (origin QUICKBOOKS, with its
    QuickBooks Id) starts SYNCED and is never sent back; `sync_status` may say so explicitly."""
    amount = money(amount, "The payment amount")
    applications = [
        (invoice, money(applied, f"The amount applied to invoice {invoice.doc_number}"))
        for invoice, applied in applications
    ]
    applied_total = sum((a for _, a in applications), Decimal("0"))
    if applied_total > amount:
        raise ValidationError(
            f"The applications ({applied_total}) are more than the payment ({amount})."
        )
    payment = _clean_save(
        Payment(
            company=company,
            customer=customer,
            amount=amount,
            payment_date=payment_date,
            reference_number=reference_number,
            method=method,
            origin=origin,
            qb_id=qb_id,
        )
    )
    for invoice, applied in applications:
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.customer_id != customer.pk:
            raise ValidationError(
                f"Invoice {invoice.doc_number} belongs to another customer than the payment."
            )
        if invoice.status == Invoice.Status.VOID:
            raise ValidationError(f"Invoice {invoice.doc_number} is void.")
        open_balance = invoice_open_balance(invoice)
        if Decimal(applied) > open_balance:
            raise ValidationError(
                f"{applied} is more than the {open_balance} still open on invoice "
                f"{invoice.doc_number}."
            )
        _clean_save(PaymentApplication(payment=payment, invoice=invoice, amount=applied))
        invoice_refresh_paid_status(invoice=invoice)
    if sync_status is None:
        quickbooks = origin == Payment.Origin.QUICKBOOKS
        sync_status = SyncStatus.SYNCED if quickbooks else SyncStatus.PENDING
    if sync_status == SyncStatus.PENDING:
        _announce([payment])
        return payment
    return transition(payment, sync_status, how="pulled", synced_version=payment.version)


@transaction.atomic
def credit_memo_create(
    *,
    company: Company,
    customer: Customer,
    number: str,
    memo_date: date,
    lines: list[tuple[ChargeCode, Decimal, str]],
    invoice: Invoice | None = None,
    reason: str = "",
) -> CreditMemo:
    if not lines:
        raise ValidationError("A credit memo needs at least one line.")
    if invoice is not None and invoice.customer_id != customer.pk:
        raise ValidationError("The credited invoice belongs to another customer.")
    memo = _clean_save(
        CreditMemo(
            company=company,
            customer=customer,
            number=number,
            memo_date=memo_date,
            invoice=invoice,
            reason=reason,
        )
    )
    total = Decimal("0")
    for charge_code, amount, description in lines:
        line = CreditMemoLine(
            credit_memo=memo,
            charge_code=charge_code,
            amount=Decimal(amount),
            description=description,
        )
        line.full_clean()
        line.save()
        total += line.amount
    memo.total = total
    memo.save(update_fields=["total"])
    if invoice is not None:
        invoice_refresh_paid_status(invoice=invoice)
    _announce([memo])
    return memo
