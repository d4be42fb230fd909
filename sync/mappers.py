"""One registry of per-type mappers: TMS record → QBO JSON, natural keys, dependencies.

The engine is the same for every type; only what differs between types lives here.
"""

from dataclasses import dataclass
from decimal import Decimal

from finance.descriptions import describe_invoice
from finance.models import ChargeCode, CreditMemo, Customer, Invoice, Payment
from finance.registry import SYNC_ORDER
from finance.syncstate import OWED, SyncStatus
from sync.services.client import quote


class MappingProblem(Exception):
    """The record cannot be sent as it is; `reason` is a key of sync.problems.REASONS."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class DependencyWait(Exception):
    """A record this one needs is still on its way to QuickBooks: try again shortly."""


class Skip(Exception):
    """Nothing to send for this record now (draft, type switched off...)."""


def money(value: Decimal) -> float:
    return float(Decimal(value).quantize(Decimal("0.01")))


def ref(record, name: str = "") -> dict:
    reference = {"value": record.qb_id}
    if name:
        reference["name"] = name
    return reference


def require_synced(dependency, *, reason: str, label: str, auto_push=None) -> None:
    """A dependency must have a QuickBooks ID before this record can be sent."""
    if dependency.qb_id:
        return
    if dependency.sync_status in OWED:
        if auto_push is None:
            raise DependencyWait(f"{label} is still being synced")
        auto_push(dependency)
        dependency.refresh_from_db()
        if dependency.qb_id:
            return
        if dependency.sync_status != SyncStatus.PROBLEM:
            raise DependencyWait(f"{label} is still being synced")
    status = dependency.get_sync_status_display().lower()
    raise MappingProblem(reason, f"{label} is not in QuickBooks ({status}).")


@dataclass(frozen=True)
class Mapper:
    sync_type: str
    entity: str
    model: type
    select_related: tuple = ()

    # -- overridden per type --
    def body(self, record, ctx) -> dict:
        raise NotImplementedError

    def natural_key_query(self, record) -> str:
        raise NotImplementedError

    def matches(self, record, obj: dict) -> bool:
        return True

    def skip_reason(self, record, ctx) -> str:
        return ""

    def dependencies(self, record, ctx, auto_push) -> None:
        """Raise MappingProblem / DependencyWait when something this record needs is missing."""

    def apply(self, record, obj: dict) -> dict:
        """Extra fields to store from QuickBooks' answer."""
        return {}

    def label(self, record) -> str:
        return str(record)


class CustomerMapper(Mapper):
    def body(self, customer: Customer, ctx) -> dict:
        body = {
            "DisplayName": customer.display_name,
            "CompanyName": customer.company_name or customer.display_name,
            "Active": customer.is_active,
        }
        if customer.billing_email:
            body["PrimaryEmailAddr"] = {"Address": customer.billing_email}
        if customer.phone:
            body["PrimaryPhone"] = {"FreeFormNumber": customer.phone}
        if customer.address_line1:
            body["BillAddr"] = {
                "Line1": customer.address_line1,
                "City": customer.city,
                "CountrySubDivisionCode": customer.state,
                "PostalCode": customer.postal_code,
                "Country": customer.country,
            }
        return body

    def natural_key_query(self, customer) -> str:
        return f"SELECT * FROM Customer WHERE DisplayName = {quote(customer.display_name)}"

    def matches(self, customer, obj) -> bool:
        return obj.get("DisplayName", "").casefold() == customer.display_name.casefold()

    def email_matches(self, customer, obj) -> bool:
        theirs = (obj.get("PrimaryEmailAddr") or {}).get("Address", "")
        return bool(theirs) and theirs.strip().lower() == customer.billing_email.strip().lower()


class ItemMapper(Mapper):
    def body(self, code: ChargeCode, ctx) -> dict:
        return {
            "Name": code.name[:100],
            "Type": "Service",
            "Description": code.description or code.name,
            "UnitPrice": money(code.default_rate),
            "IncomeAccountRef": {"value": ctx.income_account_id()},
            "Active": code.is_active,
        }

    def natural_key_query(self, code) -> str:
        return f"SELECT * FROM Item WHERE Name = {quote(code.name[:100])}"

    def matches(self, code, obj) -> bool:
        return obj.get("Name", "").casefold() == code.name[:100].casefold()


def _customer_dependency(record, ctx, auto_push):
    customer = record.customer
    require_synced(
        customer,
        reason="customer_not_synced",
        label=f"Customer {customer.display_name}",
        auto_push=auto_push if ctx.settings.auto_create_customers else None,
    )


def _item_refs(codes) -> None:
    unmapped = sorted({c.code for c in codes if not c.qb_id})
    if unmapped:
        raise MappingProblem(
            "missing_item_mapping",
            f"Charge code {', '.join(unmapped)} is not mapped to a QuickBooks item.",
        )


class InvoiceMapper(Mapper):
    def skip_reason(self, invoice: Invoice, ctx) -> str:
        if invoice.status == Invoice.Status.DRAFT:
            return "Draft: syncs when approved."
        trigger = ctx.settings.invoice_sync_trigger
        if trigger == "billed" and invoice.status == Invoice.Status.APPROVED:
            return "Approved: syncs when billed (Finance settings)."
        if invoice.status == Invoice.Status.VOID and not invoice.qb_id:
            return "Voided before it was synced: nothing to send."
        return ""

    def dependencies(self, invoice, ctx, auto_push):
        _customer_dependency(invoice, ctx, auto_push)
        if invoice.status != Invoice.Status.VOID:
            lines = [line for cs in invoice.charge_sets.all() for line in cs.lines.all()]
            if not lines:
                raise MappingProblem("no_lines", "The invoice has no charge lines.")
            _item_refs(line.charge_code for line in lines)

    def body(self, invoice: Invoice, ctx) -> dict:
        lines = []
        for number, described in enumerate(
            describe_invoice(invoice=invoice, settings=ctx.settings), 1
        ):
            line = described.charge_line
            lines.append(
                {
                    "LineNum": number,
                    "DetailType": "SalesItemLineDetail",
                    "Amount": money(line.amount),
                    "Description": described.text,
                    "SalesItemLineDetail": {
                        "ItemRef": ref(line.charge_code, line.charge_code.name[:100]),
                        "Qty": float(line.quantity),
                        "UnitPrice": money(line.rate),
                    },
                }
            )
        body = {
            "DocNumber": invoice.doc_number,
            "TxnDate": invoice.invoice_date.isoformat(),
            "CustomerRef": ref(invoice.customer, invoice.customer.display_name),
            "Line": lines,
        }
        if invoice.due_date:
            body["DueDate"] = invoice.due_date.isoformat()
        if invoice.memo:
            body["PrivateNote"] = invoice.memo[:4000]
        if invoice.customer.billing_email:
            body["BillEmail"] = {"Address": invoice.customer.billing_email}
        return body

    def natural_key_query(self, invoice) -> str:
        return f"SELECT * FROM Invoice WHERE DocNumber = {quote(invoice.doc_number)}"

    def matches(self, invoice, obj) -> bool:
        return (
            obj.get("DocNumber") == invoice.doc_number
            and (obj.get("CustomerRef") or {}).get("value") == invoice.customer.qb_id
        )



class CreditMemoMapper(Mapper):
    def dependencies(self, memo, ctx, auto_push):
        _customer_dependency(memo, ctx, auto_push)
        _item_refs(line.charge_code for line in memo.lines.all())

    def body(self, memo: CreditMemo, ctx) -> dict:
        lines = [
            {
                "LineNum": number,
                "DetailType": "SalesItemLineDetail",
                "Amount": money(line.amount),
                "Description": line.description[:4000],
                "SalesItemLineDetail": {
                    "ItemRef": ref(line.charge_code, line.charge_code.name[:100]),
                    "Qty": 1,
                    "UnitPrice": money(line.amount),
                },
            }
            for number, line in enumerate(memo.lines.all(), 1)
        ]
        body = {
            "DocNumber": memo.number,
            "TxnDate": memo.memo_date.isoformat(),
            "CustomerRef": ref(memo.customer, memo.customer.display_name),
            "Line": lines,
        }
        note = memo.reason
        if memo.invoice_id:
            note = f"Credit for invoice {memo.invoice.doc_number}. {note}".strip()
        if note:
            body["PrivateNote"] = note[:4000]
        return body

    def natural_key_query(self, memo) -> str:
        return f"SELECT * FROM CreditMemo WHERE DocNumber = {quote(memo.number)}"

    def matches(self, memo, obj) -> bool:
        return obj.get("DocNumber") == memo.number


class PaymentMapper(Mapper):
    def skip_reason(self, payment: Payment, ctx) -> str:
        if payment.origin == Payment.Origin.QUICKBOOKS:
            return "Applied in QuickBooks: nothing to send back."
        return ""

    def dependencies(self, payment, ctx, auto_push):
        _customer_dependency(payment, ctx, auto_push)
        for application in payment.applications.all():
            invoice = application.invoice
            if not invoice.qb_id:
                if invoice.sync_status in {
                    SyncStatus.PENDING,
                    SyncStatus.RETRY_WAIT,
                    SyncStatus.IN_FLIGHT,
                }:
                    raise DependencyWait(f"Invoice {invoice.doc_number} is still being synced")
                raise MappingProblem(
                    "invoice_not_synced",
                    f"Invoice {invoice.doc_number} is not in QuickBooks "
                    f"({invoice.get_sync_status_display().lower()}).",
                )

    def body(self, payment: Payment, ctx) -> dict:
        body = {
            "CustomerRef": ref(payment.customer, payment.customer.display_name),
            "TotalAmt": money(payment.amount),
            "TxnDate": payment.payment_date.isoformat(),
            "PrivateNote": f"TMS payment {payment.pk}",
            "Line": [
                {
                    "Amount": money(a.amount),
                    "LinkedTxn": [{"TxnId": a.invoice.qb_id, "TxnType": "Invoice"}],
                }
                for a in payment.applications.all()
            ],
        }
        if payment.reference_number:
            body["PaymentRefNum"] = payment.reference_number[:21]
        return body

    def natural_key_query(self, payment) -> str:
        return (
            f"SELECT * FROM Payment WHERE TxnDate = {quote(payment.payment_date.isoformat())}"
            f" AND CustomerRef = {quote(payment.customer.qb_id)}"
        )

    def matches(self, payment, obj) -> bool:
        return obj.get("PrivateNote") == f"TMS payment {payment.pk}" and abs(
            Decimal(str(obj.get("TotalAmt") or 0)) - payment.amount
        ) < Decimal("0.005")


MAPPERS: dict[str, Mapper] = {
    "customer": CustomerMapper("customer", "Customer", Customer),
    "item": ItemMapper("item", "Item", ChargeCode),
    "invoice": InvoiceMapper(
        "invoice",
        "Invoice",
        Invoice,
        select_related=("customer",),
    ),
    "creditmemo": CreditMemoMapper("creditmemo", "CreditMemo", CreditMemo, ("customer", "invoice")),
    "payment": PaymentMapper("payment", "Payment", Payment, ("customer",)),
}
ORDERED = [MAPPERS[t] for t in SYNC_ORDER]

PREFETCH = {
    "invoice": ("charge_sets__load", "charge_sets__lines__charge_code"),
    "creditmemo": ("lines__charge_code",),
    "payment": ("applications__invoice",),
}


def mapper_for(sync_type: str) -> Mapper:
    return MAPPERS[sync_type]


def load_records(sync_type: str, pks):
    mapper = MAPPERS[sync_type]
    qs = mapper.model.objects.filter(pk__in=pks).select_related(*mapper.select_related)
    return qs.prefetch_related(*PREFETCH.get(sync_type, ()))


def payload_preview(record) -> dict:
    """What would be sent to QuickBooks now (the Problem Sync drawer shows it)."""
    from sync.services.engine import SyncContext

    mapper = MAPPERS[record.sync_type]
    ctx = SyncContext.for_company(record.company_id, offline=True)
    try:
        return {mapper.entity: mapper.body(record, ctx)}
    except MappingProblem as problem:
        return {"problem": problem.message}
