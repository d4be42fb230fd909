"""The generic entity store: create/read/update/delete/void any QBO entity as a JSON document.

Per-entity rules (rules.py) are layered on top through RULES; an entity without rules still
works (Id, SyncToken, MetaData, query, cdc). Callers hold the company row lock
(`SandboxCompany.select_for_update()`) for the whole write, so the uniqueness checks and the
id counter are race-free.
"""

from dataclasses import dataclass, field

from django.utils import timezone

from . import faults
from .models import Entity, SandboxCompany
from .timefmt import meta_time, parse_qbo_datetime

ENTITY_NAMES = [
    "Account", "Attachable", "Bill", "BillPayment", "Budget", "Class", "CompanyCurrency",
    "CompanyInfo", "CreditCardPayment", "CreditMemo", "Customer", "CustomerType", "Department",
    "Deposit", "Employee", "Estimate", "ExchangeRate", "Invoice", "Item", "JournalCode",
    "JournalEntry", "Payment", "PaymentMethod", "Preferences", "Purchase", "PurchaseOrder",
    "RecurringTransaction", "RefundReceipt", "SalesReceipt", "TaxAgency", "TaxCode", "TaxRate",
    "Term", "TimeActivity", "Transfer", "Vendor", "VendorCredit",
]  # fmt: skip
CANONICAL = {name.lower(): name for name in ENTITY_NAMES}

# Name-list entities are never deleted, only deactivated (Active=false).
NAME_LIST = {
    "Account", "Class", "CompanyCurrency", "Customer", "CustomerType", "Department", "Employee",
    "Item", "PaymentMethod", "TaxAgency", "TaxCode", "TaxRate", "Term", "Vendor",
}  # fmt: skip
READ_ONLY = {"Id", "SyncToken", "MetaData", "domain", "sparse", "status"}
# The party a transaction belongs to, kept in the indexed customer_ref column: a vendor for the
# payables documents, a customer otherwise.
VENDOR_TRANSACTIONS = {"Bill", "BillPayment", "VendorCredit"}


def party_ref_field(entity_type):
    """The field whose reference fills Entity.customer_ref for this entity type."""
    return "VendorRef" if entity_type in VENDOR_TRANSACTIONS else "CustomerRef"


def canonical_name(name):
    return CANONICAL.get(str(name).lower())


def lock_company(pk):
    """Lock the company row for this transaction (the per-realm write mutex).

    On SQLite (the demo) select_for_update is a no-op and a read-then-write transaction can fail
    at once with "database is locked"; a first no-op UPDATE takes the write lock up front, so
    concurrent writers wait (busy timeout) instead.
    """
    from django.db import connection
    from django.db.models import F

    if connection.vendor == "sqlite":
        SandboxCompany.objects.filter(pk=pk).update(next_id=F("next_id"))
    return SandboxCompany.objects.select_for_update().get(pk=pk)


@dataclass
class Ctx:
    """One request's write context: the locked company and the changes to announce."""

    company: SandboxCompany
    events: list = field(default_factory=list)  # (entity_type, id, verb)
    source: str = "api"
    # References found live and active in this transaction (a batch checks the same items
    # thirty times); a write to one of them, or a failed batch item, forgets them.
    live_refs: set = field(default_factory=set)
    # `include=allowduplicatedocnum` (or a batch item's optionsData): no 6140 for this write.
    allow_duplicate_doc_number: bool = False

    def announce(self, entity, verb):
        self.events.append((entity.entity_type, entity.qbo_id, verb))
        self.live_refs.discard((entity.entity_type, entity.qbo_id))


def render(entity):
    body = {k: v for k, v in entity.data.items() if k not in READ_ONLY}
    body.update(
        {
            "domain": "QBO",
            "sparse": False,
            "Id": str(entity.qbo_id),
            "SyncToken": str(entity.sync_token),
            "MetaData": {
                "CreateTime": meta_time(entity.created),
                "LastUpdatedTime": meta_time(entity.updated),
            },
        }
    )
    return body


def deleted_stub(entity):
    return {
        "domain": "QBO",
        "status": "Deleted",
        "Id": str(entity.qbo_id),
        "MetaData": {"LastUpdatedTime": meta_time(entity.updated)},
    }


def clean(value):
    """Drop python-quickbooks placeholders ("" values, empty refs) like QBO ignores them."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None or item == "":
                continue
            item = clean(item)
            if key.endswith("Ref") and isinstance(item, dict) and not item.get("value"):
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [clean(item) for item in value]
    return value


def parse_id(raw):
    text = str(raw).strip() if raw is not None else ""
    if not text.isdigit():
        raise faults.invalid_id(text)
    return int(text)


def get_entity(company, entity_type, raw_id, *, for_write=False, include_deleted=False):
    qbo_id = parse_id(raw_id)
    qs = Entity.objects.filter(company=company, entity_type=entity_type, qbo_id=qbo_id)
    entity = qs.first()
    if entity is None or (entity.deleted and not include_deleted):
        raise faults.object_not_found()
    return entity


def denormalize(entity):
    data = entity.data
    name = data.get("DisplayName") or data.get("Name") or ""
    entity.name_key = str(name).strip().casefold()[:500]
    entity.doc_number = str(data.get("DocNumber") or "")[:64]
    txn = parse_qbo_datetime(data["TxnDate"]) if data.get("TxnDate") else None
    entity.txn_date = txn.date() if txn else None
    ref = data.get(party_ref_field(entity.entity_type))
    entity.customer_ref = str(ref.get("value", ""))[:32] if isinstance(ref, dict) else ""
    entity.active = bool(data.get("Active", True)) if entity.entity_type in NAME_LIST else True


def _rules(entity_type):
    from .rules import RULES, GenericTxnRule, Rule

    if entity_type in RULES:
        return RULES[entity_type]
    return Rule() if entity_type in NAME_LIST else GenericTxnRule()


def _check_fields(entity_type, payload):
    from .fields import COMMON, KNOWN_FIELDS

    known = KNOWN_FIELDS.get(entity_type)
    if known is None:
        return
    extra = _rules(entity_type).extra_fields
    for key in payload:
        if key not in known and key not in COMMON and key not in extra:
            raise faults.unsupported_property(entity_type, key)


def _allocate_id(ctx):
    company = ctx.company
    qbo_id = company.next_id
    company.next_id = qbo_id + 1
    SandboxCompany.objects.filter(pk=company.pk).update(next_id=company.next_id)
    return qbo_id


def entity_create(ctx, entity_type, payload):
    if not isinstance(payload, dict):
        raise faults.QboFault(2010, "Request has invalid or unsupported property", "Body")
    _check_fields(entity_type, payload)
    rules = _rules(entity_type)
    data = {k: v for k, v in clean(payload).items() if k not in READ_ONLY}
    if entity_type in NAME_LIST:
        data.setdefault("Active", True)
    rules.prepare(ctx, entity_type, data, None)
    now = timezone.now()
    entity = Entity(
        company=ctx.company,
        entity_type=entity_type,
        qbo_id=_allocate_id(ctx),
        sync_token=0,
        data=data,
        created=now,
        updated=now,
    )
    denormalize(entity)
    entity.save()
    rules.after_write(ctx, entity, None)
    ctx.announce(entity, "created")
    return entity


def entity_update(ctx, entity_type, payload):
    _check_fields(entity_type, payload)
    entity = get_entity(ctx.company, entity_type, payload.get("Id"), for_write=True)
    if "SyncToken" not in payload or payload.get("SyncToken") in ("", None):
        raise faults.required_missing("SyncToken")
    if str(payload.get("SyncToken")).strip() != str(entity.sync_token):
        raise faults.stale_object()
    rules = _rules(entity_type)
    sparse = payload.get("sparse") in (True, "true", "True")
    incoming = {k: v for k, v in clean(payload).items() if k not in READ_ONLY}
    previous = dict(entity.data)
    if sparse:
        data = dict(previous)
        data.update(incoming)
    else:
        data = {k: v for k, v in previous.items() if k in rules.server_fields}
        data.update(incoming)
        if entity_type in NAME_LIST:
            data.setdefault("Active", True)
    rules.prepare(ctx, entity_type, data, entity)
    entity.data = data
    entity.sync_token += 1
    entity.updated = timezone.now()
    denormalize(entity)
    entity.save()
    rules.after_write(ctx, entity, previous)
    ctx.announce(entity, "updated")
    return entity


def _check_version(payload, entity):
    if str(payload.get("SyncToken", "")).strip() != str(entity.sync_token):
        raise faults.stale_object()


def entity_delete(ctx, entity_type, payload):
    if entity_type in NAME_LIST:
        raise faults.QboFault(
            500,
            "Unsupported Operation",
            f"Operation Delete is not supported for {entity_type}: make it inactive instead.",
        )
    entity = get_entity(ctx.company, entity_type, payload.get("Id"), for_write=True)
    _check_version(payload, entity)
    previous = dict(entity.data)
    entity.deleted = True
    entity.sync_token += 1
    entity.updated = timezone.now()
    entity.save(update_fields=["deleted", "sync_token", "updated"])
    _rules(entity_type).after_write(ctx, entity, previous)
    ctx.announce(entity, "deleted")
    return {"domain": "QBO", "status": "Deleted", "Id": str(entity.qbo_id)}


def entity_void(ctx, entity_type, payload):
    rules = _rules(entity_type)
    if not rules.voidable:
        raise faults.QboFault(
            500, "Unsupported Operation", f"Operation Void is not supported for {entity_type}."
        )
    entity = get_entity(ctx.company, entity_type, payload.get("Id"), for_write=True)
    _check_version(payload, entity)
    previous = dict(entity.data)
    data = dict(previous)
    rules.void(ctx, data)
    entity.data = data
    entity.sync_token += 1
    entity.updated = timezone.now()
    denormalize(entity)
    entity.save()
    rules.after_write(ctx, entity, previous)
    ctx.announce(entity, "voided")
    return entity


def touch(ctx, entity, data):
    """Server-side change of another object (e.g. an invoice Balance after a payment)."""
    entity.data = data
    entity.sync_token += 1
    entity.updated = timezone.now()
    denormalize(entity)
    entity.save()
