"""What a change read from QuickBooks does to our records: the mappers' `pull` hooks.

Payments applied in QuickBooks mark invoices paid or partly paid here (stored as
QuickBooks-origin payments, never pushed back, recorded once however often they are
delivered); invoices or customers deleted or voided in QuickBooks become problems. Every
handler is idempotent: deliveries repeat, CDC windows overlap, answers arrive out of order.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from finance.models import (
    Bill,
    Customer,
    Invoice,
    Payment,
    PaymentApplication,
    SyncedRecord,
    Vendor,
)
from finance.payables import (
    bill_payment_forget,
    bill_payment_record,
    bill_refresh_paid_status,
)
from finance.services import (
    invoice_open_balance,
    invoice_refresh_paid_status,
    payment_create,
    record_quickbooks_balance,
)
from finance.syncstate import SyncStatus, move, sources_for
from finance.validators import printable
from sync.services.client import QboError, QboObject, QuickBooksSession
from sync.services.drift import Change, Drift, deleted, drift_since_last_write, voided

if TYPE_CHECKING:
    from sync.models import QuickBooksConnection

logger = logging.getLogger(__name__)
# The PrivateNote of the payments we push: a payment pulled back with it is our own echo.
TMS_PAYMENT_NOTE = "TMS payment "


def flag(
    record: SyncedRecord,
    reason: str,
    message: str,
    obj: QboObject | None = None,
    drift: Drift | None = None,
) -> None:
    """QuickBooks removed or voided it: a problem for a person (once: not again while it is
    already a problem or was cleared). QuickBooks' version is kept: a person may choose to
    overwrite exactly that one."""
    if drift is None:
        token = str((obj or {}).get("SyncToken", ""))
        drift = Drift(token=token, voided=bool(obj and voided(obj)))
    move(
        type(record).objects.filter(pk=record.pk),
        SyncStatus.PROBLEM,
        how="quickbooks",
        sources=[s for s in sources_for(SyncStatus.PROBLEM) if s != SyncStatus.CLEARED],
        problem_reason=reason,
        problem_since=timezone.now(),
        last_error_code="",
        last_error_message=message,
        qb_drift=drift.as_json(),
    )


def balance_after_answer(*, invoice: Invoice, obj: QboObject) -> None:
    """A push's answer carried the invoice's Balance. A new invoice's was stored with the settle
    (Mapper.apply); an update's is stored only when it differs from ours and is not older than
    what we hold (a payment's webhook may have brought a newer one while the push was in
    flight). The paid status is refreshed only when it can change: not when nothing is paid in
    QuickBooks and nothing was before (TMS payments set the status when they were entered)."""
    balance, previous = Decimal(str(obj["Balance"])), invoice.qb_balance
    if invoice.qb_id and balance != previous:
        if not record_quickbooks_balance(
            record=invoice, balance=balance, sync_token=obj.get("SyncToken", "")
        ):
            return  # an older answer than the balance we hold
    if balance >= invoice.total and previous in (None, invoice.total):
        return
    invoice_refresh_paid_status(invoice=Invoice.objects.get(pk=invoice.pk))


def invoice_changed(
    *,
    connection: QuickBooksConnection,
    obj: QboObject,
    session: QuickBooksSession | None = None,
) -> str:
    qb_id = str(obj.get("Id", ""))
    invoice = Invoice.objects.filter(company_id=connection.company_id, qb_id=qb_id).first()
    if invoice is None:
        return "unknown"
    if deleted(obj):
        flag(invoice, "deleted_in_quickbooks", f"Invoice {qb_id} was deleted in QuickBooks.")
        return "flagged"
    if voided(obj) and invoice.status != Invoice.Status.VOID:
        flag(invoice, "voided_in_quickbooks", f"Invoice {qb_id} was voided in QuickBooks.", obj)
        return "flagged"
    balance = obj.get("Balance")
    if balance is None or balance == "":
        return "updated"  # an answer that says nothing about the balance
    if record_quickbooks_balance(
        record=invoice, balance=balance, sync_token=obj.get("SyncToken", "")
    ):
        invoice_refresh_paid_status(invoice=invoice)
    return "updated"


def _party_changed(
    model: type[Customer] | type[Vendor], connection: QuickBooksConnection, obj: QboObject
) -> str:
    qb_id = str(obj.get("Id", ""))
    party = model.objects.filter(company_id=connection.company_id, qb_id=qb_id).first()
    if party is None:
        return "unknown"
    if deleted(obj):
        flag(party, "deleted_in_quickbooks", f"{party} was deleted in QuickBooks.")
        return "flagged"
    if obj.get("Active") is False and flag_inactive(party, obj):
        return "flagged"
    return "seen"


def customer_changed(
    *,
    connection: QuickBooksConnection,
    obj: QboObject,
    session: QuickBooksSession | None = None,
) -> str:
    return _party_changed(Customer, connection, obj)


def vendor_changed(
    *,
    connection: QuickBooksConnection,
    obj: QboObject,
    session: QuickBooksSession | None = None,
) -> str:
    return _party_changed(Vendor, connection, obj)


def bill_changed(
    *,
    connection: QuickBooksConnection,
    obj: QboObject,
    session: QuickBooksSession | None = None,
) -> str:
    """A bill deleted in QuickBooks is a problem (its API cannot void one; a bill voided in
    QuickBooks' screen arrives as an update with every amount zero, and is flagged too); its
    Balance, when the answer has one, is kept and sets the paid status."""
    qb_id = str(obj.get("Id", ""))
    bill = Bill.objects.filter(company_id=connection.company_id, qb_id=qb_id).first()
    if bill is None:
        return "unknown"
    if deleted(obj):
        flag(bill, "deleted_in_quickbooks", f"Bill {bill.doc_number} was deleted in QuickBooks.")
        return "flagged"
    # QuickBooks' screen voids a bill by zeroing it; an answer without TotalAmt says nothing.
    total = obj.get("TotalAmt")
    zeroed = total not in (None, "") and bill.total > 0 and Decimal(str(total)) == 0
    if (voided(obj) or zeroed) and bill.status != Bill.Status.VOID:
        flag(bill, "voided_in_quickbooks", f"Bill {bill.doc_number} was voided in QuickBooks.", obj)
        return "flagged"
    balance = obj.get("Balance")
    if (
        balance is not None
        and balance != ""
        and record_quickbooks_balance(
            record=bill, balance=balance, sync_token=obj.get("SyncToken", "")
        )
    ):
        bill_refresh_paid_status(bill=bill)
    return "updated"


def bill_payment_changed(
    *,
    connection: QuickBooksConnection,
    obj: QboObject,
    session: QuickBooksSession | None = None,
) -> str:
    """A bill payment made (changed, voided, deleted) in QuickBooks: its lines say which bills
    it pays and how much, so no bill is read back (reads are metered)."""
    company = connection.company
    qb_id = str(obj.get("Id", ""))
    if deleted(obj) or voided(obj):
        bill_payment_forget(company=company, qb_id=qb_id)
        return "bill payment"
    applied = [
        (str(txn.get("TxnId")), Decimal(str(line.get("Amount") or 0)))
        for line in obj.get("Line") or []
        for txn in line.get("LinkedTxn") or []
        if txn.get("TxnType") == "Bill"
    ]
    recorded = bill_payment_record(
        company=company,
        qb_id=qb_id,
        payment_date=(obj.get("TxnDate") or str(timezone.now().date()))[:10],
        pay_type=str(obj.get("PayType") or ""),
        reference_number=printable(str(obj.get("DocNumber") or "")),
        applied=[(txn_id, amount) for txn_id, amount in applied if amount > 0],
    )
    return "bill payment" if recorded else "unknown"


def flag_inactive(record: SyncedRecord, obj: QboObject) -> bool:
    """Made inactive in QuickBooks while the TMS has it active: changed in QuickBooks, for a
    person to choose (reactivate it there, or make it inactive here too). Customers and items
    cannot be deleted in QuickBooks; inactive is their "deleted"."""
    if obj.get("Active") is not False or getattr(record, "is_active", True) is False:
        return False
    drift = drift_since_last_write(sync_type=record.sync_type, record_id=record.pk, current=obj)
    if not drift.changes and drift.known:
        drift.changes.append(Change("Active", "True", "False"))
    flag(
        record,
        "changed_in_quickbooks",
        f"{record} was made inactive in QuickBooks; records using it cannot be sent. "
        "Reactivate it (Overwrite QuickBooks) or make it inactive in the TMS too.",
        obj,
        drift,
    )
    return True


def payment_changed(
    *,
    connection: QuickBooksConnection,
    obj: QboObject,
    session: QuickBooksSession | None = None,
) -> str:
    company_id = connection.company_id
    qb_id = str(obj.get("Id", ""))
    linked = _linked_invoices(obj)
    ours = str(obj.get("PrivateNote") or "").startswith(TMS_PAYMENT_NOTE)
    if deleted(obj) or voided(obj):
        existing = Payment.objects.filter(company_id=company_id, qb_id=qb_id).first()
        if existing is not None:
            _forget_quickbooks_payment(existing, qb_id)
    elif not ours and linked:
        _record_quickbooks_payment(company_id=company_id, qb_id=qb_id, obj=obj, linked=linked)
    _refresh_balances(connection=connection, linked=linked, session=session)
    return "payment"


def _linked_invoices(obj: QboObject) -> list[tuple[str, Decimal]]:
    """(invoice Id, amount) for each payment line applied to an invoice."""
    return [
        (str(txn.get("TxnId")), Decimal(str(line.get("Amount") or 0)))
        for line in obj.get("Line") or []
        for txn in line.get("LinkedTxn") or []
        if txn.get("TxnType") == "Invoice"
    ]


def _applications(
    invoices: dict[str, Invoice], linked: list[tuple[str, Decimal]]
) -> list[tuple[Invoice, Decimal]]:
    """What we can apply in the TMS: lines on this customer's invoices, within what is open."""
    first = next(iter(invoices.values()))
    applications = []
    for txn_id, amount in linked:
        invoice = invoices.get(txn_id)
        if invoice is None or invoice.customer_id != first.customer_id or amount <= 0:
            continue
        open_balance = invoice_open_balance(invoice)
        if open_balance > 0:
            applications.append((invoice, min(amount, open_balance)))
    return applications


def _record_quickbooks_payment(
    *, company_id: int, qb_id: str, obj: QboObject, linked: list[tuple[str, Decimal]]
) -> bool:
    """Record a payment received in QuickBooks, once however often and however concurrently it
    is delivered: its invoices are locked, then we look whether it is already recorded; the
    unique (company, qb_id) constraint backs that up."""
    try:
        with transaction.atomic():
            invoices = {
                invoice.qb_id: invoice
                for invoice in Invoice.objects.select_for_update()
                .filter(company_id=company_id, qb_id__in=[txn_id for txn_id, _ in linked])
                .select_related("customer", "company")
                .order_by("pk")  # one lock order: concurrent payments never deadlock
            }
            if not invoices:
                return False
            if Payment.objects.filter(company_id=company_id, qb_id=qb_id).exists():
                return False
            applications = _applications(invoices, linked)
            if not applications:
                return False
            first = applications[0][0]
            payment_create(
                company=first.company,
                customer=first.customer,
                amount=sum((a for _, a in applications), Decimal("0")),
                payment_date=(obj.get("TxnDate") or str(timezone.now().date()))[:10],
                applications=applications,
                reference_number=printable(str(obj.get("PaymentRefNum") or ""))[:40],
                origin=Payment.Origin.QUICKBOOKS,
                qb_id=qb_id,
            )
            return True
    except IntegrityError:
        return False  # recorded by a concurrent delivery a moment earlier


def _forget_quickbooks_payment(existing: Payment, qb_id: str) -> None:
    """Removed (deleted or voided) in QuickBooks: take its money off our invoices, or flag a
    TMS payment that someone removed there."""
    if existing.origin != Payment.Origin.QUICKBOOKS:
        flag(existing, "deleted_in_quickbooks", f"Payment {qb_id} was removed in QuickBooks.")
        return
    touched = list(existing.applications.values_list("invoice_id", flat=True))
    PaymentApplication.objects.filter(payment=existing).delete()
    for invoice in Invoice.objects.filter(pk__in=touched):
        invoice_refresh_paid_status(invoice=invoice)


def _refresh_balances(
    *,
    connection: QuickBooksConnection,
    linked: list[tuple[str, Decimal]],
    session: QuickBooksSession | None,
) -> None:
    """QuickBooks' own balance is the truth for "paid": read it for every invoice touched."""
    if session is None:
        return
    for invoice in Invoice.objects.filter(
        company_id=connection.company_id, qb_id__in=[txn_id for txn_id, _ in linked]
    ):
        try:
            invoice_changed(connection=connection, obj=session.read("Invoice", invoice.qb_id))
        except QboError:
            logger.info("could not refresh invoice %s balance", invoice.qb_id)
