"""Per-entity QBO rules layered on the generic store: names, references, totals, balances.

A rule lists its `checks`: small functions, each one Intuit behaviour, that `Rule.prepare` runs
in order on the document about to be stored. A check either raises the fault Intuit answers with
or fills in what QBO computes itself; the first fault stops the write, since we report one error
per request (README, "Known differences"). The order is part of the behaviour: when a request is
wrong in two ways, the earlier check decides the fault. Adding an entity means listing its checks.

Every check takes what `prepare` takes: (ctx, entity_type, data, existing), `data` being the
document to store (changed in place) and `existing` the stored Entity on an update, None on a
create. Lines get the same treatment one level down: `SALES_LINE_CHECKS` run over each line of a
sales document, `EXPENSE_LINE_CHECKS` over each line of a bill, vendor credit or purchase.

Both sides of the books settle the same way (`Settlement`): a payment (Payment, BillPayment)
applies to documents of one party (Invoice/CreditMemo of a customer, Bill/VendorCredit of a
vendor), which then show what is left (Balance) and which payments they are linked to, and the
party's Balance follows its open documents.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from . import faults, store
from .models import Entity
from .timefmt import local_today

NAME_NAMESPACE = ("Customer", "Vendor", "Employee")  # one DisplayName namespace, case-insensitive
FQN_TYPES = {"Customer", "Account", "Item", "Class", "Department"}  # have FullyQualifiedName
SALES_ITEM = "SalesItemLineDetail"
SALES_AMOUNT_TYPES = (SALES_ITEM, "GroupLineDetail")  # lines that add to a document's total
ACCOUNT_EXPENSE = "AccountBasedExpenseLineDetail"
ITEM_EXPENSE = "ItemBasedExpenseLineDetail"
EXPENSE_DETAILS = (ACCOUNT_EXPENSE, ITEM_EXPENSE)  # the lines of Bill, VendorCredit, Purchase
PRICED_DETAILS = (SALES_ITEM, ITEM_EXPENSE)  # lines whose Amount may come from Qty × UnitPrice
# The fields in which QBO keeps a party's open balance.
PARTY_BALANCE_FIELDS = {"Customer": ("Balance", "BalanceWithJobs"), "Vendor": ("Balance",)}


@dataclass(frozen=True)
class Settlement:
    """One side of the books: which transaction pays which documents of which party."""

    payment: str  # the paying transaction: Payment, BillPayment
    party: str  # whose documents it pays: Customer, Vendor
    party_ref: str  # the field naming the party on the documents and the payment
    # What a payment line linked to each document type does to the money the payment applies:
    # it pays a bill or an invoice, and it uses a credit up (that money comes back to the payment).
    applied_sign: dict
    # How each document's Balance counts in the party's Balance.
    balance_sign: dict
    # Where a payment keeps the money a deleted document frees (None: it simply stays in TotalAmt).
    unapplied_field: str | None
    default_link_type: str  # LinkedTxn.TxnType when a payment line leaves it out
    # Whether a payment may only apply to its own party's documents.
    same_party_only: bool

    @property
    def doc_types(self):
        # Membership is tested on a tuple, not a dict: TxnType is client data, maybe unhashable.
        return tuple(self.applied_sign)


SALES = Settlement(
    payment="Payment",
    party="Customer",
    party_ref="CustomerRef",
    applied_sign={"Invoice": 1, "CreditMemo": -1},
    balance_sign={"Invoice": 1},
    unapplied_field="UnappliedAmt",
    default_link_type="Invoice",
    same_party_only=False,
)
PAYABLES = Settlement(
    payment="BillPayment",
    party="Vendor",
    party_ref="VendorRef",
    applied_sign={"Bill": 1, "VendorCredit": -1},
    balance_sign={"Bill": 1, "VendorCredit": -1},
    unapplied_field=None,
    default_link_type="Bill",
    same_party_only=True,
)
# The settlement each payment and each document it applies to belongs to.
SETTLEMENTS = {
    name: settlement
    for settlement in (SALES, PAYABLES)
    for name in (settlement.payment, *settlement.applied_sign)
}


def num(value, element="Amount"):
    """QBO amounts: numbers or numeric strings, 2 decimals; returned as JSON numbers."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise faults.QboFault(
            6000,
            "A business validation error has occurred while processing your request",
            f"Business Validation Error: {element} is not a valid number: {value}",
            element,
        )
    return float(amount)


def money(value):
    return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _ref_value(data, key):
    ref = data.get(key)
    if isinstance(ref, dict):
        return str(ref.get("value") or "").strip()
    if ref not in (None, ""):
        return str(ref).strip()
    return ""


def check_ref(ctx, entity_type, value):
    """A reference must name an existing, active object: 2500 when missing, 610 when inactive."""
    if not value.isdigit():
        raise faults.invalid_reference(entity_type, value)
    key = (entity_type, int(value))
    if key in ctx.live_refs:
        return
    target = Entity.objects.filter(
        company=ctx.company, entity_type=entity_type, qbo_id=int(value), deleted=False
    ).first()
    if target is None:
        raise faults.invalid_reference(entity_type, value)
    if not target.active:
        raise faults.object_not_found()
    ctx.live_refs.add(key)


def _first_clash(queryset, existing):
    """The Id of the first row of `queryset` other than the object being updated, or None."""
    if existing is not None:
        queryset = queryset.exclude(pk=existing.pk)
    return queryset.values_list("qbo_id", flat=True).first()


class Rule:
    """Default: no rule beyond the generic store."""

    extra_fields = frozenset()
    # Fields kept on a full update although the client omitted them (server-maintained).
    server_fields = frozenset()
    voidable = False
    checks = ()  # run in this order by prepare; see the module docstring

    def prepare(self, ctx, entity_type, data, existing):
        for check in self.checks:
            check(ctx, entity_type, data, existing)

    def after_write(self, ctx, entity, previous):
        pass

    def void(self, ctx, data):
        pass


# --- Names ----------------------------------------------------------------------------------


def _require_unique_name(ctx, entity_type, data, existing, field, namespace):
    """`field` is required (2020), at most 100 characters (6000), trimmed, and unique ignoring
    case among the live objects of `namespace`, inactive ones included (6240)."""
    name = str(data.get(field) or "").strip()
    if not name:
        raise faults.required_missing(field)
    if len(name) > 100:
        raise faults.too_long(field, 100)
    data[field] = name
    same_name = Entity.objects.filter(
        company=ctx.company, entity_type__in=namespace, name_key=name.casefold(), deleted=False
    )
    clash = _first_clash(same_name, existing)
    if clash is not None:
        raise faults.duplicate_name(clash)
    if entity_type in FQN_TYPES:
        data["FullyQualifiedName"] = name


def unique_display_name(ctx, entity_type, data, existing):
    """Customer, Vendor and Employee share one DisplayName namespace."""
    _require_unique_name(ctx, entity_type, data, existing, "DisplayName", NAME_NAMESPACE)


def unique_list_name(ctx, entity_type, data, existing):
    """Item, Account, Term, TaxCode, Class, ... names are unique per entity type."""
    _require_unique_name(ctx, entity_type, data, existing, "Name", (entity_type,))


# --- Customer, Vendor, Employee ---------------------------------------------------------------


def default_display_name(ctx, entity_type, data, existing):
    """Without a DisplayName QBO builds one from Title Given Middle Family Suffix, else from
    CompanyName."""
    if str(data.get("DisplayName") or "").strip():
        return
    parts = [data.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
    built = " ".join(str(p).strip() for p in parts if p and str(p).strip())
    data["DisplayName"] = built or str(data.get("CompanyName") or "").strip()


def keep_open_balance(ctx, entity_type, data, existing):
    """Balance is read-only: QBO keeps the open balance, whatever the client sends back."""
    balance = existing.data.get("Balance", 0) if existing is not None else 0
    for field in PARTY_BALANCE_FIELDS[entity_type]:
        data[field] = balance


def default_customer_flags(ctx, entity_type, data, existing):
    data.setdefault("Taxable", False)
    data.setdefault("Job", False)
    data.setdefault("BillWithParent", False)


def require_employee_name(ctx, entity_type, data, existing):
    """An employee needs a GivenName or FamilyName, unless a DisplayName came from elsewhere."""
    if not (data.get("GivenName") or data.get("FamilyName") or data.get("DisplayName")):
        raise faults.required_missing("GivenName")


def default_print_on_check_name(ctx, entity_type, data, existing):
    data.setdefault("PrintOnCheckName", str(data.get("DisplayName") or "").strip())


class PartyRule(Rule):
    """Customer, Vendor, Employee: DisplayName built like QBO, unique across the three; each
    adds its own checks."""

    server_fields = frozenset({"Balance", "BalanceWithJobs"})
    checks = (default_display_name, default_print_on_check_name, unique_display_name)


class VendorRule(PartyRule):
    """A vendor's Balance is what its open bills still owe less its unused credits."""

    checks = (
        default_display_name,
        keep_open_balance,
        default_print_on_check_name,
        unique_display_name,
    )


class CustomerRule(PartyRule):
    checks = (
        default_display_name,
        keep_open_balance,
        default_customer_flags,
        default_print_on_check_name,
        unique_display_name,
    )


class EmployeeRule(PartyRule):
    checks = (
        default_display_name,
        require_employee_name,
        default_print_on_check_name,
        unique_display_name,
    )


# --- Named lists: Account, Item, Term, ... ----------------------------------------------------


class NamedRule(Rule):
    checks = (unique_list_name,)


def require_account_type(ctx, entity_type, data, existing):
    if not data.get("AccountType") and not data.get("AccountSubType"):
        raise faults.required_missing("AccountType")


def default_current_balance(ctx, entity_type, data, existing):
    data.setdefault("CurrentBalance", 0)


def default_classification(ctx, entity_type, data, existing):
    """QBO derives Classification (Asset, Liability, ...) from AccountType."""
    data.setdefault("Classification", _classify(data.get("AccountType", "")))


def _classify(account_type):
    if account_type in {"Income", "Other Income"}:
        return "Revenue"
    if account_type in {"Expense", "Other Expense", "Cost of Goods Sold"}:
        return "Expense"
    if "Liability" in account_type or account_type in {"Accounts Payable", "Credit Card"}:
        return "Liability"
    if account_type == "Equity":
        return "Equity"
    return "Asset"


class AccountRule(NamedRule):
    checks = (
        require_account_type,
        default_current_balance,
        default_classification,
        unique_list_name,
    )


def default_item_type(ctx, entity_type, data, existing):
    data.setdefault("Type", "Service")


def require_income_account(ctx, entity_type, data, existing):
    """Service and Inventory items must say which income account their sales go to."""
    if data["Type"] in ("Service", "Inventory") and not _ref_value(data, "IncomeAccountRef"):
        raise faults.required_missing("IncomeAccountRef")


def check_account_refs(ctx, entity_type, data, existing):
    """Every account an item names must exist (2500) and be active (610)."""
    for key in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef"):
        value = _ref_value(data, key)
        if value:
            check_ref(ctx, "Account", value)


class ItemRule(NamedRule):
    checks = (default_item_type, require_income_account, check_account_refs, unique_list_name)


# --- Documents: Invoice, CreditMemo, Bill, VendorCredit, Purchase ---------------------------


def require_party(ctx, entity_type, data, existing):
    """The document's or payment's party (CustomerRef, VendorRef) is required (2020) and names
    an existing (2500), active (610) customer or vendor."""
    settlement = SETTLEMENTS[entity_type]
    party_id = _ref_value(data, settlement.party_ref)
    if not party_id:
        raise faults.required_missing(settlement.party_ref)
    check_ref(ctx, settlement.party, party_id)


def _is_real_line(line):
    """Lines the client means: QBO adds the SubTotalLineDetail itself, one sent back is dropped."""
    return isinstance(line, dict) and line.get("DetailType") != "SubTotalLineDetail"


def require_lines(ctx, entity_type, data, existing):
    lines = data.get("Line")
    if not isinstance(lines, list) or not any(_is_real_line(line) for line in lines):
        raise faults.required_missing("Line")


def limit_doc_number(ctx, entity_type, data, existing):
    if len(str(data.get("DocNumber") or "")) > 21:
        raise faults.too_long("DocNumber", 21)


def _refuse_duplicate_number(ctx, entity_type, data, existing, **scope):
    """A DocNumber another live document of the same type (within `scope`) has → 6140, but only
    when the company warns on duplicate numbers (Preferences, WarnDuplicateDocNum) and the
    request did not say `include=allowduplicatedocnum`."""
    doc_number = str(data.get("DocNumber") or "")
    if not doc_number or not ctx.company.warn_duplicate_doc_number:
        return
    if ctx.allow_duplicate_doc_number:
        return
    same_number = Entity.objects.filter(
        company=ctx.company, entity_type=entity_type, doc_number=doc_number, deleted=False, **scope
    )
    clash = _first_clash(same_number, existing)
    if clash is not None:
        raise faults.duplicate_doc_number(doc_number, entity_type, clash)


def refuse_duplicate_doc_number(ctx, entity_type, data, existing):
    """Invoice numbers are unique per document type, whoever the customer."""
    _refuse_duplicate_number(ctx, entity_type, data, existing)


def refuse_duplicate_bill_number(ctx, entity_type, data, existing):
    """Bill numbers are the vendors' own: two vendors may send the same one, one vendor not
    twice (QBO's "warn if duplicate bill number is used")."""
    vendor = _ref_value(data, "VendorRef")
    _refuse_duplicate_number(ctx, entity_type, data, existing, customer_ref=vendor)


@dataclass
class DocLine:
    """One line of a document while its line checks run over it."""

    fields: dict  # a copy of the line as sent, becoming the stored line
    detail_type: str
    detail: dict  # its <DetailType> object; {} when it has none

    @classmethod
    def of(cls, raw, default_type):
        fields = dict(raw)
        detail_type = fields.get("DetailType") or default_type
        fields["DetailType"] = detail_type
        detail = fields.get(detail_type)
        return cls(fields, detail_type, detail if isinstance(detail, dict) else {})


def limit_description(ctx, line):
    if len(str(line.fields.get("Description") or "")) > 4000:
        raise faults.too_long("Description", 4000)


def check_item_ref(ctx, line):
    """A sales item line's ItemRef, when given, names an existing (2500), active (610) item."""
    if line.detail_type != SALES_ITEM:
        return
    item_id = _ref_value(line.detail, "ItemRef")
    if item_id:
        check_ref(ctx, "Item", item_id)


def normalise_quantity(ctx, line):
    """Qty and UnitPrice become numbers (6000 when they are not). Qty 0 at UnitPrice 0 is the
    placeholder pair python-quickbooks sends, which QBO ignores: both are dropped."""
    if line.detail_type not in PRICED_DETAILS:
        return
    detail = line.detail
    qty = num(detail.get("Qty"), "Qty")
    price = num(detail.get("UnitPrice"), "UnitPrice")
    if qty == 0 and price == 0:  # num() gives None for an absent value, never 0
        detail.pop("Qty", None)
        detail.pop("UnitPrice", None)
    elif qty is not None:
        detail["Qty"] = qty
        if price is not None:
            detail["UnitPrice"] = price


def resolve_amount(ctx, line):
    """Amount is a number; an item line without one costs Qty × UnitPrice (2020 on Amount
    when either is missing). Only a DescriptionOnly line may go without an Amount."""
    amount = num(line.fields.get("Amount"), "Amount")
    if amount is None and line.detail_type in PRICED_DETAILS:
        amount = _extended_amount(line.detail)
    if line.detail_type != "DescriptionOnly" or amount is not None:
        line.fields["Amount"] = amount or 0.0


def _extended_amount(detail):
    qty, price = detail.get("Qty"), detail.get("UnitPrice")
    if qty is None or price is None:
        raise faults.required_missing("Amount")
    return money(Decimal(str(qty)) * Decimal(str(price)))


SALES_LINE_CHECKS = (limit_description, check_item_ref, normalise_quantity, resolve_amount)


def require_expense_detail(ctx, line):
    """A bill, vendor credit or purchase line is an account line or an item line: without a
    DetailType → 2020; another kind (a sales line, say) → 6000."""
    if not line.detail_type:
        raise faults.required_missing("DetailType")
    if line.detail_type not in EXPENSE_DETAILS:
        raise faults.business_validation(
            f"Line DetailType {line.detail_type} is not supported on this transaction type."
        )


def check_expense_ref(ctx, line):
    """An account line names its expense account (AccountRef), an item line its item (ItemRef):
    required (2020), existing (2500) and active (610)."""
    entity_type, key = ("Account", "AccountRef")
    if line.detail_type == ITEM_EXPENSE:
        entity_type, key = ("Item", "ItemRef")
    ref = _ref_value(line.detail, key)
    if not ref:
        raise faults.required_missing(key)
    check_ref(ctx, entity_type, ref)


def require_account_line_amount(ctx, line):
    """An account line has no quantity to cost: its Amount is required (2020)."""
    if line.detail_type == ACCOUNT_EXPENSE and num(line.fields.get("Amount")) is None:
        raise faults.required_missing("Amount")


EXPENSE_LINE_CHECKS = (
    limit_description,
    require_expense_detail,
    check_expense_ref,
    require_account_line_amount,
    normalise_quantity,
    resolve_amount,
)


def _expense_detail_type(raw):
    """An expense line's kind: its DetailType, else the one detail object it carries."""
    present = [key for key in EXPENSE_DETAILS if isinstance(raw.get(key), dict)]
    return present[0] if len(present) == 1 else ""


def _checked_line(ctx, raw, default_type, checks):
    line = DocLine.of(raw, default_type)
    for check in checks:
        check(ctx, line)
    if line.detail:
        line.fields[line.detail_type] = line.detail
    return line.fields


def _numbered_lines(ctx, data, line_default, checks):
    """Each line checked in turn (the first bad line decides the fault) and numbered 1..n (Id,
    LineNum); `line_default(raw)` is a line's DetailType when it sends none."""
    real = [line for line in data["Line"] if _is_real_line(line)]
    lines = [_checked_line(ctx, line, line_default(line), checks) for line in real]
    for number, line in enumerate(lines, start=1):
        line["Id"] = str(number)
        line["LineNum"] = number
    return lines


def _sum_amounts(lines, detail_types):
    return sum(
        (Decimal(str(line["Amount"])) for line in lines if line["DetailType"] in detail_types),
        Decimal("0"),
    )


def build_sales_lines(ctx, entity_type, data, existing):
    """Sales lines checked and numbered, then QBO's own SubTotalLineDetail line appended."""
    lines = _numbered_lines(ctx, data, lambda raw: SALES_ITEM, SALES_LINE_CHECKS)
    subtotal = money(_sum_amounts(lines, SALES_AMOUNT_TYPES))
    lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    data["Line"] = lines


def total_sales_lines(ctx, entity_type, data, existing):
    """TotalAmt is QBO's: item and group lines less discount lines, whatever the client sent.
    Reads the lines build_sales_lines left."""
    sales = _sum_amounts(data["Line"], SALES_AMOUNT_TYPES)
    data["TotalAmt"] = money(sales - _sum_amounts(data["Line"], ("DiscountLineDetail",)))


def build_expense_lines(ctx, entity_type, data, existing):
    """Expense lines checked and numbered; a bill has no subtotal line. A line may be negative
    (a credit within the bill): only the total may not (refuse_negative_total)."""
    data["Line"] = _numbered_lines(ctx, data, _expense_detail_type, EXPENSE_LINE_CHECKS)


def total_expense_lines(ctx, entity_type, data, existing):
    """TotalAmt is the sum of the lines, whatever the client sent."""
    data["TotalAmt"] = money(_sum_amounts(data["Line"], EXPENSE_DETAILS))


def refuse_negative_total(ctx, entity_type, data, existing):
    """A bill, vendor credit or bill payment cannot come to less than zero (6000): money the
    vendor owes back is a VendorCredit. Zero is allowed."""
    if Decimal(str(data["TotalAmt"])) < 0:
        raise faults.business_validation(
            f"Transaction amount must be positive. {entity_type} TotalAmt={data['TotalAmt']}"
        )


def default_txn_date(ctx, entity_type, data, existing):
    """TxnDate defaults to today in the company's (Pacific) time."""
    data.setdefault("TxnDate", local_today().isoformat())


def default_due_date(ctx, entity_type, data, existing):
    data.setdefault("DueDate", data["TxnDate"])


def _live(ctx, entity_type, ref):
    """The data of a live object named by a reference check_ref has accepted, or {}."""
    found = Entity.objects.filter(
        company=ctx.company, entity_type=entity_type, qbo_id=int(ref), deleted=False
    ).values_list("data", flat=True)
    return found.first() or {}


def default_bill_due_date(ctx, entity_type, data, existing):
    """Without a DueDate a bill is due by its terms: SalesTermRef (must exist), else the
    vendor's TermRef (which then becomes the bill's SalesTermRef), else on its TxnDate."""
    term_id = _ref_value(data, "SalesTermRef")
    if term_id:
        check_ref(ctx, "Term", term_id)
    elif not data.get("DueDate"):
        vendor_terms = _live(ctx, "Vendor", _ref_value(data, "VendorRef")).get("TermRef")
        term_id = _ref_value({"TermRef": vendor_terms}, "TermRef")
        if term_id.isdigit():
            data["SalesTermRef"] = vendor_terms
    if data.get("DueDate"):
        return
    due_days = _live(ctx, "Term", term_id).get("DueDays") if term_id.isdigit() else 0
    data["DueDate"] = (_txn_date(data) + timedelta(days=_whole(due_days))).isoformat()


def _txn_date(data):
    try:
        return date.fromisoformat(str(data["TxnDate"])[:10])
    except ValueError:
        raise faults.business_validation(f"TxnDate is not a valid date: {data['TxnDate']}")


def _whole(value):
    """A term's DueDays as a number of days (0 when it has none or it is not a number)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def default_ap_account(ctx, entity_type, data, existing):
    """APAccountRef, when given, names an existing account (2500); without one QBO posts to the
    company's Accounts Payable account."""
    account_id = _ref_value(data, "APAccountRef")
    if account_id:
        check_ref(ctx, "Account", account_id)
        return
    payable = (
        Entity.objects.filter(
            company=ctx.company,
            entity_type="Account",
            deleted=False,
            active=True,
            data__AccountType="Accounts Payable",
        )
        .order_by("qbo_id")
        .first()
    )
    if payable is not None:
        data["APAccountRef"] = {"value": str(payable.qbo_id), "name": payable.data.get("Name")}


def compute_balance(ctx, entity_type, data, existing):
    """Balance = TotalAmt less what payments already apply to this document (none on create)."""
    applied = applied_amount(ctx, entity_type, existing) if existing is not None else 0
    data["Balance"] = money(Decimal(str(data["TotalAmt"])) - Decimal(str(applied)))


def default_linked_txn(ctx, entity_type, data, existing):
    data.setdefault("LinkedTxn", [])


def default_send_statuses(ctx, entity_type, data, existing):
    data.setdefault("EmailStatus", "NotSet")
    data.setdefault("PrintStatus", "NotSet")


def remaining_credit_is_balance(ctx, entity_type, data, existing):
    data["RemainingCredit"] = data["Balance"]


def _became_dead(entity, previous):
    voided_now = (
        entity.data.get("PrivateNote") == "Voided"
        and (previous or {}).get("PrivateNote") != "Voided"
    )
    return entity.deleted or (voided_now and not entity.data.get("TotalAmt"))


class SettledDocRule(Rule):
    """A document payments apply to (Invoice, CreditMemo, Bill, VendorCredit). Deleting or
    voiding it frees what was applied to it; its party's Balance follows it."""

    extra_fields = frozenset({"RemainingCredit", "InvoiceLink", "Balance", "TotalAmt", "LinkedTxn"})

    def after_write(self, ctx, entity, previous):
        settlement = SETTLEMENTS[entity.entity_type]
        if _became_dead(entity, previous):
            unlink_payments(ctx, entity.entity_type, entity)
            if not entity.deleted and entity.data.get("LinkedTxn"):
                # Part of this same write (no second SyncToken bump).
                entity.data = dict(entity.data, LinkedTxn=[], Balance=0.0)
                Entity.objects.filter(pk=entity.pk).update(data=entity.data)
        if entity.entity_type not in settlement.balance_sign:
            return
        recompute_party_balance(ctx, settlement, entity.customer_ref)
        old_ref = _ref_value(previous or {}, settlement.party_ref)
        if old_ref and old_ref != entity.customer_ref:
            recompute_party_balance(ctx, settlement, old_ref)


# What every sales document checks first, in this order; each rule then adds its own.
SALES_CHECKS = (
    require_party,
    require_lines,
    limit_doc_number,
    refuse_duplicate_doc_number,
    build_sales_lines,
    total_sales_lines,
    default_txn_date,
)


class SalesTxnRule(SettledDocRule):
    """Invoice and CreditMemo: customer, lines, DocNumber, computed totals."""

    checks = (*SALES_CHECKS, compute_balance, default_linked_txn)


class InvoiceRule(SalesTxnRule):
    voidable = True
    checks = (
        *SALES_CHECKS,
        default_due_date,
        compute_balance,
        default_linked_txn,
        default_send_statuses,
    )

    def void(self, ctx, data):
        for line in data.get("Line", []):
            if "Amount" in line:
                line["Amount"] = 0.0
        data["TotalAmt"] = 0.0
        data["Balance"] = 0.0
        data["PrivateNote"] = "Voided"


class CreditMemoRule(SalesTxnRule):
    checks = (*SalesTxnRule.checks, remaining_credit_is_balance)


# What a bill and a vendor credit check first: vendor, lines, the total of the lines.
PAYABLE_CHECKS = (
    require_party,
    require_lines,
    limit_doc_number,
)
EXPENSE_TOTAL_CHECKS = (build_expense_lines, total_expense_lines, refuse_negative_total)


class BillRule(SettledDocRule):
    """Bill: what a vendor (a carrier, a driver) asks to be paid. Not voidable through the API
    (QBO voids bills only in its own UI); deletable, which unlinks its bill payments."""

    checks = (
        *PAYABLE_CHECKS,
        refuse_duplicate_bill_number,
        *EXPENSE_TOTAL_CHECKS,
        default_txn_date,
        default_ap_account,
        default_bill_due_date,
        compute_balance,
        default_linked_txn,
    )


class VendorCreditRule(SettledDocRule):
    """VendorCredit: what a vendor owes back; its Balance is the credit bill payments have not
    used yet."""

    checks = (
        *PAYABLE_CHECKS,
        *EXPENSE_TOTAL_CHECKS,
        default_txn_date,
        default_ap_account,
        compute_balance,
        default_linked_txn,
    )


# --- Balances and links between payments and documents ---------------------------------------


def recompute_party_balance(ctx, settlement, party_ref):
    """Customer/Vendor Balance = its open documents' balances, each counted with its sign
    (QBO keeps it; the party's SyncToken is not bumped)."""
    if not party_ref or not party_ref.isdigit():
        return
    total = Decimal("0")
    documents = Entity.objects.filter(
        company=ctx.company,
        entity_type__in=tuple(settlement.balance_sign),
        customer_ref=party_ref,
        deleted=False,
    ).values_list("entity_type", "data")
    for entity_type, data in documents.iterator(chunk_size=500):
        total += settlement.balance_sign[entity_type] * Decimal(str(data.get("Balance") or 0))
    party = Entity.objects.filter(
        company=ctx.company, entity_type=settlement.party, qbo_id=int(party_ref)
    ).first()
    if party is None:
        return
    balance = money(total)
    if party.data.get("Balance") != balance:
        fields = dict.fromkeys(PARTY_BALANCE_FIELDS[settlement.party], balance)
        Entity.objects.filter(pk=party.pk).update(data=dict(party.data, **fields))


def _line_applies_to(line, txn_type, doc_id):
    """Whether a payment line is linked to this document."""
    return any(
        str(link.get("TxnId")) == doc_id and link.get("TxnType") == txn_type
        for link in line.get("LinkedTxn", []) or []
    )


def unlink_payments(ctx, entity_type, doc):
    """A deleted or voided document frees what was applied to it: the payments keep their
    money (as unapplied credit, UnappliedAmt, on a Payment), like QBO."""
    from .store import touch

    settlement = SETTLEMENTS[entity_type]
    doc_id = str(doc.qbo_id)
    for payment in _payments_for(ctx, settlement, doc.customer_ref).order_by("qbo_id"):
        data = _unlinked(payment.data, settlement, entity_type, doc_id)
        if data is not None:
            touch(ctx, payment, data)
            ctx.announce(payment, "updated")


def _unlinked(payment_data, settlement, entity_type, doc_id):
    """The payment without its lines applied to this document, their money moved to the
    settlement's unapplied field; None when no line applies to it."""
    kept, freed = [], []
    for line in payment_data.get("Line", []) or []:
        (freed if _line_applies_to(line, entity_type, doc_id) else kept).append(line)
    if not freed:
        return None
    data = dict(payment_data, Line=kept)
    field = settlement.unapplied_field
    if field is not None:
        released = (
            sum(
                (Decimal(str(line.get("Amount") or 0)) for line in freed),
                Decimal("0"),
            )
            * settlement.applied_sign[entity_type]
        )
        data[field] = money(Decimal(str(data.get(field) or 0)) + released)
    return data


def _payments_for(ctx, settlement, party_ref):
    return Entity.objects.filter(
        company=ctx.company, entity_type=settlement.payment, customer_ref=party_ref, deleted=False
    )


def applied_amount(ctx, entity_type, doc):
    """Sum of the payment line amounts linked to this document."""
    total = Decimal("0")
    doc_id = str(doc.qbo_id)
    for payment in _payments_for(ctx, SETTLEMENTS[entity_type], doc.customer_ref):
        for line in payment.data.get("Line", []):
            if _line_applies_to(line, entity_type, doc_id):
                total += Decimal(str(line.get("Amount") or 0))
    return total


def linked_payment_ids(ctx, entity_type, doc):
    doc_id = str(doc.qbo_id)
    payments = _payments_for(ctx, SETTLEMENTS[entity_type], doc.customer_ref)
    return [
        str(payment.qbo_id)
        for payment in payments.order_by("qbo_id")
        if any(_line_applies_to(line, entity_type, doc_id) for line in payment.data.get("Line", []))
    ]


def recompute_balance(ctx, entity_type, doc_id):
    """A document's Balance and LinkedTxn again, after a payment applied to it changed."""
    from .store import touch

    doc = Entity.objects.filter(
        company=ctx.company, entity_type=entity_type, qbo_id=int(doc_id), deleted=False
    ).first()
    if doc is None:
        return
    settlement = SETTLEMENTS[entity_type]
    data = dict(doc.data)
    applied = applied_amount(ctx, entity_type, doc)
    if data.get("PrivateNote") == "Voided" and not data.get("TotalAmt"):
        balance = 0.0
    else:
        balance = money(Decimal(str(data.get("TotalAmt") or 0)) - applied)
    links = [
        {"TxnId": pid, "TxnType": settlement.payment}
        for pid in linked_payment_ids(ctx, entity_type, doc)
    ]
    changed = data.get("Balance") != balance or data.get("LinkedTxn", []) != links
    data["Balance"] = balance
    data["LinkedTxn"] = links
    if entity_type == "CreditMemo":
        data["RemainingCredit"] = balance
    if changed:
        touch(ctx, doc, data)
        if entity_type in settlement.balance_sign:
            recompute_party_balance(ctx, settlement, doc.customer_ref)


def _linked_docs(settlement, data):
    docs = set()
    for line in (data or {}).get("Line", []) or []:
        for link in line.get("LinkedTxn", []) or []:
            txn_type = link.get("TxnType")
            if txn_type in settlement.doc_types and str(link.get("TxnId", "")).isdigit():
                docs.add((txn_type, str(link["TxnId"])))
    return docs


# --- Payment, BillPayment ---------------------------------------------------------------------


def require_total_amount(ctx, entity_type, data, existing):
    total = num(data.get("TotalAmt"), "TotalAmt")
    if total is None:
        raise faults.required_missing("TotalAmt")
    data["TotalAmt"] = total


def _require_live_document(ctx, txn_type, txn_id, party_ref=None):
    """A payment can only apply to a document that exists and is not deleted (610); with
    `party_ref`, only to a document of that party (6000)."""
    qbo_id = int(txn_id) if txn_id.isdigit() else -1  # no such Id: not found, not a 2030
    party = (
        Entity.objects.filter(
            company=ctx.company, entity_type=txn_type, qbo_id=qbo_id, deleted=False
        )
        .values_list("customer_ref", flat=True)
        .first()
    )
    if party is None:
        raise faults.object_not_found()
    if party_ref is not None and party != party_ref:
        raise faults.business_validation(
            f"{txn_type} {txn_id} belongs to another vendor and cannot be paid by this payment."
        )


def _payment_line(ctx, raw, settlement, party_ref):
    line = dict(raw)
    line["Amount"] = num(line.get("Amount"), "Amount") or 0.0
    links = [link for link in line.get("LinkedTxn", []) or [] if link.get("TxnId")]
    for link in links:
        link["TxnType"] = link.get("TxnType") or settlement.default_link_type
        link["TxnId"] = str(link["TxnId"])
        if link["TxnType"] in settlement.doc_types:
            _require_live_document(ctx, link["TxnType"], link["TxnId"], party_ref)
    line["LinkedTxn"] = links
    return line


def build_payment_lines(ctx, entity_type, data, existing):
    """Each line in turn: Amount a number, LinkedTxn entries without a TxnId dropped, TxnType
    defaulting to Invoice (Bill on a BillPayment), and a linked document must be live (and, on a
    BillPayment, the vendor's own)."""
    settlement = SETTLEMENTS[entity_type]
    party_ref = _ref_value(data, settlement.party_ref) if settlement.same_party_only else None
    data["Line"] = [
        _payment_line(ctx, line, settlement, party_ref) for line in data.get("Line", []) or []
    ]


def compute_unapplied_amount(ctx, entity_type, data, existing):
    """UnappliedAmt = TotalAmt less what the lines apply (reads what build_payment_lines left)."""
    applied = sum(
        (
            SALES.applied_sign[link["TxnType"]] * Decimal(str(line["Amount"]))
            for line in data["Line"]
            for link in line["LinkedTxn"]
            if link["TxnType"] in SALES.doc_types
        ),
        Decimal("0"),
    )
    data["UnappliedAmt"] = money(Decimal(str(data["TotalAmt"])) - applied)


def default_process_payment(ctx, entity_type, data, existing):
    data.setdefault("ProcessPayment", False)


def _require_account_of_type(ctx, account_id, account_types, element):
    """An account reference that must exist (2500), be active (610) and be of one of these
    AccountTypes (6000)."""
    check_ref(ctx, "Account", account_id)
    account_type = _live(ctx, "Account", account_id).get("AccountType")
    if account_type not in account_types:
        raise faults.business_validation(
            f"{element} must name a {' or '.join(account_types)} account; Account {account_id} "
            f"is {account_type}."
        )


# PayType → the object that says where the money comes from, its account field, and the
# AccountType that account must have.
PAY_TYPES = {
    "Check": ("CheckPayment", "BankAccountRef", ("Bank",)),
    "CreditCard": ("CreditCardPayment", "CCAccountRef", ("Credit Card",)),
}


def check_pay_type(ctx, entity_type, data, existing):
    """PayType is required (2020), Check or CreditCard (6000); a check is drawn on a Bank
    account (CheckPayment.BankAccountRef), a card payment charged to a Credit Card account
    (CreditCardPayment.CCAccountRef): required (2020), existing (2500), of that type (6000)."""
    pay_type = data.get("PayType")
    if not pay_type:
        raise faults.required_missing("PayType")
    if pay_type not in tuple(PAY_TYPES):
        raise faults.business_validation(f"Invalid PayType: {pay_type}. Use Check or CreditCard.")
    holder, key, account_types = PAY_TYPES[pay_type]
    detail = data.get(holder) if isinstance(data.get(holder), dict) else {}
    account_id = _ref_value(detail, key)
    if not account_id:
        raise faults.required_missing(f"{holder}.{key}")
    _require_account_of_type(ctx, account_id, account_types, f"{holder}.{key}")
    if pay_type == "Check":
        data[holder] = dict(detail, PrintStatus=detail.get("PrintStatus") or "NotSet")


class SettlementRule(Rule):
    """A payment (Payment, BillPayment): applying it lowers its documents' balances; updating,
    voiding or deleting it recomputes them."""

    voidable = True
    settlement = SALES

    def void(self, ctx, data):
        for line in data.get("Line", []):
            line["Amount"] = 0.0
        data["TotalAmt"] = 0.0
        if self.settlement.unapplied_field:
            data[self.settlement.unapplied_field] = 0.0
        data["PrivateNote"] = "Voided"

    def after_write(self, ctx, entity, previous):
        changed = _linked_docs(self.settlement, previous) | _linked_docs(
            self.settlement, entity.data
        )
        for txn_type, txn_id in changed:
            recompute_balance(ctx, txn_type, txn_id)


class PaymentRule(SettlementRule):
    extra_fields = frozenset({"UnappliedAmt", "TotalAmt", "ProcessPayment", "LinkedTxn"})
    checks = (
        require_party,
        require_total_amount,
        build_payment_lines,
        compute_unapplied_amount,
        default_txn_date,
        default_process_payment,
    )


class BillPaymentRule(SettlementRule):
    """BillPayment: pays a vendor's bills (and uses its vendor credits) by check or card. What
    TotalAmt holds beyond its lines stays with the vendor as credit (QBO shows it as such)."""

    settlement = PAYABLES
    extra_fields = frozenset({"LinkedTxn"})
    checks = (
        require_party,
        require_total_amount,
        refuse_negative_total,
        check_pay_type,
        default_ap_account,
        build_payment_lines,
        default_txn_date,
    )


# --- Purchase (expense, check, credit card charge) --------------------------------------------

# PaymentType → the AccountTypes its AccountRef may name.
PURCHASE_ACCOUNTS = {"Cash": ("Bank",), "Check": ("Bank",), "CreditCard": ("Credit Card",)}


def check_purchase_account(ctx, entity_type, data, existing):
    """PaymentType is required (2020), Cash, Check or CreditCard (6000); AccountRef, the account
    the money leaves, is required (2020), existing (2500), a bank account for cash and checks and
    a credit card account for card charges (6000)."""
    payment_type = data.get("PaymentType")
    if not payment_type:
        raise faults.required_missing("PaymentType")
    if payment_type not in tuple(PURCHASE_ACCOUNTS):
        raise faults.business_validation(
            f"Invalid PaymentType: {payment_type}. Use Cash, Check or CreditCard."
        )
    account_id = _ref_value(data, "AccountRef")
    if not account_id:
        raise faults.required_missing("AccountRef")
    _require_account_of_type(ctx, account_id, PURCHASE_ACCOUNTS[payment_type], "AccountRef")


def check_entity_ref(ctx, entity_type, data, existing):
    """EntityRef is optional: the payee, a Vendor unless its type says Customer or Employee;
    when given it must exist (2500) and be active (610)."""
    payee = _ref_value(data, "EntityRef")
    if not payee:
        return
    ref = data["EntityRef"] if isinstance(data["EntityRef"], dict) else {}
    payee_type = ref.get("type") or "Vendor"
    if payee_type not in NAME_NAMESPACE:
        raise faults.invalid_reference(str(payee_type), payee)
    check_ref(ctx, payee_type, payee)


def default_credit_flag(ctx, entity_type, data, existing):
    """Credit (a refund to a credit card) only means something on a card purchase."""
    if data.get("PaymentType") == "CreditCard":
        data.setdefault("Credit", False)


class GenericTxnRule(Rule):
    """Transactions without specific rules (SalesReceipt, Estimate, ...): void zeroes amounts."""

    voidable = True

    def void(self, ctx, data):
        for line in data.get("Line", []) or []:
            if isinstance(line, dict) and "Amount" in line:
                line["Amount"] = 0.0
        for key in ("TotalAmt", "Balance", "UnappliedAmt"):
            if key in data:
                data[key] = 0.0
        data["PrivateNote"] = "Voided"


class PurchaseRule(GenericTxnRule):
    """Purchase: money out of a bank or credit card account at once (no bill, no payment)."""

    checks = (
        check_purchase_account,
        check_entity_ref,
        require_lines,
        limit_doc_number,
        build_expense_lines,
        total_expense_lines,
        default_txn_date,
        default_credit_flag,
    )


def check_attachable_refs(ctx, entity_type, data, existing):
    """AttachableRef: what the file or note is attached to. Each EntityRef names an object that
    exists (2500 otherwise, 610 when inactive); IncludeOnSend defaults to false. An Attachable
    without references is allowed (it sits in the attachment list)."""
    refs = data.get("AttachableRef") or []
    if not isinstance(refs, list):
        raise faults.QboFault(2010, "Request has invalid or unsupported property", "AttachableRef")
    for item in refs:
        entity_ref = item.get("EntityRef") if isinstance(item, dict) else None
        if not isinstance(entity_ref, dict) or not entity_ref.get("value"):
            raise faults.required_missing("AttachableRef.EntityRef")
        target_type = store.canonical_name(entity_ref.get("type") or "")
        value = str(entity_ref["value"])
        if target_type is None:
            raise faults.invalid_reference(str(entity_ref.get("type") or "(no type)"), value)
        check_ref(ctx, target_type, value)
        entity_ref["type"] = target_type
        entity_ref["value"] = value
        item["IncludeOnSend"] = item.get("IncludeOnSend") in (True, "true", "True")


class AttachableRule(Rule):
    """A file (uploaded through /upload) or a note (POST /attachable) and what it is attached
    to; deleted, never voided."""

    checks = (check_attachable_refs,)


RULES = {
    "Attachable": AttachableRule(),
    "Customer": CustomerRule(),
    "Vendor": VendorRule(),
    "Employee": EmployeeRule(),
    "Item": ItemRule(),
    "Account": AccountRule(),
    "Term": NamedRule(),
    "TaxCode": NamedRule(),
    "Class": NamedRule(),
    "Department": NamedRule(),
    "PaymentMethod": NamedRule(),
    "Invoice": InvoiceRule(),
    "CreditMemo": CreditMemoRule(),
    "Payment": PaymentRule(),
    "Bill": BillRule(),
    "VendorCredit": VendorCreditRule(),
    "BillPayment": BillPaymentRule(),
    "Purchase": PurchaseRule(),
}
