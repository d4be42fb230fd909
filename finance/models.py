"""The TMS side: the records finance staff bill, and how they want them synced.

Models hold data and small invariants; operations live in finance/services.py.
"""

import datetime
from collections.abc import Collection
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from finance.syncstate import SyncStatus
from finance.validators import (
    CONTROL_MESSAGE,
    has_control_characters,
    validate_business_date,
    validate_container_number,
    validate_doc_number,
)


class _DecimalSize(TypedDict):
    max_digits: int
    decimal_places: int


MONEY: _DecimalSize = {"max_digits": 12, "decimal_places": 2}


class CheckedFields(models.Model):
    """full_clean refuses, on every text field, control characters (PostgreSQL refuses NUL
    outright, QuickBooks the others) and, on every date field, dates outside the years a
    business bills in. One rule for every model and every field added later."""

    class Meta:
        abstract = True

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        errors: dict[str, Any] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        for field in self._meta.concrete_fields:
            if exclude and field.name in exclude or field.name in errors:
                continue
            value = getattr(self, field.attname, None)
            if isinstance(value, str) and has_control_characters(value):
                errors[field.name] = [ValidationError(f"{field.verbose_name} {CONTROL_MESSAGE}")]
            elif isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
                try:
                    validate_business_date(value, str(field.verbose_name).capitalize())
                except ValidationError as exc:
                    errors[field.name] = exc.error_list
        if errors:
            raise ValidationError(errors)


class Company(CheckedFields):
    """The TMS tenant; one QuickBooks connection and one FinanceSettings each."""

    name = models.CharField(max_length=200, unique=True)

    class Meta:
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's place in a tenant (a trucking company) and their role there: every page, action
    and list is scoped to the tenant the user is working in (finance.tenancy)."""

    class Role(models.TextChoices):
        FINANCE = "finance", "Finance"
        SUPPORT = "support", "Support"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.FINANCE)

    class Meta:
        ordering = ["company__name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "company"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.company} ({self.get_role_display()})"


class SyncedRecord(CheckedFields):
    """Fields every record that reaches QuickBooks carries (one state machine for all)."""

    qb_id = models.CharField("QuickBooks ID", max_length=32, blank=True, default="", db_index=True)
    qb_sync_token = models.CharField(max_length=16, blank=True, default="")
    sync_status = models.CharField(
        max_length=16, choices=SyncStatus.choices, default=SyncStatus.PENDING, db_index=True
    )
    version = models.PositiveIntegerField(default=1)
    synced_version = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    last_error_code = models.CharField(max_length=32, blank=True, default="")
    last_error_message = models.TextField(blank=True, default="")
    problem_reason = models.CharField(max_length=48, blank=True, default="")
    problem_since = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Set when a create was sent and its outcome is unknown (timeout, crash): the next push looks
    # the object up by natural key before creating again.
    create_uncertain = models.BooleanField(default=False)
    # What someone changed in QuickBooks since our last write, when it stopped a push (fields we
    # own, voided, deleted, and QuickBooks' SyncToken then); shown beside ours on the page.
    qb_drift = models.JSONField(default=dict, blank=True)
    # The QuickBooks SyncToken a person agreed to overwrite (exactly that version, no later one).
    qb_overwrite_token = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    # Name used in the sync registry, problem tabs and requestids.
    sync_type: str = ""

    if TYPE_CHECKING:
        # What every concrete synced model has, for code that handles any of them
        # (type[SyncedRecord]): the default manager, and the company foreign key each declares
        # itself (for its own related_name). The manager's rows are Any: django-stubs checks
        # lookups against this abstract model's fields, where `company` is missing.
        objects: ClassVar[models.Manager[Any]]
        company_id: int

    @property
    def is_owed(self) -> bool:
        return self.sync_status in {
            SyncStatus.PENDING,
            SyncStatus.IN_FLIGHT,
            SyncStatus.RETRY_WAIT,
        }


def sync_indexes(prefix: str) -> list[models.Index]:
    # The sweep asks "what is due?" per status; the problem page asks "what failed, newest first".
    return [
        models.Index(fields=["sync_status", "next_retry_at"], name=f"{prefix}_due_idx"),
        models.Index(
            fields=["problem_since"],
            name=f"{prefix}_problem_idx",
            condition=Q(sync_status=SyncStatus.PROBLEM),
        ),
        # The Problem Sync page's default order (newest first, per company): a page is an
        # index range instead of a sort of every problem row (100k rows: 40 → ms). No NULLS
        # LAST (SQLite refuses it in an index): a problem always has problem_since (the
        # constraint below), so NULL placement never matters for these rows.
        models.Index(
            F("company_id"),
            F("problem_since").desc(),
            F("id").desc(),
            name=f"{prefix}_problem_page_idx",
            condition=Q(sync_status=SyncStatus.PROBLEM),
        ),
    ]


def sync_constraints(prefix: str) -> list[models.BaseConstraint]:
    return [
        models.CheckConstraint(
            condition=~Q(sync_status=SyncStatus.PROBLEM) | Q(problem_since__isnull=False),
            name=f"{prefix}_problem_has_since",
        )
    ]


class Contact(models.Model):
    """How to reach a party of the name list (customers and vendors alike): QuickBooks'
    PrimaryPhone and BillAddr."""

    phone = models.CharField(max_length=30, blank=True, default="")
    address_line1 = models.CharField(max_length=200, blank=True, default="")
    city = models.CharField(max_length=100, blank=True, default="")
    state = models.CharField(max_length=40, blank=True, default="")
    postal_code = models.CharField(max_length=20, blank=True, default="")
    country = models.CharField(max_length=40, blank=True, default="USA")

    class Meta:
        abstract = True


class Customer(SyncedRecord, Contact):
    sync_type = "customer"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="customers")
    display_name = models.CharField(max_length=100)
    company_name = models.CharField(max_length=100, blank=True, default="")
    billing_email = models.EmailField(blank=True, default="")
    terms_days = models.PositiveSmallIntegerField(default=30)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["display_name", "id"]
        indexes = sync_indexes("customer")
        constraints = sync_constraints("customer")

    def __str__(self) -> str:
        return self.display_name


class ChargeCode(SyncedRecord):
    """A billable charge; syncs as a QBO Service Item (qb_id is the Item Id)."""

    sync_type = "item"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="charge_codes")
    code = models.CharField(max_length=20)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=400, blank=True, default="")
    default_rate = models.DecimalField(**MONEY, default=Decimal("0.00"))
    is_active = models.BooleanField(default=True)

    # Not a column: the mapped QuickBooks item's name, set by the item mapping card (sync).
    target_name: str

    class Meta:
        ordering = ["code"]
        indexes = sync_indexes("chargecode")
        constraints = sync_constraints("chargecode") + [
            models.UniqueConstraint(fields=["company", "code"], name="chargecode_unique_code")
        ]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"


class Load(CheckedFields):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="loads")
    load_number = models.CharField(max_length=30)
    container_number = models.CharField(
        max_length=11, blank=True, default="", validators=[validate_container_number]
    )
    po_number = models.CharField("PO #", max_length=40, blank=True, default="")
    bol_number = models.CharField("BOL / booking #", max_length=40, blank=True, default="")
    reference_number = models.CharField("reference #", max_length=40, blank=True, default="")
    pickup_location = models.CharField(max_length=200, blank=True, default="")
    delivery_location = models.CharField(max_length=200, blank=True, default="")
    pickup_date = models.DateField(null=True, blank=True)
    delivery_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "load_number"], name="load_unique_number")
        ]

    def __str__(self) -> str:
        return self.load_number


class Invoice(SyncedRecord):
    sync_type = "invoice"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        BILLED = "billed", "Billed"
        PARTIALLY_PAID = "partially_paid", "Partially paid"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="invoices")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    doc_number = models.CharField(max_length=21, validators=[validate_doc_number])
    invoice_date = models.DateField()
    due_date = models.DateField(null=True, blank=True)
    terms_days = models.PositiveSmallIntegerField(default=30)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    memo = models.CharField(max_length=1000, blank=True, default="")
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    # What QuickBooks says is still owed, learnt from pull; None until we know.
    qb_balance = models.DecimalField(**MONEY, null=True, blank=True)
    # The SyncToken of the QuickBooks answer qb_balance came from: answers arrive out of order
    # (a push's answer computed before a payment, settled after the payment's webhook).
    qb_balance_token = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-invoice_date", "-id"]
        indexes = sync_indexes("invoice") + [
            models.Index(fields=["company", "doc_number"], name="invoice_doc_idx")
        ]
        constraints = sync_constraints("invoice") + [
            models.UniqueConstraint(fields=["company", "doc_number"], name="invoice_unique_doc")
        ]

    def __str__(self) -> str:
        return f"Invoice {self.doc_number}"

    def clean(self) -> None:
        if self.due_date and self.invoice_date and self.due_date < self.invoice_date:
            raise ValidationError({"due_date": "The due date cannot be before the invoice date."})

    @property
    def is_combined(self) -> bool:
        return self.charge_sets.count() > 1


class ChargeSet(CheckedFields):
    """The charges of one load on an invoice; a combined invoice has several."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="charge_sets")
    load = models.ForeignKey(Load, on_delete=models.PROTECT, related_name="charge_sets")
    position = models.PositiveSmallIntegerField(default=1)
    label = models.CharField(max_length=60, blank=True, default="")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.invoice} · {self.load}"


class ChargeLine(CheckedFields):
    charge_set = models.ForeignKey(ChargeSet, on_delete=models.CASCADE, related_name="lines")
    charge_code = models.ForeignKey(ChargeCode, on_delete=models.PROTECT, related_name="lines")
    quantity = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("1"))
    rate = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)
    note = models.CharField(max_length=500, blank=True, default="")
    position = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.charge_code.code} {self.amount}"


class Payment(SyncedRecord):
    sync_type = "payment"

    class Method(models.TextChoices):
        CHECK = "check", "Check"
        ACH = "ach", "ACH"
        WIRE = "wire", "Wire"
        CARD = "card", "Card"

    class Origin(models.TextChoices):
        TMS = "tms", "Entered in the TMS"
        QUICKBOOKS = "quickbooks", "Applied in QuickBooks"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="payments")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    payment_date = models.DateField()
    reference_number = models.CharField(max_length=40, blank=True, default="")
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.CHECK)
    origin = models.CharField(max_length=12, choices=Origin.choices, default=Origin.TMS)

    class Meta:
        ordering = ["-payment_date", "-id"]
        indexes = sync_indexes("payment")
        constraints = sync_constraints("payment") + [
            # One TMS payment per QuickBooks payment: deliveries of one change repeat and race.
            models.UniqueConstraint(
                fields=["company", "qb_id"],
                condition=~Q(qb_id=""),
                name="payment_unique_qb_id",
            )
        ]

    def __str__(self) -> str:
        ref = self.reference_number or f"#{self.pk}"
        return f"Payment {ref} · {self.amount}"


class PaymentApplication(CheckedFields):
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="applications")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="applications")
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.01"))])

    def __str__(self) -> str:
        return f"{self.amount} → {self.invoice}"


class CreditMemo(SyncedRecord):
    sync_type = "creditmemo"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="credit_memos")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_memos")
    number = models.CharField(max_length=21, validators=[validate_doc_number])
    memo_date = models.DateField()
    invoice = models.ForeignKey(
        Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="credit_memos"
    )
    reason = models.CharField(max_length=1000, blank=True, default="")
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))

    class Meta:
        ordering = ["-memo_date", "-id"]
        indexes = sync_indexes("creditmemo")
        constraints = sync_constraints("creditmemo") + [
            models.UniqueConstraint(fields=["company", "number"], name="creditmemo_unique_number")
        ]

    def __str__(self) -> str:
        return f"Credit memo {self.number}"


class CreditMemoLine(CheckedFields):
    credit_memo = models.ForeignKey(CreditMemo, on_delete=models.CASCADE, related_name="lines")
    charge_code = models.ForeignKey(ChargeCode, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=500, blank=True, default="")
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.01"))])

    def __str__(self) -> str:
        return f"{self.charge_code.code} {self.amount}"


# --- payables: what the company pays (carriers, owner-operator drivers, other vendors) ---


class Vendor(SyncedRecord, Contact):
    """A carrier, an owner-operator driver or another vendor; syncs as a QuickBooks Vendor."""

    sync_type = "vendor"

    class Kind(models.TextChoices):
        CARRIER = "carrier", "Carrier"
        DRIVER = "driver", "Owner-operator driver"
        OTHER = "other", "Other vendor"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="vendors")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CARRIER)
    display_name = models.CharField(max_length=100)
    # The name QuickBooks knows it by when ours is taken there by a customer or employee
    # (names are one list in QuickBooks): display name + the configured suffix.
    qb_display_name = models.CharField("name in QuickBooks", max_length=100, blank=True, default="")
    company_name = models.CharField(max_length=100, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    terms_days = models.PositiveSmallIntegerField(default=15)
    is_1099 = models.BooleanField("1099 vendor", default=False)
    tax_id = models.CharField("tax id (EIN/SSN)", max_length=20, blank=True, default="")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["display_name", "id"]
        indexes = sync_indexes("vendor")
        constraints = sync_constraints("vendor") + [
            models.UniqueConstraint(fields=["company", "display_name"], name="vendor_unique_name")
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def name_in_quickbooks(self) -> str:
        return self.qb_display_name or self.display_name


class PayCode(SyncedRecord):
    """What a bill line pays for (line haul, fuel surcharge, detention…) or deducts (fuel
    advance, escrow); maps to a QuickBooks account (qb_id is the Account Id)."""

    sync_type = "account"

    class Kind(models.TextChoices):
        EARNING = "earning", "Pay"
        DEDUCTION = "deduction", "Deduction"

    class AccountType(models.TextChoices):
        COST_OF_GOODS_SOLD = "Cost of Goods Sold", "Cost of goods sold"
        EXPENSE = "Expense", "Expense"
        OTHER_CURRENT_LIABILITY = "Other Current Liability", "Other current liability (escrow)"
        OTHER_CURRENT_ASSET = "Other Current Asset", "Other current asset (advances)"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="pay_codes")
    code = models.CharField(max_length=20)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EARNING)
    # The type of the account "create the missing accounts" makes for it.
    account_type = models.CharField(
        max_length=30, choices=AccountType.choices, default=AccountType.COST_OF_GOODS_SOLD
    )
    is_active = models.BooleanField(default=True)

    # Not a column: the mapped QuickBooks account's name, set by the mapping card (sync).
    target_name: str

    class Meta:
        ordering = ["code"]
        indexes = sync_indexes("paycode")
        constraints = sync_constraints("paycode") + [
            models.UniqueConstraint(fields=["company", "code"], name="paycode_unique_code")
        ]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"


class Bill(SyncedRecord):
    """A carrier's bill or a driver's settlement (lines over many loads, maybe several trucks);
    syncs as a QuickBooks Bill."""

    sync_type = "bill"

    class Kind(models.TextChoices):
        CARRIER_BILL = "carrier_bill", "Carrier bill"
        SETTLEMENT = "settlement", "Driver settlement"
        OTHER = "other", "Vendor bill"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        PARTIALLY_PAID = "partially_paid", "Partially paid"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="bills")
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="bills")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CARRIER_BILL)
    doc_number = models.CharField(
        "bill / reference #", max_length=21, validators=[validate_doc_number]
    )
    bill_date = models.DateField()
    due_date = models.DateField(null=True, blank=True)
    terms_days = models.PositiveSmallIntegerField(default=15)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    memo = models.CharField(max_length=1000, blank=True, default="")
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    # What QuickBooks says is still owed and the SyncToken it came with (as on invoices).
    qb_balance = models.DecimalField(**MONEY, null=True, blank=True)
    qb_balance_token = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-bill_date", "-id"]
        indexes = sync_indexes("bill") + [
            models.Index(fields=["company", "doc_number"], name="bill_doc_idx")
        ]
        constraints = sync_constraints("bill") + [
            # QuickBooks warns on a vendor's repeated bill number, not across vendors.
            models.UniqueConstraint(
                fields=["company", "vendor", "doc_number"], name="bill_unique_doc"
            )
        ]

    def __str__(self) -> str:
        return f"Bill {self.doc_number}"

    def clean(self) -> None:
        if self.due_date and self.bill_date and self.due_date < self.bill_date:
            raise ValidationError({"due_date": "The due date cannot be before the bill date."})
        if self.period_start and self.period_end and self.period_end < self.period_start:
            raise ValidationError({"period_end": "The period cannot end before it starts."})


class BillLine(CheckedFields):
    """One pay line: a deduction's amount is negative (QuickBooks accepts negative bill lines
    while the bill's total is not negative)."""

    bill = models.ForeignKey(Bill, on_delete=models.CASCADE, related_name="lines")
    pay_code = models.ForeignKey(PayCode, on_delete=models.PROTECT, related_name="lines")
    load = models.ForeignKey(
        Load, on_delete=models.PROTECT, null=True, blank=True, related_name="bill_lines"
    )
    container_number = models.CharField(
        max_length=11, blank=True, default="", validators=[validate_container_number]
    )
    truck_number = models.CharField("truck #", max_length=20, blank=True, default="")
    quantity = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("1"))
    rate = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)
    note = models.CharField(max_length=500, blank=True, default="")
    position = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.pay_code.code} {self.amount}"


class BillPayment(CheckedFields):
    """A bill payment made in QuickBooks (check or card), pulled back: never pushed."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="bill_payments")
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="bill_payments")
    qb_id = models.CharField("QuickBooks ID", max_length=32)
    payment_date = models.DateField()
    amount = models.DecimalField(**MONEY)
    pay_type = models.CharField(max_length=12, blank=True, default="")
    reference_number = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-payment_date", "-id"]
        constraints = [
            # Deliveries of one change repeat and race: one row per QuickBooks bill payment.
            models.UniqueConstraint(fields=["company", "qb_id"], name="billpayment_unique_qb_id")
        ]

    def __str__(self) -> str:
        return f"Bill payment {self.qb_id} · {self.amount}"


class BillPaymentApplication(CheckedFields):
    bill_payment = models.ForeignKey(
        BillPayment, on_delete=models.CASCADE, related_name="applications"
    )
    bill = models.ForeignKey(Bill, on_delete=models.CASCADE, related_name="payments_applied")
    amount = models.DecimalField(**MONEY)

    def __str__(self) -> str:
        return f"{self.amount} → {self.bill}"


DESCRIPTION_FIELDS = {
    # key: (label, how to read it from a charge line's context)
    "container": "Container #",
    "load": "Load #",
    "po": "PO #",
    "reference": "Reference #",
    "bol": "BOL / booking #",
    "pickup": "Pickup",
    "delivery": "Delivery",
    "pickup_date": "Pickup date",
    "delivery_date": "Delivery date",
    "charge_name": "Charge name",
    "charge_note": "Charge note",
}


# What a bill line's Description may carry (Finance → QuickBooks, bills).
BILL_DESCRIPTION_FIELDS = {
    "load": "Load #",
    "container": "Container #",
    "truck": "Truck #",
    "po": "PO #",
    "reference": "Reference #",
    "pickup": "Pickup",
    "delivery": "Delivery",
    "pickup_date": "Pickup date",
    "delivery_date": "Delivery date",
    "charge_name": "Pay code name",
    "charge_note": "Line note",
}


def default_bill_description_fields() -> list[str]:
    return ["charge_name", "load", "container", "truck", "charge_note"]


def list_of_attach_kinds() -> list[str]:
    """POD and BOL (LoadDocument.Kind, defined below)."""
    return ["pod", "bol"]


class FinanceSettings(CheckedFields):
    """How one TMS company wants QuickBooks sync to behave (Finance → QuickBooks page)."""

    class Trigger(models.TextChoices):
        APPROVED = "approved", "When approved"
        BILLED = "billed", "When billed"

    class NameClash(models.TextChoices):
        PROBLEM = "problem", "Show it on Problem Sync"
        SUFFIX = "suffix", "Send it with the suffix"

    company = models.OneToOneField(
        Company, on_delete=models.CASCADE, related_name="finance_settings"
    )
    # High level: which record types sync, and when.
    sync_customers = models.BooleanField(default=True)
    sync_invoices = models.BooleanField(default=True)
    sync_payments = models.BooleanField(default=True)
    sync_credit_memos = models.BooleanField(default=True)
    sync_vendors = models.BooleanField(default=True)
    sync_bills = models.BooleanField(default=True)
    push_on_change = models.BooleanField(
        default=True, help_text="Push each change right away; off = only on the schedule."
    )
    pull_payments = models.BooleanField(
        default=True, help_text="Mark invoices paid when payments are applied in QuickBooks."
    )
    pull_bill_payments = models.BooleanField(
        default=True, help_text="Mark bills paid when bill payments are made in QuickBooks."
    )
    # Detailed behaviour.
    auto_create_customers = models.BooleanField(
        default=True, help_text="Create the customer in QuickBooks with its first invoice."
    )
    invoice_sync_trigger = models.CharField(
        max_length=12, choices=Trigger.choices, default=Trigger.APPROVED
    )
    schedule_minutes = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1)], help_text="Scheduled sync interval."
    )
    payment_pull_days = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="CDC look-back (≤ 30 days)."
    )
    income_account_ref = models.CharField(
        max_length=32, blank=True, default="", help_text="QBO income account for new items."
    )
    vendor_name_clash = models.CharField(
        max_length=8,
        choices=NameClash.choices,
        default=NameClash.PROBLEM,
        help_text="A vendor named like a QuickBooks customer or employee.",
    )
    vendor_name_suffix = models.CharField(
        max_length=20,
        default=" (Vendor)",
        help_text="Added to a vendor's name when QuickBooks has a customer of that name.",
    )
    # Custom description mapping.
    description_fields = models.JSONField(
        default=list, blank=True, help_text="Ordered keys from DESCRIPTION_FIELDS."
    )
    description_separator = models.CharField(max_length=10, default=" · ", blank=True)
    description_prefix = models.CharField(
        max_length=60,
        blank=True,
        default="",
        help_text="Per charge set, e.g. 'Load {n}: ' ({n} = charge set number).",
    )
    description_template = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Optional template, e.g. 'Container {container} · PO {po} · {charge_note}'.",
    )
    bill_description_fields = models.JSONField(
        default=default_bill_description_fields,
        blank=True,
        help_text="Ordered keys from BILL_DESCRIPTION_FIELDS, for bill lines.",
    )
    # Load documents attached to the QuickBooks invoice (LoadDocument.Kind values); a change
    # applies to attachments made from then on.
    attach_document_kinds = models.JSONField(
        default=list_of_attach_kinds, blank=True, help_text="Document kinds sent with invoices."
    )
    attachments_on_send = models.BooleanField(
        default=False,
        help_text="Include the attached documents when QuickBooks emails the invoice.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name_plural = "finance settings"

    def __str__(self) -> str:
        return f"Finance settings · {self.company}"


class ManualAction(models.Model):
    """Audit row for every human action on sync state or QuickBooks IDs."""

    class Kind(models.TextChoices):
        QB_ID_REMOVE = "qb_id_remove", "QuickBooks ID removed"
        QB_ID_OVERRIDE = "qb_id_override", "QuickBooks ID overridden"
        RESYNC = "resync", "Re-sync"
        CLEAR = "clear", "Cleared without sync"
        UNDO_CLEAR = "undo_clear", "Clear undone"
        MARK_PAID = "mark_paid", "Marked paid without sync"
        LINK = "link", "Linked to existing QuickBooks object"
        SETTINGS = "settings", "Finance settings changed"
        CONNECTION = "connection", "QuickBooks connection changed"
        CONFIRM_CONFLICT = "confirm_conflict", "Confirmed change despite QuickBooks payments"
        DELETE = "delete", "Deleted in the TMS"
        OVERWRITE = "overwrite", "QuickBooks' changes overwritten with the TMS version"
        ACCEPT_QUICKBOOKS = "accept_quickbooks", "QuickBooks' change accepted in the TMS"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    record_type = models.CharField(max_length=16, blank=True, default="")
    record_id = models.PositiveBigIntegerField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["record_type", "record_id"], name="manualaction_rec_idx")]
        permissions = [
            ("override_qb_id", "Can remove or override QuickBooks IDs"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.record_type} {self.record_id}"


def load_document_path(instance: "LoadDocument", filename: str) -> str:
    # Under the company and load, with a random part: two PODs named scan.pdf never collide,
    # and a path says nothing guessable about another tenant's files.
    import secrets

    return f"load-documents/{instance.company_id}/{instance.load_id}/{secrets.token_hex(8)}.bin"


class LoadDocument(CheckedFields):
    """A file stored with a load (POD, BOL…) through Django's storage API (STORAGES["default"])."""

    class Kind(models.TextChoices):
        POD = "pod", "Proof of delivery (POD)"
        BOL = "bol", "Bill of lading (BOL)"
        RATE_CONFIRMATION = "rate_confirmation", "Rate confirmation"
        LUMPER_RECEIPT = "lumper_receipt", "Lumper receipt"
        SCALE_TICKET = "scale_ticket", "Scale ticket"
        OTHER = "other", "Other"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="load_documents")
    load = models.ForeignKey(Load, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.POD)
    file = models.FileField(upload_to=load_document_path, max_length=300)
    original_filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField(default=0)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["load", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.original_filename}"


class InvoiceAttachment(SyncedRecord):
    """One load document attached to one invoice in QuickBooks (an Attachable): a combined
    invoice has one per document of each of its loads."""

    sync_type = "attachment"

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="invoice_attachments"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="attachments")
    document = models.ForeignKey(LoadDocument, on_delete=models.CASCADE, related_name="attachments")

    class Meta:
        ordering = ["invoice", "document"]
        indexes = sync_indexes("attachment")
        constraints = sync_constraints("attachment") + [
            models.UniqueConstraint(
                fields=["invoice", "document"], name="attachment_unique_invoice_document"
            )
        ]

    def __str__(self) -> str:
        return f"{self.invoice} · {self.document.original_filename}"

    @property
    def doc_number(self) -> str:
        return self.invoice.doc_number

    @property
    def file_name(self) -> str:
        return self.document.original_filename
