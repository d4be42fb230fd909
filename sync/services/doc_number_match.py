"""An invoice or credit memo QuickBooks refused because its number is taken (6140): finance sees
the QuickBooks documents with that number beside ours and links ours to one of them (when it is
the same customer's), or sends ours under another number. No admin, no QuickBooks ID typed.

Linking never writes over QuickBooks silently: when the QuickBooks document differs from ours
in fields we send, the record becomes "changed in QuickBooks" with both versions, and the person
chooses there (use QuickBooks' version, or overwrite it), as for any change made in QuickBooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from finance.audit import manual_action_record, sync_snapshot
from finance.models import ManualAction, SyncedRecord
from finance.qb_ids import refuse_taken_qb_id
from finance.registry import record_type_of
from finance.syncstate import FRESH_START, SyncStatus, transition
from sync.mappers import MAPPERS
from sync.services.client import QboError, QboObject, quote
from sync.services.drift import Drift, differences, keep_as_last_write, voided
from sync.services.engine import SyncContext
from sync.services.waiting import requeue_waiting_on

if TYPE_CHECKING:
    from django.contrib.auth.models import User

DOC_TAKEN = frozenset({"duplicate_doc_number"})


@dataclass(frozen=True)
class Holder:
    """A QuickBooks document using the number."""

    qb_id: str
    doc_number: str
    customer: str
    same_customer: bool
    date: str
    total: Decimal
    balance: Decimal | None
    voided: bool
    linked_to: str  # the TMS record already linked to it ("" = none)


def number_of(record: SyncedRecord) -> str:
    return str(getattr(record, MAPPERS[record.sync_type].doc_number_field))


def _party_qb_id(record: SyncedRecord) -> str:
    party = record_type_of(record).party(record)
    return party.qb_id if party is not None else ""


def _holder(record: SyncedRecord, obj: QboObject, linked: dict[str, str]) -> Holder:
    customer = obj.get("CustomerRef") or {}
    balance = obj.get("Balance")
    return Holder(
        qb_id=str(obj["Id"]),
        doc_number=str(obj.get("DocNumber", "")),
        customer=str(customer.get("name") or customer.get("value") or ""),
        same_customer=str(customer.get("value") or "") == _party_qb_id(record),
        date=str(obj.get("TxnDate", "")),
        total=Decimal(str(obj.get("TotalAmt") or 0)),
        balance=Decimal(str(balance)) if balance not in (None, "") else None,
        voided=voided(obj),
        linked_to=linked.get(str(obj["Id"]), ""),
    )


def holders_of(*, record: SyncedRecord) -> list[Holder]:
    """The QuickBooks documents of this type with our number (one query, on request)."""
    mapper = MAPPERS[record.sync_type]
    session = SyncContext.for_company(record.company_id).session
    rows = session.query(
        f"SELECT * FROM {mapper.entity} WHERE DocNumber = {quote(number_of(record))}"
    )
    ids = [str(row["Id"]) for row in rows]
    linked = dict(
        mapper.model.objects.filter(company_id=record.company_id, qb_id__in=ids)
        .exclude(pk=record.pk)
        .values_list("qb_id", mapper.doc_number_field)
    )
    return [_holder(record, row, linked) for row in rows]


def _refuse_unless_taken(record: SyncedRecord) -> None:
    if record.sync_status != SyncStatus.PROBLEM or record.problem_reason not in DOC_TAKEN:
        raise ValidationError(f"{record} has no document number conflict to resolve.")


def doc_link_existing(*, record: SyncedRecord, qb_id: str, user: User | None) -> SyncedRecord:
    """Ours is that QuickBooks document. Same in the fields we send: synced, nothing sent.
    Different: linked, and shown as changed in QuickBooks for the person to choose."""
    mapper = MAPPERS[record.sync_type]
    ctx = SyncContext.for_company(record.company_id)
    try:
        obj = ctx.session.read(mapper.entity, qb_id)
    except QboError as exc:
        raise ValidationError(
            f"QuickBooks {mapper.entity} {qb_id} could not be read: {exc}"
        ) from None
    theirs = _holder(record, obj, {})
    if theirs.doc_number != number_of(record):
        raise ValidationError(
            f"QuickBooks {mapper.entity} {qb_id} has number {theirs.doc_number}, not ours."
        )
    if not theirs.same_customer:
        raise ValidationError(
            f"QuickBooks {mapper.entity} {qb_id} is for {theirs.customer}, another customer: it is "
            f"not {record}. Send ours under another number."
        )
    with transaction.atomic():
        record = type(record).objects.select_for_update().get(pk=record.pk)
        _refuse_unless_taken(record)
        refuse_taken_qb_id(record=record, qb_id=theirs.qb_id)
        token = str(obj.get("SyncToken", ""))
        ours = mapper.body(mapper.load([record.pk]).get(), ctx)
        changes = differences(ours, obj)
        if changes or theirs.voided:
            drift = Drift(token=token, voided=theirs.voided, changes=changes)
            before = {"qb_id": record.qb_id, "problem_reason": record.problem_reason}
            type(record).objects.filter(pk=record.pk).update(
                qb_id=theirs.qb_id,
                qb_sync_token=token,
                problem_reason=drift.reason,
                qb_drift=drift.as_json(),
                last_error_code="",
                last_error_message=drift.summary(),
            )
            record.refresh_from_db()
            manual_action_record(
                kind=ManualAction.Kind.LINK,
                record=record,
                user=user,
                before=before,
                note=f"Linked to QuickBooks {mapper.entity} {qb_id}, which differs from ours: "
                "choose which version stays.",
            )
            return record
        keep_as_last_write(
            record=record,
            current=obj,
            ours=ours,
            message=f"Linked to QuickBooks {mapper.entity} {qb_id}, the same as ours; nothing sent.",
        )
        record = transition(
            record,
            SyncStatus.SYNCED,
            how="linked",
            user=user,
            audit=ManualAction.Kind.LINK,
            note=f"Linked to QuickBooks {mapper.entity} {qb_id} (the same document).",
            **FRESH_START,
            qb_id=theirs.qb_id,
            qb_sync_token=token,
            qb_drift={},
            synced_version=record.version,
            last_synced_at=timezone.now(),
        )
        requeue_waiting_on(record)  # payments waiting on this invoice go now
        mapper.after_settle(mapper.load([record.pk]).get(), obj)
    return record


def doc_send_as(*, record: SyncedRecord, doc_number: str, user: User | None) -> SyncedRecord:
    """Send ours under another number (checked free in the TMS and in QuickBooks)."""
    mapper = MAPPERS[record.sync_type]
    number = doc_number.strip()
    if not number:
        raise ValidationError("Give it a number.")
    if number == number_of(record):
        raise ValidationError(f"QuickBooks already uses {number}: choose another number.")
    _refuse_unless_taken(record)
    session = SyncContext.for_company(record.company_id).session
    if session.query(f"SELECT Id FROM {mapper.entity} WHERE DocNumber = {quote(number)}"):
        raise ValidationError(f"QuickBooks already uses {number} too: choose another number.")
    old, before = number_of(record), sync_snapshot(record)
    record = mapper.renumber(record, number)
    manual_action_record(
        kind=ManualAction.Kind.LINK,
        record=record,
        user=user,
        before=before,
        note=f"Renumbered {old} → {number} (QuickBooks already used {old}); sent again.",
    )
    return record


def suggested_number(record: SyncedRecord) -> str:
    """Ours with the first free suffix (-2, -3…), within the 21 characters QuickBooks allows."""
    mapper = MAPPERS[record.sync_type]
    taken = set(
        mapper.model.objects.filter(company_id=record.company_id).values_list(
            mapper.doc_number_field, flat=True
        )
    )
    base = number_of(record)
    for n in range(2, 100):
        suffix = f"-{n}"
        candidate = base[: 21 - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    return base
