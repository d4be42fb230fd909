"""One registry of per-type mappers: how each record type behaves on its way to QuickBooks.

The facts of a type (model, label, amount, party, search, toggle, order) are its
`finance.registry.RecordType`; a `Mapper` holds the behaviour, keyed by the same name:
- `body()`: the QuickBooks JSON, pure (no reads, no writes: what the engine needs first it gets
  from `needs_income_account` and `dependencies()`);
- `natural_key_query()` / `matches()`: how a lost create is found again;
- `dependencies()`: what must be in QuickBooks first, as data (`Need`) the engine acts on;
- `wait_for()`: the sweep's filter for records whose dependencies are still on their way;
- flags (`sparse_update`, `voidable`, `duplicate_name`) and hooks (`after_settle`, `pull`).
The engine, sweep, pull, selectors and presenters iterate MAPPERS; nothing outside this
module and finance/registry.py branches on a type's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from django.db import models
from django.db.models import Q, QuerySet

from finance.descriptions import describe_bill_line, describe_invoice
from finance.documents import invoice_attachments_ensure
from finance.models import (
    Bill,
    BillLine,
    ChargeCode,
    ChargeLine,
    CreditMemo,
    Customer,
    Invoice,
    InvoiceAttachment,
    PayCode,
    Payment,
    PaymentApplication,
    SyncedRecord,
    Vendor,
)
from finance.payables import bill_update, bill_void, vendor_update
from finance.registry import RECORD_TYPES, RecordType, record_type
from finance.services import (
    credit_memo_update,
    invoice_update,
    invoice_void,
    quickbooks_balance_fields,
)
from finance.syncstate import OWED
from sync.services import adopt, pull_apply
from sync.services.client import QboObject, QuickBooksSession, quote

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from sync.models import QuickBooksConnection
    from sync.services.engine import SyncContext

RecordT = TypeVar("RecordT", bound=SyncedRecord)


class MappingProblem(Exception):
    """The record cannot be sent as it is; `reason` is a key of sync.problems.REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class DependencyWait(Exception):
    """A record this one needs is still on its way to QuickBooks: try again shortly."""


class PullHook(Protocol):
    """Applies a change read from QuickBooks to our records (sync/services/pull_apply.py) and
    says what it did ("updated", "flagged", "unknown"…)."""

    def __call__(
        self,
        *,
        connection: QuickBooksConnection,
        obj: QboObject,
        session: QuickBooksSession | None = ...,
    ) -> str: ...


class AdoptHook(Protocol):
    """Changes the TMS record to QuickBooks' version of the fields we send, through the finance
    services (sync/services/adopt.py); raises ValidationError for what the TMS cannot take."""

    def __call__(self, record: Any, obj: QboObject, /, *, user: User | None) -> None: ...


class VoidHook(Protocol):
    """Voids the record in the TMS through its finance service (its guards apply)."""

    def __call__(self, record: Any, /, *, user: User | None) -> Any: ...


@dataclass(frozen=True)
class ExtraPull:
    entity: str
    hook: PullHook
    toggle: str = ""  # the FinanceSettings flag that switches it off


@dataclass(frozen=True)
class PullRoute:
    """Where a changed QuickBooks object of one entity goes: its hook, the flag that switches
    it off, and the model of ours it is (None: not a record of ours, every create concerns us)."""

    entity: str
    hook: PullHook
    toggle: str
    model: type[SyncedRecord] | None
    creates: bool  # objects created in QuickBooks concern us


@dataclass(frozen=True)
class Need:
    """Something that must be in QuickBooks before this record: the engine checks it, pushes it
    first when `push_first`, waits while it is still owed, else parks the record as `reason`."""

    record: SyncedRecord
    reason: str
    label: str
    push_first: bool = False


# A record QuickBooks refused because something it names is inactive or gone there (a problem
# of its own): it waits on that one, whichever kind it is.
USES_A_PROBLEM = "uses_a_problem"


@dataclass(frozen=True)
class Waiting:
    model: type[SyncedRecord]
    condition: Q
    reason: str  # why it waits when this one is not in QuickBooks yet

    @property
    def reasons(self) -> tuple[str, str]:
        return (self.reason, USES_A_PROBLEM)


def money(value: Decimal) -> float:
    return float(Decimal(value).quantize(Decimal("0.01")))


def ref(record: SyncedRecord, name: str = "") -> dict[str, str]:
    reference = {"value": record.qb_id}
    if name:
        reference["name"] = name
    return reference


def owed(relation: str) -> Q:
    """Records whose `relation` (a dependency, one per record) is not in QuickBooks yet but on
    its way."""
    return Q(**{f"{relation}__qb_id": "", f"{relation}__sync_status__in": OWED})


def owed_via(link: type[models.Model], dependency: str, record: str) -> Q:
    """Records with any `link` row (a line, an application) whose `dependency` is owed. One
    uncorrelated subquery, run once: an exclude across a many-valued relation is a correlated
    EXISTS per record (a sweep of a 4,000-invoice backfill ran 90 s while its charge codes were
    owed), and Django splits its two conditions over different rows."""
    return Q(pk__in=link._default_manager.filter(owed(dependency)).values(record))


@dataclass(frozen=True)
class Mapper(Generic[RecordT]):
    sync_type: str
    entity: str  # the QuickBooks entity name
    select_related: tuple[str, ...] = ()
    prefetch: tuple[str, ...] = ()
    sparse_update: bool = False  # name lists: send only our fields, keep what QuickBooks adds
    voidable: bool = False  # voided in the TMS → voided in QuickBooks, not updated
    # On 6240 (name taken): "email" links a same-named object whose email matches ours,
    # "link" links any same-named object, "problem" parks the record.
    duplicate_name: str = "problem"
    needs_income_account: bool = False  # the body names the income account new items post to
    unblocks_others: bool = False  # others wait for it: a landed batch asks for an early sweep
    pull: PullHook | None = None  # applies a change read from QuickBooks
    pull_toggle: str = ""  # the FinanceSettings flag that switches pulling this type off
    pull_creates: bool = False  # objects created in QuickBooks concern us (a payment does)
    adopt: AdoptHook | None = None  # takes QuickBooks' version into the TMS, a person asking
    void_in_tms: VoidHook | None = None  # voids the record in the TMS (the finance service)
    doc_number_field: str = ""  # the field sent as DocNumber, which QuickBooks keeps unique
    # QuickBooks entities pulled for this type that are not records of ours (a bill's
    # BillPayments); every object of theirs concerns us, creates too.
    extra_pulls: tuple[ExtraPull, ...] = ()
    # Sent as a file upload (upload()), one record a request: the batch endpoint takes no files.
    uploads: bool = False

    @property
    def record_type(self) -> RecordType:
        return record_type(self.sync_type)

    @property
    def model(self) -> type[SyncedRecord]:
        return self.record_type.model

    def load(self, pks: Iterable[int]) -> QuerySet[SyncedRecord]:
        """The records with everything body() and dependencies() read, in three queries."""
        return (
            self.model.objects.filter(pk__in=pks)
            .select_related(*self.select_related)
            .prefetch_related(*self.prefetch)
        )

    # -- overridden per type --
    def body(self, record: RecordT, ctx: SyncContext) -> QboObject:
        raise NotImplementedError

    def natural_key_query(self, record: RecordT) -> str:
        raise NotImplementedError

    def matches(self, record: RecordT, obj: QboObject) -> bool:
        return True

    def skip_reason(self, record: RecordT, ctx: SyncContext) -> str:
        return ""

    def dependencies(self, record: RecordT, ctx: SyncContext) -> list[Need]:
        """What must be in QuickBooks first (the engine sees to it before check())."""
        return []

    def check(self, record: RecordT, ctx: SyncContext) -> None:
        """Raise MappingProblem when the record itself cannot be sent (no lines, an unmapped
        charge code)."""

    def wait_for(self) -> Q | None:
        """Due records the sweep leaves for later: their dependencies are still on their way."""
        return None

    def void_requested(self, record: RecordT) -> bool:
        return False

    def link_allowed(self, record: RecordT, found: QboObject) -> bool:
        """On 6240, whether the same-named QuickBooks object is this record (see duplicate_name)."""
        return self.duplicate_name == "link"

    def name_taken(self, record: RecordT, found: QboObject | None) -> tuple[str, str]:
        """On 6240 when not linking: the problem reason and what to tell the clerk ("" = Intuit's
        own message)."""
        return "duplicate_name", ""

    def rename_on_clash(self, record: RecordT, ctx: SyncContext) -> bool:
        """On 6240 with the name held by another kind of object: whether the record took
        another name (Finance settings say so) and goes again at once."""
        return False

    def apply(self, record: RecordT, obj: QboObject) -> dict[str, Any]:
        """Fields to store from QuickBooks' answer (besides Id and SyncToken)."""
        return {}

    def after_settle(self, record: RecordT, obj: QboObject) -> None:
        """After QuickBooks accepted the record (its answer is `obj`)."""

    def waiting_on(self, record: RecordT) -> list[Waiting]:
        """The records parked as problems because this one was not in QuickBooks (the reason
        their Need or check gave); they go back in the queue once it is."""
        return []

    def references(self, record: RecordT) -> list[Need]:
        """The QuickBooks objects its body names (customer, items, invoices), each with the
        reason this record waits under while that one has a problem (its waiting_on reason)."""
        return []

    def renumber(self, record: RecordT, number: str) -> RecordT:
        """A new document number, through the finance service (types with doc_number_field)."""
        raise NotImplementedError

    def upload(self, record: RecordT, ctx: SyncContext, body: QboObject, rid: str) -> QboObject:
        """Send the record as a file with `body` as its metadata (types with `uploads`)."""
        raise NotImplementedError


def _party_and_items(record: Invoice | CreditMemo, codes: Iterable[ChargeCode]) -> list[Need]:
    customer = record.customer
    needs = [Need(customer, USES_A_PROBLEM, f"Customer {customer.display_name}")]
    for code in {code.pk: code for code in codes}.values():
        needs.append(Need(code, USES_A_PROBLEM, f"Charge code {code.code}"))
    return needs


def _customer_need(record: Invoice | CreditMemo | Payment, ctx: SyncContext) -> Need:
    customer = record.customer
    return Need(
        customer,
        reason="customer_not_synced",
        label=f"Customer {customer.display_name}",
        push_first=ctx.settings.auto_create_customers,
    )


def _require_items(codes: Iterable[ChargeCode]) -> None:
    unmapped = sorted({c.code for c in codes if not c.qb_id})
    if unmapped:
        raise MappingProblem(
            "missing_item_mapping",
            f"Charge code {', '.join(unmapped)} is not mapped to a QuickBooks item.",
        )


def _contact(party: Customer | Vendor, email: str) -> QboObject:
    """What QuickBooks' name lists share: email, phone, address."""
    body: QboObject = {}
    if email:
        body["PrimaryEmailAddr"] = {"Address": email}
    if party.phone:
        body["PrimaryPhone"] = {"FreeFormNumber": party.phone}
    if party.address_line1:
        body["BillAddr"] = {
            "Line1": party.address_line1,
            "City": party.city,
            "CountrySubDivisionCode": party.state,
            "PostalCode": party.postal_code,
            "Country": party.country,
        }
    return body


def _same_email(found: QboObject, ours: str) -> bool:
    theirs = (found.get("PrimaryEmailAddr") or {}).get("Address", "")
    return bool(theirs) and theirs.strip().lower() == ours.strip().lower()


def _first_balance(record: Invoice | Bill, obj: QboObject) -> dict[str, Any]:
    """A new document's first Balance goes with the settle: nothing can have learnt a newer one
    (a pull only finds documents that already have their QuickBooks ID)."""
    if record.qb_id or obj.get("Balance") in (None, ""):
        return {}
    return quickbooks_balance_fields(balance=obj["Balance"], sync_token=obj.get("SyncToken"))


class CustomerMapper(Mapper[Customer]):
    def waiting_on(self, customer: Customer) -> list[Waiting]:
        mine = Q(customer_id=customer.pk)
        return [Waiting(m, mine, "customer_not_synced") for m in (Invoice, CreditMemo, Payment)]

    def body(self, customer: Customer, ctx: SyncContext) -> QboObject:
        return {
            "DisplayName": customer.display_name,
            "CompanyName": customer.company_name or customer.display_name,
            "Active": customer.is_active,
            **_contact(customer, customer.billing_email),
        }

    def natural_key_query(self, customer: Customer) -> str:
        return f"SELECT * FROM Customer WHERE DisplayName = {quote(customer.display_name)}"

    def matches(self, customer: Customer, obj: QboObject) -> bool:
        return obj.get("DisplayName", "").casefold() == customer.display_name.casefold()

    def link_allowed(self, customer: Customer, found: QboObject) -> bool:
        return _same_email(found, customer.billing_email)

    def name_taken(self, customer: Customer, found: QboObject | None) -> tuple[str, str]:
        if found is None:
            return "duplicate_name", (
                f"{customer.display_name!r} is already used by a vendor or employee in "
                "QuickBooks (names are shared between them)."
            )
        theirs = (found.get("PrimaryEmailAddr") or {}).get("Address", "no email")
        return "customer_email_mismatch", (
            f"QuickBooks customer {found['Id']} is named {found.get('DisplayName')!r} "
            f"with email {theirs}; ours has {customer.billing_email or 'no email'}."
        )


class ItemMapper(Mapper[ChargeCode]):
    def waiting_on(self, code: ChargeCode) -> list[Waiting]:
        return [
            Waiting(Invoice, Q(charge_sets__lines__charge_code_id=code.pk), "missing_item_mapping"),
            Waiting(CreditMemo, Q(lines__charge_code_id=code.pk), "missing_item_mapping"),
        ]

    def body(self, code: ChargeCode, ctx: SyncContext) -> QboObject:
        return {
            "Name": code.name[:100],
            "Type": "Service",
            "Description": code.description or code.name,
            "UnitPrice": money(code.default_rate),
            "IncomeAccountRef": {"value": ctx.income_account_ref},
            "Active": code.is_active,
        }

    def natural_key_query(self, code: ChargeCode) -> str:
        return f"SELECT * FROM Item WHERE Name = {quote(code.name[:100])}"

    def matches(self, code: ChargeCode, obj: QboObject) -> bool:
        return obj.get("Name", "").casefold() == code.name[:100].casefold()


class InvoiceMapper(Mapper[Invoice]):
    def waiting_on(self, invoice: Invoice) -> list[Waiting]:
        return [
            Waiting(Payment, Q(applications__invoice_id=invoice.pk), "invoice_not_synced"),
            Waiting(InvoiceAttachment, Q(invoice_id=invoice.pk), "invoice_not_synced"),
        ]

    def skip_reason(self, invoice: Invoice, ctx: SyncContext) -> str:
        if invoice.status == Invoice.Status.DRAFT:
            return "Draft: syncs when approved."
        trigger = ctx.settings.invoice_sync_trigger
        if trigger == "billed" and invoice.status == Invoice.Status.APPROVED:
            return "Approved: syncs when billed (Finance settings)."
        if invoice.status == Invoice.Status.VOID and not invoice.qb_id:
            return "Voided before it was synced: nothing to send."
        return ""

    def void_requested(self, invoice: Invoice) -> bool:
        return invoice.status == Invoice.Status.VOID

    def renumber(self, invoice: Invoice, number: str) -> Invoice:
        return invoice_update(invoice=invoice, doc_number=number)

    def references(self, invoice: Invoice) -> list[Need]:
        lines = [line for cs in invoice.charge_sets.all() for line in cs.lines.all()]
        return _party_and_items(invoice, (line.charge_code for line in lines))

    def dependencies(self, invoice: Invoice, ctx: SyncContext) -> list[Need]:
        return [_customer_need(invoice, ctx)]

    def check(self, invoice: Invoice, ctx: SyncContext) -> None:
        if invoice.status != Invoice.Status.VOID:
            lines = [line for cs in invoice.charge_sets.all() for line in cs.lines.all()]
            if not lines:
                raise MappingProblem("no_lines", "The invoice has no charge lines.")
            _require_items(line.charge_code for line in lines)

    def wait_for(self) -> Q:
        # An invoice whose charge code is still being created would be parked as
        # missing_item_mapping if its batch ran before the item's (same sweep, parallel workers).
        return owed("customer") | owed_via(ChargeLine, "charge_code", "charge_set__invoice")

    def body(self, invoice: Invoice, ctx: SyncContext) -> QboObject:
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
        body: QboObject = {
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

    def natural_key_query(self, invoice: Invoice) -> str:
        return f"SELECT * FROM Invoice WHERE DocNumber = {quote(invoice.doc_number)}"

    def matches(self, invoice: Invoice, obj: QboObject) -> bool:
        return (
            obj.get("DocNumber") == invoice.doc_number
            and (obj.get("CustomerRef") or {}).get("value") == invoice.customer.qb_id
        )

    def apply(self, invoice: Invoice, obj: QboObject) -> dict[str, Any]:
        return _first_balance(invoice, obj)

    def after_settle(self, invoice: Invoice, obj: QboObject) -> None:
        if obj.get("Balance") not in (None, ""):
            pull_apply.balance_after_answer(invoice=invoice, obj=obj)
        if not invoice.qb_id and obj.get("Id"):  # its first arrival: its loads' documents follow
            invoice.qb_id = str(obj["Id"])
            invoice_attachments_ensure(invoice=invoice)


class CreditMemoMapper(Mapper[CreditMemo]):
    def dependencies(self, memo: CreditMemo, ctx: SyncContext) -> list[Need]:
        return [_customer_need(memo, ctx)]

    def check(self, memo: CreditMemo, ctx: SyncContext) -> None:
        _require_items(line.charge_code for line in memo.lines.all())

    def renumber(self, memo: CreditMemo, number: str) -> CreditMemo:
        return credit_memo_update(credit_memo=memo, number=number)

    def references(self, memo: CreditMemo) -> list[Need]:
        return _party_and_items(memo, (line.charge_code for line in memo.lines.all()))

    def wait_for(self) -> Q:
        return owed("customer")

    def body(self, memo: CreditMemo, ctx: SyncContext) -> QboObject:
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
        body: QboObject = {
            "DocNumber": memo.number,
            "TxnDate": memo.memo_date.isoformat(),
            "CustomerRef": ref(memo.customer, memo.customer.display_name),
            "Line": lines,
        }
        note = memo.reason
        if memo.invoice is not None:  # no query when there is none (invoice_id is NULL)
            note = f"Credit for invoice {memo.invoice.doc_number}. {note}".strip()
        if note:
            body["PrivateNote"] = note[:4000]
        return body

    def natural_key_query(self, memo: CreditMemo) -> str:
        return f"SELECT * FROM CreditMemo WHERE DocNumber = {quote(memo.number)}"

    def matches(self, memo: CreditMemo, obj: QboObject) -> bool:
        return obj.get("DocNumber") == memo.number


class PaymentMapper(Mapper[Payment]):
    def skip_reason(self, payment: Payment, ctx: SyncContext) -> str:
        if payment.origin == Payment.Origin.QUICKBOOKS:
            return "Applied in QuickBooks: nothing to send back."
        return ""

    def dependencies(self, payment: Payment, ctx: SyncContext) -> list[Need]:
        needs = [_customer_need(payment, ctx)]
        for application in payment.applications.all():
            invoice = application.invoice
            needs.append(Need(invoice, "invoice_not_synced", f"Invoice {invoice.doc_number}"))
        return needs

    def wait_for(self) -> Q:
        return owed("customer") | owed_via(PaymentApplication, "invoice", "payment")

    def references(self, payment: Payment) -> list[Need]:
        customer = payment.customer
        needs = [Need(customer, USES_A_PROBLEM, f"Customer {customer.display_name}")]
        for application in payment.applications.all():
            invoice = application.invoice
            needs.append(Need(invoice, USES_A_PROBLEM, f"Invoice {invoice.doc_number}"))
        return needs

    def body(self, payment: Payment, ctx: SyncContext) -> QboObject:
        body: QboObject = {
            "CustomerRef": ref(payment.customer, payment.customer.display_name),
            "TotalAmt": money(payment.amount),
            "TxnDate": payment.payment_date.isoformat(),
            "PrivateNote": f"{pull_apply.TMS_PAYMENT_NOTE}{payment.pk}",
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

    def natural_key_query(self, payment: Payment) -> str:
        return (
            f"SELECT * FROM Payment WHERE TxnDate = {quote(payment.payment_date.isoformat())}"
            f" AND CustomerRef = {quote(payment.customer.qb_id)}"
        )

    def matches(self, payment: Payment, obj: QboObject) -> bool:
        return obj.get("PrivateNote") == f"{pull_apply.TMS_PAYMENT_NOTE}{payment.pk}" and abs(
            Decimal(str(obj.get("TotalAmt") or 0)) - payment.amount
        ) < Decimal("0.005")


class VendorMapper(Mapper[Vendor]):
    def waiting_on(self, vendor: Vendor) -> list[Waiting]:
        return [Waiting(Bill, Q(vendor_id=vendor.pk), "vendor_not_synced")]

    def body(self, vendor: Vendor, ctx: SyncContext) -> QboObject:
        return {
            "DisplayName": vendor.name_in_quickbooks,
            "CompanyName": vendor.company_name or vendor.display_name,
            "Vendor1099": vendor.is_1099,
            "Active": vendor.is_active,
            **_contact(vendor, vendor.email),
        }

    def natural_key_query(self, vendor: Vendor) -> str:
        return f"SELECT * FROM Vendor WHERE DisplayName = {quote(vendor.name_in_quickbooks)}"

    def matches(self, vendor: Vendor, obj: QboObject) -> bool:
        return obj.get("DisplayName", "").casefold() == vendor.name_in_quickbooks.casefold()

    def link_allowed(self, vendor: Vendor, found: QboObject) -> bool:
        return _same_email(found, vendor.email)

    def name_taken(self, vendor: Vendor, found: QboObject | None) -> tuple[str, str]:
        if found is None:
            return "vendor_name_taken", (
                f"{vendor.name_in_quickbooks!r} is already the name of a customer or employee in "
                "QuickBooks (names are one list there): send the vendor with the suffix of "
                "Finance settings, or rename it."
            )
        theirs = (found.get("PrimaryEmailAddr") or {}).get("Address", "no email")
        return "duplicate_name", (
            f"QuickBooks vendor {found['Id']} is named {found.get('DisplayName')!r} with email "
            f"{theirs}; ours has {vendor.email or 'no email'}."
        )

    def rename_on_clash(self, vendor: Vendor, ctx: SyncContext) -> bool:
        if ctx.settings.vendor_name_clash != "suffix" or vendor.qb_display_name:
            return False
        vendor_update(
            vendor=vendor, qb_display_name=suffixed(vendor, ctx.settings.vendor_name_suffix)
        )
        return True


def suffixed(vendor: Vendor, suffix: str) -> str:
    """The vendor's name with the suffix, within QuickBooks' 100 characters."""
    suffix = suffix or " (Vendor)"
    return vendor.display_name[: 100 - len(suffix)] + suffix


class AccountMapper(Mapper[PayCode]):
    """A pay code → a QuickBooks account (created by "create the missing accounts")."""

    def waiting_on(self, code: PayCode) -> list[Waiting]:
        return [Waiting(Bill, Q(lines__pay_code_id=code.pk), "missing_account_mapping")]

    def body(self, code: PayCode, ctx: SyncContext) -> QboObject:
        return {
            "Name": code.name[:100],
            "AccountType": code.account_type,
            "Description": f"TMS pay code {code.code}",
            "Active": code.is_active,
        }

    def natural_key_query(self, code: PayCode) -> str:
        return f"SELECT * FROM Account WHERE Name = {quote(code.name[:100])}"

    def matches(self, code: PayCode, obj: QboObject) -> bool:
        return obj.get("Name", "").casefold() == code.name[:100].casefold()


class BillMapper(Mapper[Bill]):
    def skip_reason(self, bill: Bill, ctx: SyncContext) -> str:
        if bill.status == Bill.Status.DRAFT:
            return "Draft: syncs when approved."
        if bill.status == Bill.Status.VOID and not bill.qb_id:
            return "Voided before it was synced: nothing to send."
        return ""

    def renumber(self, bill: Bill, number: str) -> Bill:
        return bill_update(bill=bill, doc_number=number)

    def dependencies(self, bill: Bill, ctx: SyncContext) -> list[Need]:
        vendor = bill.vendor
        return [Need(vendor, "vendor_not_synced", f"Vendor {vendor.display_name}", push_first=True)]

    def references(self, bill: Bill) -> list[Need]:
        vendor = bill.vendor
        needs = [Need(vendor, USES_A_PROBLEM, f"Vendor {vendor.display_name}")]
        codes = {line.pay_code.pk: line.pay_code for line in bill.lines.all()}
        needs += [Need(c, USES_A_PROBLEM, f"Pay code {c.code}") for c in codes.values()]
        return needs

    def check(self, bill: Bill, ctx: SyncContext) -> None:
        lines = list(bill.lines.all())
        if not lines and bill.status != Bill.Status.VOID:
            raise MappingProblem("no_lines", "The bill has no lines.")
        unmapped = sorted({line.pay_code.code for line in lines if not line.pay_code.qb_id})
        if unmapped:
            raise MappingProblem(
                "missing_account_mapping",
                f"Pay code {', '.join(unmapped)} is not mapped to a QuickBooks account.",
            )

    def wait_for(self) -> Q:
        return owed("vendor") | owed_via(BillLine, "pay_code", "bill")

    def body(self, bill: Bill, ctx: SyncContext) -> QboObject:
        void = bill.status == Bill.Status.VOID
        lines = [
            {
                "LineNum": number,
                "DetailType": "AccountBasedExpenseLineDetail",
                # QuickBooks' API cannot void a bill; its screen's void zeroes every line.
                "Amount": 0.0 if void else money(line.amount),
                "Description": describe_bill_line(line=line, settings=ctx.settings),
                "AccountBasedExpenseLineDetail": {
                    "AccountRef": ref(line.pay_code, line.pay_code.name[:100])
                },
            }
            for number, line in enumerate(bill.lines.all(), 1)
        ]
        body: QboObject = {
            "DocNumber": bill.doc_number,
            "TxnDate": bill.bill_date.isoformat(),
            "VendorRef": ref(bill.vendor, bill.vendor.name_in_quickbooks),
            "Line": lines,
        }
        if bill.due_date:
            body["DueDate"] = bill.due_date.isoformat()
        note = bill.memo
        if bill.period_start and bill.period_end:
            period = f"Settlement {bill.period_start:%m/%d/%Y}–{bill.period_end:%m/%d/%Y}"
            note = f"{period}. {note}".strip()
        if void:
            note = "Voided"  # as QuickBooks' own void of a bill writes it (drift.voided)
        if note:
            body["PrivateNote"] = note[:4000]
        return body

    def natural_key_query(self, bill: Bill) -> str:
        return (
            f"SELECT * FROM Bill WHERE DocNumber = {quote(bill.doc_number)}"
            f" AND VendorRef = {quote(bill.vendor.qb_id)}"
        )

    def matches(self, bill: Bill, obj: QboObject) -> bool:
        return (
            obj.get("DocNumber") == bill.doc_number
            and (obj.get("VendorRef") or {}).get("value") == bill.vendor.qb_id
        )

    def apply(self, bill: Bill, obj: QboObject) -> dict[str, Any]:
        return _first_balance(bill, obj)


class AttachmentMapper(Mapper[InvoiceAttachment]):
    """A load document attached to its invoice in QuickBooks (an Attachable, uploaded)."""

    def skip_reason(self, attachment: InvoiceAttachment, ctx: SyncContext) -> str:
        kind = attachment.document.kind
        if not attachment.qb_id and kind not in (ctx.settings.attach_document_kinds or []):
            label = attachment.document.get_kind_display()
            return f"{label} documents are not attached to invoices (Finance settings)."
        return ""

    def dependencies(self, attachment: InvoiceAttachment, ctx: SyncContext) -> list[Need]:
        invoice = attachment.invoice
        return [Need(invoice, "invoice_not_synced", f"Invoice {invoice.doc_number}")]

    def references(self, attachment: InvoiceAttachment) -> list[Need]:
        invoice = attachment.invoice
        return [Need(invoice, USES_A_PROBLEM, f"Invoice {invoice.doc_number}")]

    def wait_for(self) -> Q:
        return owed("invoice")

    def check(self, attachment: InvoiceAttachment, ctx: SyncContext) -> None:
        document = attachment.document
        if not document.file or not document.file.storage.exists(document.file.name):
            raise MappingProblem(
                "attachment_file_missing",
                f"The file of {document.original_filename} is no longer in the document store.",
            )

    def body(self, attachment: InvoiceAttachment, ctx: SyncContext) -> QboObject:
        document = attachment.document
        return {
            "AttachableRef": [
                {
                    "EntityRef": {"type": "Invoice", "value": attachment.invoice.qb_id},
                    "IncludeOnSend": ctx.settings.attachments_on_send,
                }
            ],
            "FileName": document.original_filename,
            "ContentType": document.content_type,
            "Note": f"{document.get_kind_display()} · load {document.load.load_number}",
        }

    def upload(
        self, attachment: InvoiceAttachment, ctx: SyncContext, body: QboObject, rid: str
    ) -> QboObject:
        # QuickBooks cannot replace an attachment's bytes: a new version is a new upload.
        metadata = {k: v for k, v in body.items() if k not in {"Id", "SyncToken", "sparse"}}
        document = attachment.document
        try:
            with document.file.open("rb") as handle:
                content = handle.read()
        except FileNotFoundError as gone:
            raise MappingProblem(
                "attachment_file_missing",
                f"The file of {document.original_filename} is no longer in the document store.",
            ) from gone
        return ctx.session.upload(metadata, content, request_id=rid)

    def natural_key_query(self, attachment: InvoiceAttachment) -> str:
        return (
            "SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Type = 'Invoice'"
            f" AND AttachableRef.EntityRef.value = {quote(attachment.invoice.qb_id)}"
        )

    def matches(self, attachment: InvoiceAttachment, obj: QboObject) -> bool:
        document = attachment.document
        return obj.get("FileName") == document.original_filename and str(obj.get("Size")) == str(
            document.size
        )


MAPPERS: dict[str, Mapper[Any]] = {
    "customer": CustomerMapper(
        "customer",
        "Customer",
        sparse_update=True,
        duplicate_name="email",
        unblocks_others=True,
        pull=pull_apply.customer_changed,
        adopt=adopt.customer_adopt,
    ),
    "item": ItemMapper(
        "item",
        "Item",
        sparse_update=True,
        duplicate_name="link",
        needs_income_account=True,
        unblocks_others=True,
        adopt=adopt.item_adopt,
    ),
    "invoice": InvoiceMapper(
        "invoice",
        "Invoice",
        select_related=("customer",),
        prefetch=("charge_sets__load", "charge_sets__lines__charge_code"),
        voidable=True,
        pull=pull_apply.invoice_changed,
        adopt=adopt.invoice_adopt,
        void_in_tms=lambda invoice, *, user: invoice_void(invoice=invoice, user=user),
        doc_number_field="doc_number",
    ),
    "creditmemo": CreditMemoMapper(
        "creditmemo",
        "CreditMemo",
        select_related=("customer", "invoice"),
        prefetch=("lines__charge_code",),
        adopt=adopt.credit_memo_adopt,
        doc_number_field="number",
    ),
    "payment": PaymentMapper(
        "payment",
        "Payment",
        select_related=("customer",),
        prefetch=("applications__invoice",),
        pull=pull_apply.payment_changed,
        pull_toggle="pull_payments",
        pull_creates=True,
        adopt=adopt.payment_adopt,
    ),
    "vendor": VendorMapper(
        "vendor",
        "Vendor",
        sparse_update=True,
        duplicate_name="email",
        unblocks_others=True,
        pull=pull_apply.vendor_changed,
    ),
    "account": AccountMapper(
        "account",
        "Account",
        sparse_update=True,
        duplicate_name="link",
        unblocks_others=True,
    ),
    "bill": BillMapper(
        "bill",
        "Bill",
        select_related=("vendor",),
        prefetch=("lines__pay_code", "lines__load"),
        pull=pull_apply.bill_changed,
        extra_pulls=(
            ExtraPull("BillPayment", pull_apply.bill_payment_changed, "pull_bill_payments"),
        ),
        void_in_tms=lambda bill, *, user: bill_void(bill=bill, user=user),
        doc_number_field="doc_number",
    ),
    "attachment": AttachmentMapper(
        "attachment",
        "Attachable",
        select_related=("invoice", "document__load"),
        uploads=True,
    ),
}
assert list(MAPPERS) == list(RECORD_TYPES), "mappers and record types must list the same types"
ORDERED: list[Mapper[Any]] = list(MAPPERS.values())  # dependency order (finance registry)
PULLED: dict[str, PullRoute] = {}
for _mapper in ORDERED:  # dependency order: payments see their invoices' latest state
    if _mapper.pull is not None:
        PULLED[_mapper.entity] = PullRoute(
            _mapper.entity, _mapper.pull, _mapper.pull_toggle, _mapper.model, _mapper.pull_creates
        )
    for _extra in _mapper.extra_pulls:
        PULLED[_extra.entity] = PullRoute(_extra.entity, _extra.hook, _extra.toggle, None, True)


def mapper_of(record: SyncedRecord) -> Mapper[Any]:
    return MAPPERS[record.sync_type]


def payload_preview(record: SyncedRecord) -> dict[str, Any]:
    """What would be sent to QuickBooks now (the Problem Sync drawer shows it)."""
    from sync.services.engine import SyncContext

    mapper = mapper_of(record)
    ctx = SyncContext.for_company(record.company_id, offline=True)
    try:
        return {mapper.entity: mapper.body(record, ctx)}
    except MappingProblem as problem:
        return {"problem": problem.message}
