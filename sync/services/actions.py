"""What a finance clerk can do from the Problem Sync page: re-sync, clear, undo, mark paid, bulk.

Each service locks the record and moves it through finance.syncstate.transition(), which
checks the one state machine, writes the audit row (ManualAction) and announces a record
leaving or entering PROBLEM (the trend chart's ProblemEvent).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from finance.audit import manual_action_record, sync_snapshot
from finance.models import Company, Invoice, ManualAction, SyncedRecord, Vendor
from finance.payables import vendor_update
from finance.registry import model_for, record_type
from finance.selectors import synced_invoices
from finance.services import finance_settings_get
from finance.syncstate import FRESH_START, InvalidTransition, SyncStatus, transition
from sync.mappers import MAPPERS, Need, suffixed
from sync.models import BulkJob
from sync.problems import choices_of
from sync.services import enqueue, usage
from sync.services.client import NeedsReconnect, QboError, QuickBooksSession
from sync.services.drift import (
    deleted,
    differences,
    drift_since_last_write,
    keep_as_last_write,
    last_write,
    merged,
)
from sync.services.engine import SyncContext
from sync.services.pull_apply import flag, flag_inactive

if TYPE_CHECKING:
    from django.contrib.auth.models import User

RecordT = TypeVar("RecordT", bound=SyncedRecord)
PAID = Invoice.Status.PAID  # "paid": Bill.Status.PAID is the same value
logger = logging.getLogger(__name__)

BULK_LIMIT = 20_000  # one job; a larger backlog is better left to the sweep
BULK_ACTIONS = {
    "resync": "Re-sync",
    "clear": "Clear without sync",
    "undo-clear": "Undo clear",
    "resend": "Re-send with the new descriptions",
}


class ActionRefused(InvalidTransition):
    """The record is in a state where this action makes no sense; the message says why."""


def _lock(record: RecordT) -> RecordT:
    return type(record).objects.select_for_update().get(pk=record.pk)


def _move(
    record: RecordT,
    target: str,
    what: str,
    *,
    how: str,
    user: User | None,
    audit: str,
    **fields: Any,
) -> RecordT:
    """The person's move through the one state machine, refused in words they understand."""
    if record.sync_status == SyncStatus.IN_FLIGHT:
        raise ActionRefused(
            f"{record} is being sent to QuickBooks right now; try again in a minute."
        )
    try:
        return transition(record, target, how=how, user=user, audit=audit, **fields)
    except InvalidTransition:
        raise ActionRefused(
            f"Cannot {what} {record}: it is {record.get_sync_status_display().lower()}."
        ) from None


@transaction.atomic
def record_resync(*, record: RecordT, user: User | None) -> RecordT:
    """Send the record again: back to PENDING with a fresh attempt budget."""
    record = _move(
        _lock(record),
        SyncStatus.PENDING,
        "re-sync",
        how="resync",
        user=user,
        audit=ManualAction.Kind.RESYNC,
        # A new version gives the write a new requestid: Intuit must not replay the failure.
        version=F("version") + 1,
        **FRESH_START,
    )
    enqueue.push_now(record.sync_type, record.pk)
    return record


@transaction.atomic
def record_clear(*, record: RecordT, user: User | None) -> RecordT:
    """Take the record off the problem list without sending it (the reason is kept for undo)."""
    return _move(
        _lock(record),
        SyncStatus.CLEARED,
        "clear",
        how="cleared",
        user=user,
        audit=ManualAction.Kind.CLEAR,
        next_retry_at=None,
    )


@transaction.atomic
def record_undo_clear(*, record: RecordT, user: User | None) -> RecordT:
    """Put a cleared record back on the problem list with the reason it had."""
    record = _lock(record)
    if record.sync_status != SyncStatus.CLEARED:
        raise ActionRefused(f"{record} is not cleared, so there is nothing to undo.")
    return _move(
        record,
        SyncStatus.PROBLEM,
        "undo the clear of",
        how="undo_clear",
        user=user,
        audit=ManualAction.Kind.UNDO_CLEAR,
        problem_since=record.problem_since or timezone.now(),
    )


@transaction.atomic
def record_mark_paid_outside(*, record: RecordT, user: User | None) -> RecordT:
    """The payment was made directly in QuickBooks (an invoice's, or a bill's): paid here,
    never sent. Only types the registry calls payable outside have a paid status."""
    if not record_type(record.sync_type).payable_outside:
        raise ActionRefused(f"{record} has no paid status to mark.")
    return _move(
        _lock(record),
        SyncStatus.PAID_OUTSIDE,
        "mark paid",
        how="mark_paid",
        user=user,
        audit=ManualAction.Kind.MARK_PAID,
        status=PAID,
        next_retry_at=None,
    )


@transaction.atomic
def record_resend(*, record: RecordT, user: User | None) -> RecordT:
    """A synced record sent again as the TMS has it now (new descriptions): a new version."""
    record = _move(
        _lock(record),
        SyncStatus.PENDING,
        "re-send",
        how="resend",
        user=user,
        audit=ManualAction.Kind.RESYNC,
        note="Re-sent with the new description mapping.",
        version=F("version") + 1,
        attempts=0,
        next_retry_at=None,
    )
    enqueue.push_now(record.sync_type, record.pk)
    return record


def invoices_to_resend(*, company: Company) -> list[int]:
    return list(
        synced_invoices(company=company).order_by("pk").values_list("pk", flat=True)[:BULK_LIMIT]
    )


@transaction.atomic
def record_sync_now(*, record: RecordT, user: User | None) -> RecordT:
    """A skipped record sent on request (the engine still skips a draft, and says so)."""
    record = _lock(record)
    fs = finance_settings_get(company=Company.objects.get(pk=record.company_id))
    rt = record_type(record.sync_type)
    if not rt.enabled(fs):
        raise ActionRefused(
            f"{rt.tab_title} are switched off in Finance settings: switch them on to send {record}."
        )
    record = _move(
        record,
        SyncStatus.PENDING,
        "send",
        how="sync_now",
        user=user,
        audit=ManualAction.Kind.RESYNC,
        note="Sent on request from Not syncing.",
        **FRESH_START,
    )
    enqueue.push_now(record.sync_type, record.pk)
    return record


# --- QuickBooks changed it: a person chooses -----------------------------------------------

# Problems where QuickBooks holds a version a push would write over (sync/services/drift.py).
CHANGED_IN_QUICKBOOKS = frozenset({"changed_in_quickbooks", "voided_in_quickbooks"})
CHANGED_ONLY = frozenset({"changed_in_quickbooks"})


def _refuse_unless(record: SyncedRecord, reasons: frozenset[str], what: str) -> None:
    if record.sync_status != SyncStatus.PROBLEM or choices_of(record.problem_reason) not in reasons:
        raise ActionRefused(f"Cannot {what} {record}: QuickBooks shows no such change for it.")


@transaction.atomic
def record_overwrite_quickbooks(*, record: RecordT, user: User | None) -> RecordT:
    """The person saw what QuickBooks changed and chose the TMS version: send it over exactly
    that QuickBooks version (if QuickBooks changes again meanwhile, it stops and asks again)."""
    record = _lock(record)
    _refuse_unless(record, CHANGED_IN_QUICKBOOKS, "overwrite QuickBooks for")
    token = str((record.qb_drift or {}).get("token", ""))
    if not token:
        raise ActionRefused(f"{record}: QuickBooks' version is unknown; re-sync it first.")
    record = _move(
        record,
        SyncStatus.PENDING,
        "overwrite QuickBooks for",
        how="overwrite",
        user=user,
        audit=ManualAction.Kind.OVERWRITE,
        note=record.last_error_message,
        version=F("version") + 1,
        **FRESH_START,
        qb_overwrite_token=token,
    )
    enqueue.push_now(record.sync_type, record.pk)
    return record


@transaction.atomic
def record_accept_void(*, record: RecordT, user: User | None) -> RecordT:
    """Voided in QuickBooks, and rightly (an invoice, a bill): void it in the TMS too (refused, like any void, while
    QuickBooks payments are applied). The engine then finds QuickBooks already voided."""
    record = _lock(record)
    void = MAPPERS[record.sync_type].void_in_tms
    if void is None:
        raise ActionRefused(f"{record} has no void in the TMS.")
    _refuse_unless(record, frozenset({"voided_in_quickbooks"}), "void in the TMS")
    before = sync_snapshot(record) | {"status": getattr(record, "status", "")}
    try:
        void(record, user=user)
    except ValidationError as exc:
        raise ActionRefused(" ".join(exc.messages)) from None
    record.refresh_from_db()
    manual_action_record(
        kind=ManualAction.Kind.ACCEPT_QUICKBOOKS,
        record=record,
        user=user,
        before=before,
        note="Voided in the TMS as it was in QuickBooks.",
    )
    return record


def record_accept_quickbooks(*, record: RecordT, user: User | None) -> RecordT:
    """QuickBooks is right: the TMS record takes what QuickBooks changed since our last write
    (through the finance services and their guards), keeping the TMS's own edits since then.
    When the two now agree nothing is sent; otherwise the TMS's edits go, over exactly that
    QuickBooks version. QuickBooks' copy is read once; if it changed again since the person
    looked, the row shows the new change and nothing moves."""
    _refuse_unless(record, CHANGED_ONLY, "take QuickBooks' version of")
    mapper = MAPPERS[record.sync_type]
    if mapper.adopt is None:
        raise ActionRefused(f"{record} cannot take QuickBooks' version here.")
    ctx = SyncContext.for_company(record.company_id)
    try:
        with usage.purpose("check"):
            current = ctx.session.read(mapper.entity, record.qb_id)
    except (QboError, NeedsReconnect) as exc:
        raise ActionRefused(f"QuickBooks could not be read, nothing changed: {exc}") from None
    token = str(current.get("SyncToken", ""))
    if token != str((record.qb_drift or {}).get("token", "")):
        _show_newer_drift(record, current)
        raise ActionRefused(
            f"QuickBooks changed {record} again since it was shown (version {token}). Look at "
            "its details again, then choose."
        )
    with transaction.atomic():
        record = _lock(record)
        _refuse_unless(record, CHANGED_ONLY, "take QuickBooks' version of")
        taken = "; ".join(
            f"{c['field']}: {c['theirs']}" for c in (record.qb_drift or {}).get("changes", [])
        )
        last = last_write(sync_type=record.sync_type, record_id=record.pk)
        ours = mapper.body(mapper.load([record.pk]).get(), ctx)
        wanted = merged(last.payload, ours, current) if last and last.payload else current
        try:
            mapper.adopt(record, wanted, user=user)
        except ValidationError as exc:
            raise ActionRefused(" ".join(exc.messages)) from None
        record = _lock(record)  # the finance change bumped its version (and queued it)
        adopted = mapper.load([record.pk]).get()
        still_ours = differences(mapper.body(adopted, ctx), current)
        fresh = {**FRESH_START, "qb_drift": {}, "next_retry_at": None}
        if still_ours:  # the TMS's own edits since our last write: they go, over that version
            record = _move(
                record,
                SyncStatus.PENDING,
                "take QuickBooks' version of",
                how="accept_quickbooks",
                user=user,
                audit=ManualAction.Kind.ACCEPT_QUICKBOOKS,
                note=f"Took QuickBooks' version {token} ({taken}); the TMS's own edits are "
                f"sent: {'; '.join(c.field for c in still_ours)}"[:500],
                **fresh,
                qb_overwrite_token=token,
            )
            enqueue.push_now(record.sync_type, record.pk)
            return record
        keep_as_last_write(
            record=record,
            current=current,
            ours=mapper.body(adopted, ctx),
            message=f"QuickBooks' version {token} taken into the TMS; nothing sent.",
        )
        record = _move(
            record,
            SyncStatus.SYNCED,
            "take QuickBooks' version of",
            how="accept_quickbooks",
            user=user,
            audit=ManualAction.Kind.ACCEPT_QUICKBOOKS,
            note=f"Took QuickBooks' version {token}: {taken}"[:500],
            **fresh,
            qb_sync_token=token,
            qb_overwrite_token="",
            synced_version=record.version,
            last_synced_at=timezone.now(),
        )
        mapper.after_settle(adopted, current)  # an invoice learns QuickBooks' balance too
    return record


REFERENCE_PROBLEMS = frozenset({"inactive_reference", "invalid_reference"})


def record_check_references(*, record: RecordT, user: User | None) -> RecordT:
    """QuickBooks refused it because something it uses is inactive or gone (610, 2500): read
    each customer, item or invoice it names (a few reads, on request); those QuickBooks made
    inactive or deleted become problems of their own, fixed on their tabs, and this record waits
    on the first of them and goes by itself once it is fixed. Nothing wrong found: re-sync it."""
    _refuse_unless(record, REFERENCE_PROBLEMS, "check what QuickBooks refuses in")
    mapper = MAPPERS[record.sync_type]
    session = SyncContext.for_company(record.company_id).session
    broken = []
    for need in mapper.references(mapper.load([record.pk]).get()):
        if need.record.qb_id and _gone_or_inactive(session, need):
            broken.append(need)
    if not broken:
        return record_resync(record=record, user=user)
    with transaction.atomic():
        record = _lock(record)
        _refuse_unless(record, REFERENCE_PROBLEMS, "check what QuickBooks refuses in")
        names = ", ".join(need.label for need in broken)
        type(record).objects.filter(pk=record.pk).update(
            problem_reason=broken[0].reason,
            last_error_message=f"{names}: inactive or deleted in QuickBooks. Fix it on its own "
            "tab (reactivate, or send again); this record follows by itself.",
        )
        record.refresh_from_db()
    return record


def _gone_or_inactive(session: QuickBooksSession, need: Need) -> bool:
    """Read it; a deleted or inactive one is flagged as a problem of its own."""
    dependency = need.record
    try:
        with usage.purpose("check"):
            obj = session.read(MAPPERS[dependency.sync_type].entity, dependency.qb_id)
    except NeedsReconnect:
        raise ActionRefused("QuickBooks needs reconnecting: reconnect, then check again.") from None
    except QboError as exc:
        if exc.kind not in {"not_found", "invalid_reference"}:
            raise ActionRefused(f"QuickBooks could not be read, nothing changed: {exc}") from None
        obj = {"status": "Deleted"}
    if deleted(obj):
        gone = f"{need.label} is not in QuickBooks any more (QuickBooks ID {dependency.qb_id})."
        flag(dependency, "deleted_in_quickbooks", gone)
        return True
    return flag_inactive(dependency, obj) or obj.get("Active") is False


def _show_newer_drift(record: SyncedRecord, current: dict[str, Any]) -> None:
    drift = drift_since_last_write(sync_type=record.sync_type, record_id=record.pk, current=current)
    type(record).objects.filter(pk=record.pk, sync_status=SyncStatus.PROBLEM).update(
        qb_drift=drift.as_json(), last_error_message=drift.summary()
    )


@transaction.atomic
def record_send_again_as_new(*, record: RecordT, user: User | None) -> RecordT:
    """Deleted in QuickBooks, but it belongs there: forget the QuickBooks ID and create it again
    (a new version: a new requestid, so Intuit cannot replay the old create)."""
    record = _lock(record)
    _refuse_unless(record, frozenset({"deleted_in_quickbooks"}), "send again")
    record = _move(
        record,
        SyncStatus.PENDING,
        "send again",
        how="resend_new",
        user=user,
        audit=ManualAction.Kind.QB_ID_REMOVE,
        note=f"Deleted in QuickBooks (was QuickBooks ID {record.qb_id}); sent again as new.",
        version=F("version") + 1,
        **FRESH_START,
        qb_id="",
        qb_sync_token="",
        synced_version=0,
        qb_drift={},
        create_uncertain=False,
    )
    enqueue.push_now(record.sync_type, record.pk)
    return record


# --- bulk -------------------------------------------------------------------------------


@transaction.atomic
def bulk_start(
    *, company: Company, action: str, sync_type: str, ids: list[int], user: User | None
) -> BulkJob:
    if action not in BULK_ACTIONS:
        raise ValueError(f"unknown bulk action {action!r}")
    model = model_for(sync_type)  # refuses unknown types early
    wanted = list(dict.fromkeys(int(i) for i in ids))
    # A job touches its own company's records only, whoever asked for which ids.
    ours = set(model.objects.filter(company=company, pk__in=wanted).values_list("pk", flat=True))
    ids = [pk for pk in wanted if pk in ours]
    job = BulkJob.objects.create(
        company=company,
        action=action,
        record_type=sync_type,
        record_ids=ids,
        total=len(ids),
        user=user,
    )
    enqueue.bulk_job(job.pk)
    return job


def bulk_run(*, job_id: int) -> BulkJob:
    """Process a job one record at a time, saving progress after each so the bar moves.
    One bad record never stops the rest; its error is kept on the job."""
    job = BulkJob.objects.select_related("user").get(pk=job_id)
    if job.finished_at:
        return job
    model = model_for(job.record_type)
    service = {
        "resync": record_resync,
        "clear": record_clear,
        "undo-clear": record_undo_clear,
        "resend": record_resend,
    }[job.action]
    for pk in job.record_ids:
        try:
            service(record=model.objects.get(pk=pk, company_id=job.company_id), user=job.user)
        except Exception as exc:  # noqa: BLE001 - reported on the job, the batch goes on
            message = str(exc) if isinstance(exc, ActionRefused) else f"{pk}: {exc}"
            if isinstance(exc, ObjectDoesNotExist):  # the get above: this type's DoesNotExist
                message = f"{job.record_type} {pk} no longer exists."
            BulkJob.objects.filter(pk=job.pk).update(failed=F("failed") + 1)
            job.errors.append({"id": pk, "error": message})
            BulkJob.objects.filter(pk=job.pk).update(errors=job.errors)
        else:
            BulkJob.objects.filter(pk=job.pk).update(done=F("done") + 1)
    BulkJob.objects.filter(pk=job.pk).update(finished_at=timezone.now())
    job.refresh_from_db()
    return job


@transaction.atomic
def vendor_send_with_suffix(*, record: RecordT, user: User | None) -> RecordT:
    """A customer or employee in QuickBooks has the vendor's name: send the vendor under its
    name plus Finance settings' suffix ("Acme Trucking (Vendor)")."""
    record = _lock(record)
    if not isinstance(record, Vendor):
        raise ActionRefused("Only vendors are sent with a suffix.")
    _refuse_unless(record, frozenset({"vendor_name_taken"}), "send with a suffix")
    before = sync_snapshot(record)
    name = suffixed(record, finance_settings_get(company=record.company).vendor_name_suffix)
    vendor_update(vendor=record, qb_display_name=name)
    record.refresh_from_db()
    manual_action_record(
        kind=ManualAction.Kind.RESYNC,
        record=record,
        user=user,
        before=before,
        note=f"Sent to QuickBooks as {name!r} (the name is taken there).",
    )
    enqueue.push_now(record.sync_type, record.pk)
    return record
