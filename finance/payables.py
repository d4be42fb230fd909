"""Business operations on what the company pays: vendors (carriers, owner-operator drivers),
pay codes, bills and driver settlements, and bill payments made in QuickBooks.

As in finance/services.py, every change QuickBooks must learn goes through
`record_mark_changed`. Bills are paid in QuickBooks (check or card); what is paid comes back as
`BillPayment` rows (sync's pull) and the bill's paid status follows from them and from
QuickBooks' own balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum

from finance.models import (
    Bill,
    BillLine,
    BillPayment,
    BillPaymentApplication,
    Company,
    Load,
    ManualAction,
    PayCode,
    Vendor,
)
from finance.services import (
    CENT,
    QuickBooksConflict,
    _announce,
    _clean_save,
    _update_synced,
    record_mark_changed,
)
from finance.syncstate import SyncStatus, transition
from finance.validators import validate_business_date

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# --- vendors and pay codes ----------------------------------------------------------------


@transaction.atomic
def vendor_create(*, company: Company, display_name: str, **fields: Any) -> Vendor:
    vendor = _clean_save(Vendor(company=company, display_name=display_name.strip(), **fields))
    _announce([vendor])
    return vendor


@transaction.atomic
def vendor_update(*, vendor: Vendor, **fields: Any) -> Vendor:
    vendor = Vendor.objects.select_for_update().get(pk=vendor.pk)
    return _update_synced(vendor, fields)


@transaction.atomic
def pay_code_create(*, company: Company, code: str, name: str, **fields: Any) -> PayCode:
    # Unmapped at first, like a charge code: finance maps it to a QuickBooks account (or asks
    # for the account to be created); until then bills using it wait as "no account".
    pay_code = _clean_save(PayCode(company=company, code=code, name=name, **fields))
    return transition(pay_code, SyncStatus.SKIPPED, how="unmapped")


# --- bills and settlements ----------------------------------------------------------------


@dataclass
class BillLineSpec:
    pay_code: PayCode
    rate: Decimal
    quantity: Decimal = Decimal("1")
    load: Load | None = None
    container_number: str = ""
    truck_number: str = ""
    note: str = ""


def _write_lines(bill: Bill, lines: list[BillLineSpec]) -> Decimal:
    """The lines and their total. A deduction's amount is negative; the bill as a whole may not
    be (QuickBooks refuses a negative bill: that is a vendor credit, not a bill)."""
    if not lines:
        raise ValidationError("A bill needs at least one line.")
    total = Decimal("0")
    for position, spec in enumerate(lines, start=1):
        code = spec.pay_code
        if code.company_id != bill.company_id:
            raise ValidationError("A pay code belongs to another company.")
        if spec.load is not None and spec.load.company_id != bill.company_id:
            raise ValidationError("A load belongs to another company.")
        amount = (Decimal(spec.quantity) * Decimal(spec.rate)).quantize(CENT)
        if amount <= 0:
            raise ValidationError(f"Pay code {code.code}: quantity × rate must be positive.")
        if code.kind == PayCode.Kind.DEDUCTION:
            amount = -amount
        row = BillLine(
            bill=bill,
            pay_code=code,
            load=spec.load,
            container_number=spec.container_number
            or (spec.load.container_number if spec.load else ""),
            truck_number=spec.truck_number.strip(),
            quantity=spec.quantity,
            rate=spec.rate,
            amount=amount,
            note=spec.note,
            position=position,
        )
        row.full_clean(exclude=["bill"])
        row.save()
        total += amount
    if total < 0:
        raise ValidationError(
            f"The deductions exceed the pay by {-total}: a bill cannot be negative. "
            "Carry the rest to the next settlement."
        )
    return total


@transaction.atomic
def bill_create(
    *,
    company: Company,
    vendor: Vendor,
    doc_number: str,
    bill_date: date,
    lines: list[BillLineSpec],
    kind: str = Bill.Kind.CARRIER_BILL,
    status: str = Bill.Status.APPROVED,
    memo: str = "",
    terms_days: int | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
) -> Bill:
    if vendor.company_id != company.pk:
        raise ValidationError("The vendor belongs to another company.")
    terms = vendor.terms_days if terms_days is None else terms_days
    validate_business_date(bill_date, "The bill date")  # before any date arithmetic
    bill = _clean_save(
        Bill(
            company=company,
            vendor=vendor,
            kind=kind,
            doc_number=doc_number.strip(),
            bill_date=bill_date,
            due_date=bill_date + timedelta(days=terms),
            terms_days=terms,
            status=status,
            memo=memo,
            period_start=period_start,
            period_end=period_end,
        )
    )
    bill.total = _write_lines(bill, lines)
    bill.save(update_fields=["total"])
    _announce([bill])
    return bill


def bill_paid_in_quickbooks(bill: Bill) -> Decimal:
    paid = bill.payments_applied.aggregate(total=Sum("amount"))["total"]
    return paid or Decimal("0")


def _guard_quickbooks_payments(
    bill: Bill, *, confirm_conflict: bool, user: User | None, what: str
) -> None:
    paid = bill_paid_in_quickbooks(bill)
    if not paid:
        return
    if not confirm_conflict:
        raise QuickBooksConflict(
            f"{paid} has already been paid on bill {bill.doc_number} in QuickBooks. To {what} "
            "anyway, confirm it: the bill payment in QuickBooks stays where it is and must be "
            "voided or moved there by hand."
        )
    ManualAction.objects.create(
        kind=ManualAction.Kind.CONFIRM_CONFLICT,
        record_type="bill",
        record_id=bill.pk,
        user=user,
        note=f"Confirmed {what} with {paid} paid in QuickBooks",
    )


@transaction.atomic
def bill_update(
    *, bill: Bill, user: User | None = None, confirm_conflict: bool = False, **fields: Any
) -> Bill:
    bill = Bill.objects.select_for_update().get(pk=bill.pk)
    changed = [name for name, value in fields.items() if getattr(bill, name) != value]
    if not changed:
        return bill
    if "vendor" in changed or "vendor_id" in changed or "status" in changed:
        _guard_quickbooks_payments(
            bill, confirm_conflict=confirm_conflict, user=user, what="change its vendor or status"
        )
    for name in changed:
        setattr(bill, name, fields[name])
    bill.full_clean()
    bill.save(update_fields=[*changed, "updated_at"])
    record_mark_changed(record=bill)
    return bill


@transaction.atomic
def bill_replace_lines(
    *, bill: Bill, lines: list[BillLineSpec], user: User | None = None, confirm: bool = False
) -> Bill:
    bill = Bill.objects.select_for_update().get(pk=bill.pk)
    old_total = bill.total
    bill.lines.all().delete()
    new_total = _write_lines(bill, lines)
    if new_total != old_total:
        _guard_quickbooks_payments(
            bill, confirm_conflict=confirm, user=user, what="change its total"
        )
    bill.total = new_total
    bill.save(update_fields=["total"])
    record_mark_changed(record=bill)
    return bill


@transaction.atomic
def bill_void(*, bill: Bill, user: User | None = None, confirm_conflict: bool = False) -> Bill:
    """Void in the TMS. QuickBooks' API cannot void a bill: the sync sends it with every line
    at zero and a "Voided" note, which is what voiding a bill does in QuickBooks' own screen."""
    bill = Bill.objects.select_for_update().get(pk=bill.pk)
    if bill.status == Bill.Status.VOID:
        return bill
    _guard_quickbooks_payments(bill, confirm_conflict=confirm_conflict, user=user, what="void it")
    bill.status = Bill.Status.VOID
    bill.save(update_fields=["status"])
    record_mark_changed(record=bill)
    return bill


def bill_open_balance(bill: Bill) -> Decimal:
    return bill.total - bill_paid_in_quickbooks(bill)


def bill_refresh_paid_status(*, bill: Bill) -> Bill:
    """Paid, partly paid or open, from bill payments made in QuickBooks and its balance there."""
    if bill.status in {Bill.Status.VOID, Bill.Status.DRAFT}:
        return bill
    open_balance = bill_open_balance(bill)
    if bill.qb_balance is not None:
        open_balance = min(open_balance, bill.qb_balance)
    if open_balance <= 0:
        status = Bill.Status.PAID
    elif open_balance < bill.total:
        status = Bill.Status.PARTIALLY_PAID
    else:
        status = Bill.Status.APPROVED
    if status != bill.status:
        # Paid status is TMS bookkeeping, not content QuickBooks needs: no version bump.
        Bill.objects.filter(pk=bill.pk).update(status=status)
        bill.status = status
    return bill


# --- bill payments made in QuickBooks ------------------------------------------------------


def bill_payment_record(
    *,
    company: Company,
    qb_id: str,
    payment_date: str,
    pay_type: str,
    reference_number: str,
    applied: list[tuple[str, Decimal]],
) -> BillPayment | None:
    """Record (or re-record, after an edit in QuickBooks) one bill payment made in QuickBooks:
    `applied` is (bill QuickBooks Id, amount) per line. Idempotent however often and however
    concurrently it is delivered: the bills are locked, then the payment's rows are replaced;
    the unique (company, qb_id) backs that up. Returns None when it pays none of our bills."""
    try:
        with transaction.atomic():
            bills = {
                bill.qb_id: bill
                for bill in Bill.objects.select_for_update()
                .filter(company=company, qb_id__in=[txn_id for txn_id, _ in applied])
                .order_by("pk")  # one lock order: concurrent deliveries never deadlock
            }
            existing = BillPayment.objects.filter(company=company, qb_id=qb_id).first()
            touched = (
                set(existing.applications.values_list("bill_id", flat=True)) if existing else set()
            )
            if existing is not None:
                existing.delete()
            rows = [(bills[txn_id], amount) for txn_id, amount in applied if txn_id in bills]
            payment = None
            if rows:
                payment = BillPayment.objects.create(
                    company=company,
                    vendor=rows[0][0].vendor,
                    qb_id=qb_id,
                    payment_date=payment_date,
                    amount=sum((amount for _, amount in rows), Decimal("0")),
                    pay_type=pay_type[:12],
                    reference_number=reference_number[:40],
                )
                BillPaymentApplication.objects.bulk_create(
                    BillPaymentApplication(bill_payment=payment, bill=bill, amount=amount)
                    for bill, amount in rows
                )
            for bill in Bill.objects.filter(pk__in=touched | {b.pk for b, _ in rows}):
                bill_refresh_paid_status(bill=bill)
            return payment
    except IntegrityError:
        return None  # recorded by a concurrent delivery a moment earlier


@transaction.atomic
def bill_payment_forget(*, company: Company, qb_id: str) -> int:
    """Deleted or voided in QuickBooks: its money comes off our bills."""
    existing = BillPayment.objects.filter(company=company, qb_id=qb_id).first()
    if existing is None:
        return 0
    touched = list(existing.applications.values_list("bill_id", flat=True))
    existing.delete()
    for bill in Bill.objects.filter(pk__in=touched):
        bill_refresh_paid_status(bill=bill)
    return len(touched)
