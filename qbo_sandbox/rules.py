"""Per-entity QBO rules layered on the generic store: names, references, totals, balances."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from . import faults
from .models import Entity
from .timefmt import local_today

NAME_NAMESPACE = ("Customer", "Vendor", "Employee")  # one DisplayName namespace, case-insensitive
FQN_TYPES = {"Customer", "Account", "Item", "Class", "Department"}  # have FullyQualifiedName


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
    target = Entity.objects.filter(
        company=ctx.company, entity_type=entity_type, qbo_id=int(value), deleted=False
    ).first()
    if target is None:
        raise faults.invalid_reference(entity_type, value)
    if not target.active:
        raise faults.object_not_found()
    return target


class Rule:
    """Default: no rule beyond the generic store."""

    extra_fields = frozenset()
    # Fields kept on a full update although the client omitted them (server-maintained).
    server_fields = frozenset()
    voidable = False
    name_field = None
    namespace = None  # entity types sharing the name namespace

    def prepare(self, ctx, entity_type, data, existing):
        if self.name_field:
            self.check_name(ctx, entity_type, data, existing)

    def check_name(self, ctx, entity_type, data, existing):
        name = str(data.get(self.name_field) or "").strip()
        if not name:
            raise faults.required_missing(self.name_field)
        if len(name) > 100:
            raise faults.too_long(self.name_field, 100)
        data[self.name_field] = name
        qs = Entity.objects.filter(
            company=ctx.company,
            entity_type__in=self.namespace or (entity_type,),
            name_key=name.casefold(),
            deleted=False,
        )
        if existing is not None:
            qs = qs.exclude(pk=existing.pk)
        clash = qs.values_list("qbo_id", flat=True).first()
        if clash is not None:
            raise faults.duplicate_name(clash)
        if entity_type in FQN_TYPES:
            data["FullyQualifiedName"] = name

    def after_write(self, ctx, entity, previous):
        pass

    def void(self, ctx, data):
        pass


class PartyRule(Rule):
    """Customer, Vendor, Employee: DisplayName built like QBO, unique across the three."""

    name_field = "DisplayName"
    namespace = NAME_NAMESPACE
    server_fields = frozenset({"Balance", "BalanceWithJobs"})

    def prepare(self, ctx, entity_type, data, existing):
        if not str(data.get("DisplayName") or "").strip():
            parts = [data.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName")]
            parts.append(data.get("Suffix"))
            built = " ".join(str(p).strip() for p in parts if p and str(p).strip())
            data["DisplayName"] = built or str(data.get("CompanyName") or "").strip()
        if entity_type == "Customer":
            # Read-only: QBO keeps the open balance, whatever the client sends back.
            balance = existing.data.get("Balance", 0) if existing is not None else 0
            data["Balance"] = balance
            data["BalanceWithJobs"] = balance
            data.setdefault("Taxable", False)
            data.setdefault("Job", False)
            data.setdefault("BillWithParent", False)
        if entity_type == "Employee" and not (data.get("GivenName") or data.get("FamilyName")):
            if not data.get("DisplayName"):
                raise faults.required_missing("GivenName")
        data.setdefault("PrintOnCheckName", str(data.get("DisplayName") or "").strip())
        super().prepare(ctx, entity_type, data, existing)


class NamedRule(Rule):
    name_field = "Name"


class AccountRule(NamedRule):
    def prepare(self, ctx, entity_type, data, existing):
        if not data.get("AccountType") and not data.get("AccountSubType"):
            raise faults.required_missing("AccountType")
        data.setdefault("CurrentBalance", 0)
        data.setdefault("Classification", _classify(data.get("AccountType", "")))
        super().prepare(ctx, entity_type, data, existing)


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


class ItemRule(NamedRule):
    def prepare(self, ctx, entity_type, data, existing):
        data.setdefault("Type", "Service")
        if data["Type"] in ("Service", "Inventory") and not _ref_value(data, "IncomeAccountRef"):
            raise faults.required_missing("IncomeAccountRef")
        for key in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef"):
            value = _ref_value(data, key)
            if value:
                check_ref(ctx, "Account", value)
        super().prepare(ctx, entity_type, data, existing)


SALES_LINE_TYPES = {"SalesItemLineDetail", "GroupLineDetail", "DescriptionOnly"}


class SalesTxnRule(Rule):
    """Invoice and CreditMemo: customer, lines, DocNumber, computed totals."""

    extra_fields = frozenset({"RemainingCredit", "InvoiceLink", "Balance", "TotalAmt", "LinkedTxn"})
    server_fields = frozenset()
    balance_link_type = None  # TxnType a Payment line uses to apply to this document

    def prepare(self, ctx, entity_type, data, existing):
        customer_id = _ref_value(data, "CustomerRef")
        if not customer_id:
            raise faults.required_missing("CustomerRef")
        check_ref(ctx, "Customer", customer_id)
        lines = data.get("Line")
        if not isinstance(lines, list) or not [
            ln
            for ln in lines
            if isinstance(ln, dict) and ln.get("DetailType") != "SubTotalLineDetail"
        ]:
            raise faults.required_missing("Line")
        doc_number = str(data.get("DocNumber") or "")
        if len(doc_number) > 21:
            raise faults.too_long("DocNumber", 21)
        if doc_number and ctx.company.warn_duplicate_doc_number:
            qs = Entity.objects.filter(
                company=ctx.company, entity_type=entity_type, doc_number=doc_number, deleted=False
            )
            if existing is not None:
                qs = qs.exclude(pk=existing.pk)
            clash = qs.values_list("qbo_id", flat=True).first()
            if clash is not None:
                raise faults.duplicate_doc_number(doc_number, entity_type, clash)
        total = Decimal("0")
        discount = Decimal("0")
        out_lines = []
        for line in lines:
            if not isinstance(line, dict) or line.get("DetailType") == "SubTotalLineDetail":
                continue
            line = dict(line)
            detail_type = line.get("DetailType") or "SalesItemLineDetail"
            line["DetailType"] = detail_type
            if len(str(line.get("Description") or "")) > 4000:
                raise faults.too_long("Description", 4000)
            detail = line.get(detail_type) if isinstance(line.get(detail_type), dict) else {}
            if detail_type == "SalesItemLineDetail":
                item_id = _ref_value(detail, "ItemRef")
                if item_id:
                    check_ref(ctx, "Item", item_id)
                qty = num(detail.get("Qty"), "Qty")
                price = num(detail.get("UnitPrice"), "UnitPrice")
                if qty is not None and price is not None and qty == 0 and price == 0:
                    detail.pop("Qty", None)  # python-quickbooks placeholders
                    detail.pop("UnitPrice", None)
                elif qty is not None:
                    detail["Qty"] = qty
                    if price is not None:
                        detail["UnitPrice"] = price
            amount = num(line.get("Amount"), "Amount")
            if amount is None and detail_type == "SalesItemLineDetail":
                qty, price = detail.get("Qty"), detail.get("UnitPrice")
                if qty is None or price is None:
                    raise faults.required_missing("Amount")
                amount = money(Decimal(str(qty)) * Decimal(str(price)))
            if detail_type != "DescriptionOnly" or amount is not None:
                line["Amount"] = amount or 0.0
            if detail_type in ("SalesItemLineDetail", "GroupLineDetail"):
                total += Decimal(str(line["Amount"]))
            elif detail_type == "DiscountLineDetail":
                discount += Decimal(str(line["Amount"]))
            if detail:
                line[detail_type] = detail
            out_lines.append(line)
        for index, line in enumerate(out_lines, start=1):
            line["Id"] = str(index)
            line["LineNum"] = index
        subtotal = money(total)
        out_lines.append(
            {"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
        )
        data["Line"] = out_lines
        data["TotalAmt"] = money(total - discount)
        data.setdefault("TxnDate", local_today().isoformat())
        if entity_type == "Invoice":
            data.setdefault("DueDate", data["TxnDate"])
        applied = applied_amount(ctx, entity_type, existing) if existing is not None else 0
        data["Balance"] = money(Decimal(str(data["TotalAmt"])) - Decimal(str(applied)))
        data.setdefault("LinkedTxn", [])
        self.finish(data)

    def finish(self, data):
        pass


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


def unlink_payments(ctx, entity_type, doc):
    """A deleted or voided document frees what was applied to it: the payments keep their
    money as unapplied credit (UnappliedAmt), like QBO."""
    from .store import touch

    doc_id = str(doc.qbo_id)
    for payment in _payments_for(ctx.company, doc.customer_ref).order_by("qbo_id"):
        data = dict(payment.data)
        kept, freed = [], Decimal("0")
        for line in data.get("Line", []) or []:
            links = line.get("LinkedTxn", []) or []
            if any(
                str(lk.get("TxnId")) == doc_id and lk.get("TxnType") == entity_type for lk in links
            ):
                sign = 1 if entity_type == "Invoice" else -1
                freed += sign * Decimal(str(line.get("Amount") or 0))
                continue
            kept.append(line)
        if freed or len(kept) != len(data.get("Line", []) or []):
            data["Line"] = kept
            data["UnappliedAmt"] = money(Decimal(str(data.get("UnappliedAmt") or 0)) + freed)
            touch(ctx, payment, data)
            ctx.announce(payment, "updated")


def _became_dead(entity, previous):
    voided_now = (
        entity.data.get("PrivateNote") == "Voided"
        and (previous or {}).get("PrivateNote") != "Voided"
    )
    return entity.deleted or (voided_now and not entity.data.get("TotalAmt"))


class InvoiceRule(SalesTxnRule):
    voidable = True

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

    def finish(self, data):
        data.setdefault("EmailStatus", "NotSet")
        data.setdefault("PrintStatus", "NotSet")

    def void(self, ctx, data):
        for line in data.get("Line", []):
            if "Amount" in line:
                line["Amount"] = 0.0
        data["TotalAmt"] = 0.0
        data["Balance"] = 0.0
        data["PrivateNote"] = "Voided"


class CreditMemoRule(SalesTxnRule):
    def finish(self, data):
        data["RemainingCredit"] = data["Balance"]

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
    ids = []
    for payment in _payments_for(ctx.company, doc.customer_ref).order_by("qbo_id"):
        for line in payment.data.get("Line", []):
            if any(
                str(link.get("TxnId")) == doc_id and link.get("TxnType") == entity_type
                for link in line.get("LinkedTxn", []) or []
            ):
                ids.append(str(payment.qbo_id))
                break
    return ids


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
            if (
                link.get("TxnType") in ("Invoice", "CreditMemo")
                and str(link.get("TxnId", "")).isdigit()
            ):
                docs.add((link["TxnType"], str(link["TxnId"])))
    return docs


class PaymentRule(Rule):
    voidable = True
    extra_fields = frozenset({"UnappliedAmt", "TotalAmt", "ProcessPayment", "LinkedTxn"})

    def prepare(self, ctx, entity_type, data, existing):
        customer_id = _ref_value(data, "CustomerRef")
        if not customer_id:
            raise faults.required_missing("CustomerRef")
        check_ref(ctx, "Customer", customer_id)
        total = num(data.get("TotalAmt"), "TotalAmt")
        if total is None:
            raise faults.required_missing("TotalAmt")
        data["TotalAmt"] = total
        applied = Decimal("0")
        lines = []
        for line in data.get("Line", []) or []:
            line = dict(line)
            amount = num(line.get("Amount"), "Amount") or 0.0
            line["Amount"] = amount
            links = [lk for lk in line.get("LinkedTxn", []) or [] if lk.get("TxnId")]
            for link in links:
                txn_type = link.get("TxnType") or "Invoice"
                link["TxnType"] = txn_type
                link["TxnId"] = str(link["TxnId"])
                if txn_type in ("Invoice", "CreditMemo"):
                    target = Entity.objects.filter(
                        company=ctx.company, entity_type=txn_type, deleted=False,
                        qbo_id=int(link["TxnId"]) if link["TxnId"].isdigit() else -1,
                    ).first()  # fmt: skip
                    if target is None:
                        raise faults.object_not_found()
                    sign = 1 if txn_type == "Invoice" else -1
                    applied += sign * Decimal(str(amount))
            line["LinkedTxn"] = links
            lines.append(line)
        data["Line"] = lines
        data["UnappliedAmt"] = money(Decimal(str(total)) - applied)
        data.setdefault("TxnDate", local_today().isoformat())
        data.setdefault("ProcessPayment", False)

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
    "Customer": PartyRule(),
    "Vendor": PartyRule(),
    "Employee": PartyRule(),
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
