"""Every hand-off to a Celery worker, in one place: after commit, and never fatal.

A task that cannot be enqueued (broker down) loses nothing: the records it was for stay owed
in the database and the beat sweep dispatches them; stored webhook events are processed by
the beat job; a bulk job can be started again. So enqueueing logs and moves on — except in
DEBUG for a push on change, where a developer wants to see the broker is down.

There are no countdown tasks: later retries come back through the beat sweep (it claims
RETRY_WAIT records once next_retry_at passes). Countdown tasks would sit in worker memory and,
with acks_late and a small prefetch, starve the consumer (measured, sync/tasks.py).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from sync.services.locks import get_redis

logger = logging.getLogger(__name__)


def _send(task_name: str, *args: object, what: str) -> bool:
    from sync import tasks

    try:
        getattr(tasks, task_name).delay(*args)
    except Exception:  # noqa: BLE001 - see the module docstring
        logger.warning("could not enqueue %s; it is picked up later", what)
        return False
    return True


def after_commit(task_name: str, *args: object, what: str) -> None:
    """Enqueue once the current transaction commits (at once when none is open): a worker
    must never look for a row that is not committed yet."""
    transaction.on_commit(lambda: _send(task_name, *args, what=what))


def reconciliation(run_id: int) -> None:
    """A claimed nightly run; one left unsent is claimed again the next night."""
    after_commit("reconcile_nightly", run_id, what=f"reconciliation run {run_id}")


def push_soon(sync_type: str, pk: int, delay: float) -> None:
    """A record the engine just gave back: due now → straight to the queue; due later → the
    beat sweep brings it back when next_retry_at passes."""
    if delay <= 0:
        after_commit("push_record", sync_type, pk, "retry", what=f"{sync_type} {pk}")


def push_now(sync_type: str, pk: int) -> None:
    """A person asked for it (re-sync)."""
    after_commit("push_record", sync_type, pk, what=f"{sync_type} {pk}")


def push_dispatched(sync_type: str, pks: list[int]) -> None:
    """The sweep's batches (one record → a single push, more → a batch push)."""
    if len(pks) == 1:
        _send("push_record", sync_type, pks[0], what=f"{sync_type} {pks[0]}")
    else:
        _send("push_batch", sync_type, pks, what=f"{len(pks)} {sync_type} records")


def sweep_soon() -> None:
    """Dependencies just landed: records waiting for them can go now, not next minute (at most
    one such extra sweep every 2 s across workers)."""
    client = get_redis()
    if client is not None and not client.set("portpro-qb:sweep-soon", "1", nx=True, ex=2):
        return
    _send("sweep_due", what="an extra sweep")


def sweep_now() -> None:
    _send("sweep_due", what="a sweep")


def bulk_job(job_id: int) -> None:
    """A person is watching its progress bar: without a broker it runs here rather than never."""

    def send() -> None:
        if not _send("run_bulk_job", job_id, what=f"bulk job {job_id}"):
            from sync.services.actions import bulk_run

            bulk_run(job_id=job_id)

    transaction.on_commit(send)


def on_records_changed(
    sender: object,
    *,
    records: list[tuple[str, int]],
    company_ids: list[int] | None = None,
    **kwargs: Any,
) -> None:
    """Push on change: finance announced, after commit, the records it marked as owed."""
    from sync.models import QuickBooksConnection

    # Their tenant not connected: nothing to push now; the sweep picks them up after connecting.
    connected = QuickBooksConnection.objects.filter(status=QuickBooksConnection.Status.CONNECTED)
    if company_ids is not None:
        connected = connected.filter(company_id__in=company_ids)
    if not connected.exists():
        return
    for sync_type, pk in records:
        if not _send("push_record", sync_type, pk, "change", what=f"{sync_type} {pk}"):
            if settings.DEBUG:
                raise RuntimeError(f"could not enqueue {sync_type} {pk}: is the broker up?")


def on_sweep_wanted(sender: object, **kwargs: Any) -> None:
    """Finance put many records back in the queue at once (a type switched on again)."""
    sweep_now()
