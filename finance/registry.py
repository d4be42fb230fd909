"""What the TMS knows about each record type that reaches QuickBooks: one `RecordType` each.

Facts only (which model, how a person names a record, which fields hold its amount and its
party, what search looks in, which Finance setting switches it off, where it comes in the
dependency order, how its tab is titled). The behaviour of each type lives in the sync side's
`sync.mappers.MAPPERS`, keyed by the same names (two registries because finance never imports
sync). Selectors, presenters, the engine, sweep, pull, admin and roles iterate these instead of
branching on type names.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from finance.models import (
    Bill,
    ChargeCode,
    CreditMemo,
    Customer,
    FinanceSettings,
    Invoice,
    InvoiceAttachment,
    PayCode,
    Payment,
    SyncedRecord,
    Vendor,
)


@dataclass(frozen=True)
class RecordType:
    name: str  # the sync type: problem tabs, requestids, SyncAttempt.record_type
    model: type[SyncedRecord]
    singular: str  # "Credit memo"
    tab_title: str  # "Credit memos"
    label_fields: tuple[str, ...]  # what names one record, joined with " · "
    order: int  # dependency order: a type only depends on types with a lower order
    tab_position: int  # where its tab sits on Problem Sync (money first)
    amount_field: str = ""
    party_field: str = ""  # the customer or vendor the record belongs to
    # Problem Sync search: lookups from the model, `__icontains` added; a path through a
    # to-many relation is searched with a subquery (no duplicated rows).
    search_fields: tuple[str, ...] = ()
    settings_toggle: str = ""  # the FinanceSettings flag that switches the type off ("" = never)
    # Records start unmapped (SKIPPED) until a person links them (charge codes → items), so a
    # new QuickBooks company leaves them unmapped again instead of creating them anew.
    starts_unmapped: bool = False
    # A person may mark it paid without syncing (its payment was applied in QuickBooks).
    payable_outside: bool = False

    @property
    def admin_name(self) -> str:
        name = self.model._meta.model_name
        assert name is not None, "Django names every installed model"
        return name

    def label(self, record: SyncedRecord) -> str:
        """How a person names the record: 'INV-10001', 'DRAY · Drayage', a payment's reference
        (or '#12' when it has none)."""
        parts = [str(getattr(record, name) or "") for name in self.label_fields]
        return " · ".join(p for p in parts if p) or f"#{record.pk}"

    def titled_label(self, record: SyncedRecord) -> str:
        """'Invoice INV-10001', 'Charge code DRAY · Drayage' (messages and audit notes)."""
        name = str(self.model._meta.verbose_name)
        return f"{name[:1].upper()}{name[1:]} {self.label(record)}"

    def enabled(self, finance_settings: FinanceSettings) -> bool:
        return not self.settings_toggle or bool(getattr(finance_settings, self.settings_toggle))

    def party(self, record: SyncedRecord) -> SyncedRecord | None:
        return getattr(record, self.party_field, None) if self.party_field else None

    def amount(self, record: SyncedRecord) -> Decimal | None:
        return getattr(record, self.amount_field, None) if self.amount_field else None


RECORD_TYPES: dict[str, RecordType] = {
    rt.name: rt
    for rt in sorted(
        [
            RecordType(
                name="customer",
                tab_position=3,
                model=Customer,
                singular="Customer",
                tab_title="Customers",
                label_fields=("display_name",),
                order=1,
                search_fields=("display_name", "billing_email"),
                settings_toggle="sync_customers",
            ),
            RecordType(
                name="item",
                tab_position=5,
                model=ChargeCode,
                singular="Item",
                tab_title="Items",
                label_fields=("code", "name"),
                order=2,
                search_fields=("code", "name"),
                starts_unmapped=True,
            ),
            RecordType(
                name="invoice",
                tab_position=1,
                model=Invoice,
                singular="Invoice",
                tab_title="Invoices",
                label_fields=("doc_number",),
                order=3,
                amount_field="total",
                party_field="customer",
                search_fields=(
                    "doc_number",
                    "customer__display_name",
                    "charge_sets__load__container_number",
                    "charge_sets__load__po_number",
                    "charge_sets__load__reference_number",
                    "charge_sets__load__load_number",
                ),
                settings_toggle="sync_invoices",
                payable_outside=True,
            ),
            RecordType(
                name="creditmemo",
                tab_position=4,
                model=CreditMemo,
                singular="Credit memo",
                tab_title="Credit memos",
                label_fields=("number",),
                order=4,
                amount_field="total",
                party_field="customer",
                search_fields=("number", "customer__display_name", "invoice__doc_number"),
                settings_toggle="sync_credit_memos",
            ),
            RecordType(
                name="payment",
                tab_position=2,
                model=Payment,
                singular="Payment",
                tab_title="Payments",
                label_fields=("reference_number",),
                order=5,
                amount_field="amount",
                party_field="customer",
                search_fields=(
                    "reference_number",
                    "customer__display_name",
                    "applications__invoice__doc_number",
                ),
                settings_toggle="sync_payments",
            ),
            RecordType(
                name="vendor",
                tab_position=7,
                model=Vendor,
                singular="Vendor",
                tab_title="Vendors",
                label_fields=("display_name",),
                order=6,
                search_fields=("display_name", "email", "company_name"),
                settings_toggle="sync_vendors",
            ),
            RecordType(
                name="account",
                tab_position=8,
                model=PayCode,
                singular="Pay code",
                tab_title="Pay codes",
                label_fields=("code", "name"),
                order=7,
                search_fields=("code", "name"),
                starts_unmapped=True,
            ),
            RecordType(
                name="bill",
                tab_position=6,
                model=Bill,
                singular="Bill",
                tab_title="Bills",
                label_fields=("doc_number",),
                order=8,
                amount_field="total",
                party_field="vendor",
                search_fields=(
                    "doc_number",
                    "vendor__display_name",
                    "lines__load__load_number",
                    "lines__container_number",
                    "lines__truck_number",
                ),
                settings_toggle="sync_bills",
                payable_outside=True,
            ),
            RecordType(
                name="attachment",
                tab_position=9,
                model=InvoiceAttachment,
                singular="Attachment",
                tab_title="Attachments",
                label_fields=("doc_number", "file_name"),
                order=9,  # after its invoice (and every other type)
                search_fields=(
                    "invoice__doc_number",
                    "document__original_filename",
                    "document__load__load_number",
                    "invoice__customer__display_name",
                ),
                settings_toggle="sync_invoices",
            ),
        ],
        key=lambda rt: rt.order,
    )
}
# Dependency order: customers → items → invoices and credit memos → payments; vendors →
# pay codes (accounts) → bills; load documents attached to invoices last.
SYNC_ORDER: list[str] = list(RECORD_TYPES)
SYNCED_MODELS: dict[str, type[SyncedRecord]] = {n: rt.model for n, rt in RECORD_TYPES.items()}


def default_tab() -> str:
    return min(RECORD_TYPES.values(), key=lambda rt: rt.tab_position).name


def record_type(name: str) -> RecordType:
    try:
        return RECORD_TYPES[name]
    except KeyError:
        raise ValueError(f"unknown record type {name!r}") from None


def record_type_of(record: SyncedRecord) -> RecordType:
    return record_type(record.sync_type)


def model_for(sync_type: str) -> type[SyncedRecord]:
    return record_type(sync_type).model
