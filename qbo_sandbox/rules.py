"""Per-entity QBO rules layered on the generic store: names, references, totals, balances.

A rule lists its `checks`: small functions, each one Intuit behaviour, that `Rule.prepare` runs
in order on the document about to be stored. A check either raises the fault Intuit answers with
or fills in what QBO computes itself; the first fault stops the write, since we report one error
per request (README, "Known differences"). The order is part of the behaviour: when a request is
wrong in two ways, the earlier check decides the fault. Adding an entity means listing its checks.

Every check takes what `prepare` takes: (ctx, entity_type, data, existing), `data` being the
document to store (changed in place) and `existing` the stored Entity on an update, None on a
create. Sales lines get the same treatment one level down: `SALES_LINE_CHECKS` run over each line.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from . import faults
from .models import Entity
from .timefmt import local_today

NAME_NAMESPACE = ("Customer", "Vendor", "Employee")  # one DisplayName namespace, case-insensitive
FQN_TYPES = {"Customer", "Account", "Item", "Class", "Department"}  # have FullyQualifiedName
SALES_ITEM = "SalesItemLineDetail"
SALES_AMOUNT_TYPES = (SALES_ITEM, "GroupLineDetail")  # lines that add to a document's total
# What a Payment line linked to each document type does to the money the payment applies: it pays
# an invoice, and it uses a credit memo's credit up (so that money comes back to the payment).
APPLIED_SIGN = {"Invoice": 1, "CreditMemo": -1}
# Membership is tested on a tuple, not the dict: TxnType is client data and may be unhashable.
LINKED_DOC_TYPES = tuple(APPLIED_SIGN)


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
    data["Balance"] = balance
    data["BalanceWithJobs"] = balance


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
    """Customer, Vendor, Employee: DisplayName built like QBO, unique across the three. As is,
    the rule of a Vendor; Customer and Employee add their own checks."""

    server_fields = frozenset({"Balance", "BalanceWithJobs"})
    checks = (default_display_name, default_print_on_check_name, unique_display_name)


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


# --- Sales documents: Invoice, CreditMemo -----------------------------------------------------


def require_customer(ctx, entity_type, data, existing):
    """CustomerRef is required (2020) and names an existing (2500), active (610) customer."""
    customer_id = _ref_value(data, "CustomerRef")
    if not customer_id:
        raise faults.required_missing("CustomerRef")
    check_ref(ctx, "Customer", customer_id)


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


def refuse_duplicate_doc_number(ctx, entity_type, data, existing):
    """A DocNumber another live document of the same type has → 6140, but only when the company
    warns on duplicate numbers (Preferences, WarnDuplicateDocNum)."""
    doc_number = str(data.get("DocNumber") or "")
    if not doc_number or not ctx.company.warn_duplicate_doc_number:
        return
    same_number = Entity.objects.filter(
        company=ctx.company, entity_type=entity_type, doc_number=doc_number, deleted=False
    )
    clash = _first_clash(same_number, existing)
    if clash is not None:
        raise faults.duplicate_doc_number(doc_number, entity_type, clash)


@dataclass
class SalesLine:
    """One line of a sales document while SALES_LINE_CHECKS run over it."""

    fields: dict  # a copy of the line as sent, becoming the stored line
    detail_type: str
    detail: dict  # its <DetailType> object; {} when it has none

    @classmethod
    def of(cls, raw):
        fields = dict(raw)
        detail_type = fields.get("DetailType") or SALES_ITEM
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
    if line.detail_type != SALES_ITEM:
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
    """Amount is a number; a sales item line without one costs Qty × UnitPrice (2020 on Amount
    when either is missing). Only a DescriptionOnly line may go without an Amount."""
    amount = num(line.fields.get("Amount"), "Amount")
    if amount is None and line.detail_type == SALES_ITEM:
        amount = _extended_amount(line.detail)
    if line.detail_type != "DescriptionOnly" or amount is not None:
        line.fields["Amount"] = amount or 0.0


def _extended_amount(detail):
    qty, price = detail.get("Qty"), detail.get("UnitPrice")
    if qty is None or price is None:
        raise faults.required_missing("Amount")
    return money(Decimal(str(qty)) * Decimal(str(price)))


SALES_LINE_CHECKS = (limit_description, check_item_ref, normalise_quantity, resolve_amount)


def _sales_line(ctx, raw):
    line = SalesLine.of(raw)
    for check in SALES_LINE_CHECKS:
        check(ctx, line)
    if line.detail:
        line.fields[line.detail_type] = line.detail
    return line.fields


def _sum_amounts(lines, detail_types):
    return sum(
        (Decimal(str(line["Amount"])) for line in lines if line["DetailType"] in detail_types),
        Decimal("0"),
    )


def build_sales_lines(ctx, entity_type, data, existing):
    """Each line checked in turn (the first bad line decides the fault) and numbered 1..n
    (Id, LineNum), then QBO's own SubTotalLineDetail line appended."""
    lines = [_sales_line(ctx, line) for line in data["Line"] if _is_real_line(line)]
    for number, line in enumerate(lines, start=1):
        line["Id"] = str(number)
        line["LineNum"] = number
    subtotal = money(_sum_amounts(lines, SALES_AMOUNT_TYPES))
    lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    data["Line"] = lines


def total_sales_lines(ctx, entity_type, data, existing):
    """TotalAmt is QBO's: item and group lines less discount lines, whatever the client sent.
    Reads the lines build_sales_lines left."""
    sales = _sum_amounts(data["Line"], SALES_AMOUNT_TYPES)
    data["TotalAmt"] = money(sales - _sum_amounts(data["Line"], ("DiscountLineDetail",)))


def default_txn_date(ctx, entity_type, data, existing):
    """TxnDate defaults to today in the company's (Pacific) time."""
    data.setdefault("TxnDate", local_today().isoformat())


def default_due_date(ctx, entity_type, data, existing):
    data.setdefault("DueDate", data["TxnDate"])


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


# What every sales document checks first, in this order; each rule then adds its own.
SALES_CHECKS = (
    require_customer,
    require_lines,
    limit_doc_number,
    refuse_duplicate_doc_number,
    build_sales_lines,
    total_sales_lines,
    default_txn_date,
)


class SalesTxnRule(Rule):
    """Invoice and CreditMemo: customer, lines, DocNumber, computed totals."""

    extra_fields = frozenset({"RemainingCredit", "InvoiceLink", "Balance", "TotalAmt", "LinkedTxn"})
    server_fields = frozenset()
    checks = (*SALES_CHECKS, compute_balance, default_linked_txn)


def recompute_customer_balance(ctx, customer_ref):
    """Customer.Balance = open invoice balances (QBO keeps it; SyncToken is not bumped)."""
    if not customer_ref or not customer_ref.isdigit():
        return
    total = Decimal("0")
    invoices = Entity.objects.filter(
        company=ctx.company, entity_type="Invoice", customer_ref=customer_ref, deleted=False
    ).values_list("data", flat=True)
    for data in invoices.iterator(chunk_size=500):
        total += Decimal(str(data.get("Balance") or 0))
    customer = Entity.objects.filter(
        company=ctx.company, entity_type="Customer", qbo_id=int(customer_ref)
    ).first()
    if customer is None:
        return
    balance = money(total)
    if customer.data.get("Balance") != balance:
        data = dict(customer.data, Balance=balance, BalanceWithJobs=balance)
        Entity.objects.filter(pk=customer.pk).update(data=data)


def _line_applies_to(line, txn_type, doc_id):
    """Whether a payment line is linked to this Invoice / CreditMemo."""
    return any(
        str(link.get("TxnId")) == doc_id and link.get("TxnType") == txn_type
        for link in line.get("LinkedTxn", []) or []
    )


def unlink_payments(ctx, entity_type, doc):
    """A deleted or voided document frees what was applied to it: the payments keep their
    money as unapplied credit (UnappliedAmt), like QBO."""
    from .store import touch

    doc_id = str(doc.qbo_id)
    for payment in _payments_for(ctx.company, doc.customer_ref).order_by("qbo_id"):
        data = _unlinked(payment.data, entity_type, doc_id)
        if data is not None:
            touch(ctx, payment, data)
            ctx.announce(payment, "updated")


def _unlinked(payment_data, entity_type, doc_id):
    """The payment without its lines applied to this document, their money moved to
    UnappliedAmt; None when no line applies to it."""
    kept, freed = [], []
    for line in payment_data.get("Line", []) or []:
        (freed if _line_applies_to(line, entity_type, doc_id) else kept).append(line)
    if not freed:
        return None
    released = sum(
        (APPLIED_SIGN[entity_type] * Decimal(str(line.get("Amount") or 0)) for line in freed),
        Decimal("0"),
    )
    data = dict(payment_data, Line=kept)
    data["UnappliedAmt"] = money(Decimal(str(data.get("UnappliedAmt") or 0)) + released)
    return data


def _became_dead(entity, previous):
    voided_now = (
        entity.data.get("PrivateNote") == "Voided"
        and (previous or {}).get("PrivateNote") != "Voided"
    )
    return entity.deleted or (voided_now and not entity.data.get("TotalAmt"))


class InvoiceRule(SalesTxnRule):
    voidable = True
    checks = (
        *SALES_CHECKS,
        default_due_date,
        compute_balance,
        default_linked_txn,
        default_send_statuses,
    )

    def after_write(self, ctx, entity, previous):
        if _became_dead(entity, previous):
            unlink_payments(ctx, "Invoice", entity)
            if not entity.deleted and entity.data.get("LinkedTxn"):
                # Part of this same write (no second SyncToken bump).
                entity.data = dict(entity.data, LinkedTxn=[], Balance=0.0)
                Entity.objects.filter(pk=entity.pk).update(data=entity.data)
        recompute_customer_balance(ctx, entity.customer_ref)
        old_ref = _ref_value(previous or {}, "CustomerRef")
        if old_ref and old_ref != entity.customer_ref:
            recompute_customer_balance(ctx, old_ref)

    def void(self, ctx, data):
        for line in data.get("Line", []):
            if "Amount" in line:
                line["Amount"] = 0.0
        data["TotalAmt"] = 0.0
        data["Balance"] = 0.0
        data["PrivateNote"] = "Voided"


class CreditMemoRule(SalesTxnRule):
    checks = (*SalesTxnRule.checks, remaining_credit_is_balance)

    def after_write(self, ctx, entity, previous):
        if entity.deleted:
            unlink_payments(ctx, "CreditMemo", entity)


def _payments_for(company, customer_ref):
    return Entity.objects.filter(
        company=company, entity_type="Payment", customer_ref=customer_ref, deleted=False
    )


def applied_amount(ctx, entity_type, doc):
    """Sum of Payment line amounts linked to this Invoice / CreditMemo."""
    total = Decimal("0")
    doc_id = str(doc.qbo_id)
    for payment in _payments_for(ctx.company, doc.customer_ref):
        for line in payment.data.get("Line", []):
            for link in line.get("LinkedTxn", []) or []:
                if str(link.get("TxnId")) == doc_id and link.get("TxnType") == entity_type:
                    total += Decimal(str(line.get("Amount") or 0))
    return total


def linked_payment_ids(ctx, entity_type, doc):
    doc_id = str(doc.qbo_id)
    return [
        str(payment.qbo_id)
        for payment in _payments_for(ctx.company, doc.customer_ref).order_by("qbo_id")
        if any(_line_applies_to(line, entity_type, doc_id) for line in payment.data.get("Line", []))
    ]


def recompute_balance(ctx, entity_type, doc_id):
    from .store import touch

    doc = Entity.objects.filter(
        company=ctx.company, entity_type=entity_type, qbo_id=int(doc_id), deleted=False
    ).first()
    if doc is None:
        return
    data = dict(doc.data)
    applied = applied_amount(ctx, entity_type, doc)
    if data.get("PrivateNote") == "Voided" and not data.get("TotalAmt"):
        balance = 0.0
    else:
        balance = money(Decimal(str(data.get("TotalAmt") or 0)) - applied)
    links = [
        {"TxnId": pid, "TxnType": "Payment"} for pid in linked_payment_ids(ctx, entity_type, doc)
    ]
    changed = data.get("Balance") != balance or data.get("LinkedTxn", []) != links
    data["Balance"] = balance
    data["LinkedTxn"] = links
    if entity_type == "CreditMemo":
        data["RemainingCredit"] = balance
    if changed:
        touch(ctx, doc, data)
        if entity_type == "Invoice":
            recompute_customer_balance(ctx, doc.customer_ref)


def _linked_docs(data):
    docs = set()
    for line in (data or {}).get("Line", []) or []:
        for link in line.get("LinkedTxn", []) or []:
            if link.get("TxnType") in LINKED_DOC_TYPES and str(link.get("TxnId", "")).isdigit():
                docs.add((link["TxnType"], str(link["TxnId"])))
    return docs


# --- Payment ----------------------------------------------------------------------------------


def require_total_amount(ctx, entity_type, data, existing):
    total = num(data.get("TotalAmt"), "TotalAmt")
    if total is None:
        raise faults.required_missing("TotalAmt")
    data["TotalAmt"] = total


def _require_live_document(ctx, txn_type, txn_id):
    """A payment can only apply to an Invoice / CreditMemo that exists and is not deleted (610)."""
    qbo_id = int(txn_id) if txn_id.isdigit() else -1  # no such Id: not found, not a 2030
    live = Entity.objects.filter(
        company=ctx.company, entity_type=txn_type, qbo_id=qbo_id, deleted=False
    )
    if not live.exists():
        raise faults.object_not_found()


def _payment_line(ctx, raw):
    line = dict(raw)
    line["Amount"] = num(line.get("Amount"), "Amount") or 0.0
    links = [link for link in line.get("LinkedTxn", []) or [] if link.get("TxnId")]
    for link in links:
        link["TxnType"] = link.get("TxnType") or "Invoice"
        link["TxnId"] = str(link["TxnId"])
        if link["TxnType"] in LINKED_DOC_TYPES:
            _require_live_document(ctx, link["TxnType"], link["TxnId"])
    line["LinkedTxn"] = links
    return line


def build_payment_lines(ctx, entity_type, data, existing):
    """Each line in turn: Amount a number, LinkedTxn entries without a TxnId dropped, TxnType
    defaulting to Invoice, and a linked Invoice / CreditMemo must be live."""
    data["Line"] = [_payment_line(ctx, line) for line in data.get("Line", []) or []]


def compute_unapplied_amount(ctx, entity_type, data, existing):
    """UnappliedAmt = TotalAmt less what the lines apply (reads what build_payment_lines left)."""
    applied = sum(
        (
            APPLIED_SIGN[link["TxnType"]] * Decimal(str(line["Amount"]))
            for line in data["Line"]
            for link in line["LinkedTxn"]
            if link["TxnType"] in LINKED_DOC_TYPES
        ),
        Decimal("0"),
    )
    data["UnappliedAmt"] = money(Decimal(str(data["TotalAmt"])) - applied)


def default_process_payment(ctx, entity_type, data, existing):
    data.setdefault("ProcessPayment", False)


class PaymentRule(Rule):
    voidable = True
    extra_fields = frozenset({"UnappliedAmt", "TotalAmt", "ProcessPayment", "LinkedTxn"})
    checks = (
        require_customer,
        require_total_amount,
        build_payment_lines,
        compute_unapplied_amount,
        default_txn_date,
        default_process_payment,
    )

    def void(self, ctx, data):
        for line in data.get("Line", []):
            line["Amount"] = 0.0
        data["TotalAmt"] = 0.0
        data["UnappliedAmt"] = 0.0
        data["PrivateNote"] = "Voided"

    def after_write(self, ctx, entity, previous):
        for txn_type, txn_id in _linked_docs(previous) | _linked_docs(entity.data):
            recompute_balance(ctx, txn_type, txn_id)


class GenericTxnRule(Rule):
    """Transactions without specific rules (Bill, SalesReceipt, ...): void zeroes amounts."""

    voidable = True

    def void(self, ctx, data):
        for line in data.get("Line", []) or []:
            if isinstance(line, dict) and "Amount" in line:
                line["Amount"] = 0.0
        for key in ("TotalAmt", "Balance", "UnappliedAmt"):
            if key in data:
                data[key] = 0.0
        data["PrivateNote"] = "Voided"


RULES = {
    "Customer": CustomerRule(),
    "Vendor": PartyRule(),
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
}
