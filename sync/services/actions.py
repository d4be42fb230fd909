"""What a finance clerk can do from the Problem Sync page: re-sync, clear, undo, mark paid, bulk.

Each service locks the record, checks the one state machine, writes the audit row
(ManualAction) and, when a record leaves PROBLEM, a ProblemEvent for the trend chart.
"""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from finance.audit import manual_action_record, sync_snapshot
from finance.models import Invoice, ManualAction
from finance.registry import model_for
from finance.syncstate import InvalidTransition, SyncStatus, check_transition
from sync.models import BulkJob, ProblemEvent

logger = logging.getLogger(__name__)

BULK_ACTIONS = {"resync": "Re-sync", "clear": "Clear without sync"}


class ActionRefused(InvalidTransition):
    """The record is in a state where this action makes no sense; the message says why."""


def _lock(record):
    return type(record).objects.select_for_update().get(pk=record.pk)


def _move(record, target: str, what: str) -> None:
    if record.sync_status == SyncStatus.IN_FLIGHT:
        raise ActionRefused(
            f"{record} is being sent to QuickBooks right now; try again in a minute."
        )
    try:
        check_transition(record.sync_status, target)
    except InvalidTransition:
        raise ActionRefused(
            f"Cannot {what} {record}: it is {record.get_sync_status_display().lower()}."
        ) from None


def _resolved(record, user, how: str, reason: str) -> None:
    ProblemEvent.objects.create(
        record_type=record.sync_type,
        record_id=record.pk,
        kind=ProblemEvent.Kind.RESOLVED,
        reason=reason,
        how=how,
        user=user,
    )


def _enqueue_push(sync_type: str, pk: int) -> None:
    try:
        from sync.tasks import push_record

        push_record.delay(sync_type, pk)
    except Exception:  # noqa: BLE001 - the beat sweep pushes PENDING records anyway
        logger.warning("could not enqueue %s %s; the sweep will push it", sync_type, pk)


@transaction.atomic
def record_resync(*, record, user):
    """Send the record again: back to PENDING with a fresh attempt budget."""
    record = _lock(record)
    _move(record, SyncStatus.PENDING, "re-sync")
    before = sync_snapshot(record)
    was_problem = record.sync_status == SyncStatus.PROBLEM
    record.sync_status = SyncStatus.PENDING
    # A new version gives the write a new requestid: Intuit must not replay the failed answer.
    record.version += 1
    record.attempts = 0
    record.next_retry_at = None
    record.problem_reason = ""
    record.problem_since = None
    record.save(
        update_fields=[
            "sync_status",
            "version",
            "attempts",
            "next_retry_at",
            "problem_reason",
            "problem_since",
            "updated_at",
        ]
    )
    manual_action_record(kind=ManualAction.Kind.RESYNC, record=record, user=user, before=before)
    if was_problem:
        _resolved(record, user, "resync", before["problem_reason"])
    sync_type, pk = record.sync_type, record.pk
    transaction.on_commit(lambda: _enqueue_push(sync_type, pk))
    return record


@transaction.atomic
def record_clear(*, record, user):
    """Take the record off the problem list without sending it (the reason is kept for undo)."""
    record = _lock(record)
    _move(record, SyncStatus.CLEARED, "clear")
    before = sync_snapshot(record)
    record.sync_status = SyncStatus.CLEARED
    record.next_retry_at = None
    record.save(update_fields=["sync_status", "next_retry_at", "updated_at"])
    manual_action_record(kind=ManualAction.Kind.CLEAR, record=record, user=user, before=before)
    _resolved(record, user, "cleared", record.problem_reason)
    return record


@transaction.atomic
def record_undo_clear(*, record, user):
    """Put a cleared record back on the problem list with the reason it had."""
    record = _lock(record)
    if record.sync_status != SyncStatus.CLEARED:
        raise ActionRefused(f"{record} is not cleared, so there is nothing to undo.")
    _move(record, SyncStatus.PROBLEM, "undo the clear of")
    before = sync_snapshot(record)
    record.sync_status = SyncStatus.PROBLEM
    record.problem_since = record.problem_since or timezone.now()
    record.save(update_fields=["sync_status", "problem_since", "updated_at"])
    manual_action_record(kind=ManualAction.Kind.UNDO_CLEAR, record=record, user=user, before=before)
    ProblemEvent.objects.create(
        record_type=record.sync_type,
        record_id=record.pk,
        kind=ProblemEvent.Kind.OPENED,
        reason=record.problem_reason,
        how="undo_clear",
        user=user,
    )
    return record


@transaction.atomic
def invoice_mark_paid_outside(*, invoice: Invoice, user) -> Invoice:
    """The payment was applied directly in QuickBooks: paid here, never sent."""
    invoice = _lock(invoice)
    _move(invoice, SyncStatus.PAID_OUTSIDE, "mark paid")
    before = sync_snapshot(invoice) | {"status": invoice.status}
    invoice.sync_status = SyncStatus.PAID_OUTSIDE
    invoice.status = Invoice.Status.PAID
    invoice.next_retry_at = None
    invoice.save(update_fields=["sync_status", "status", "next_retry_at", "updated_at"])
    manual_action_record(kind=ManualAction.Kind.MARK_PAID, record=invoice, user=user, before=before)
    _resolved(invoice, user, "mark_paid", invoice.problem_reason)
    return invoice


# --- bulk -------------------------------------------------------------------------------


@transaction.atomic
def bulk_start(*, action: str, sync_type: str, ids: list[int], user) -> BulkJob:
    if action not in BULK_ACTIONS:
        raise ValueError(f"unknown bulk action {action!r}")
    model_for(sync_type)  # refuses unknown types early
    ids = list(dict.fromkeys(int(i) for i in ids))
    return BulkJob.objects.create(
        action=action, record_type=sync_type, record_ids=ids, total=len(ids), user=user
    )


def bulk_run(*, job_id: int) -> BulkJob:
    """Process a job one record at a time, saving progress after each so the bar moves.
    One bad record never stops the rest; its error is kept on the job."""
    job = BulkJob.objects.select_related("user").get(pk=job_id)
    if job.finished_at:
        return job
    model = model_for(job.record_type)
    service = {"resync": record_resync, "clear": record_clear}[job.action]
    for pk in job.record_ids:
        try:
            service(record=model.objects.get(pk=pk), user=job.user)
        except Exception as exc:  # noqa: BLE001 - reported on the job, the batch goes on
            message = str(exc) if isinstance(exc, ActionRefused) else f"{pk}: {exc}"
            if isinstance(exc, model.DoesNotExist):
                message = f"{job.record_type} {pk} no longer exists."
            BulkJob.objects.filter(pk=job.pk).update(failed=F("failed") + 1)
            job.errors.append({"id": pk, "error": message})
            BulkJob.objects.filter(pk=job.pk).update(errors=job.errors)
        else:
            BulkJob.objects.filter(pk=job.pk).update(done=F("done") + 1)
    BulkJob.objects.filter(pk=job.pk).update(finished_at=timezone.now())
    job.refresh_from_db()
    return job
