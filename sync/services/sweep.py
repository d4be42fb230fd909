"""The scheduled sweep: find what is due, hand it to workers in batches, in dependency order."""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from finance.models import Company
from finance.syncstate import CLAIMABLE, SyncStatus, move
from sync.mappers import MAPPERS, ORDERED, Mapper
from sync.services import enqueue, ratelimit
from sync.services.engine import (
    SyncContext,
    due_queryset,
    reclaim_expired_leases,
    skip_disabled,
)
from sync.services.locks import LockTimeout, single_flight

logger = logging.getLogger(__name__)


def dispatch_due(*, limit: int | None = None) -> dict[str, int]:
    """Enqueue due records (batches of ≤ 30), in dependency order, leaving out those whose
    dependencies are still on their way (each mapper's wait_for). Dispatched records are stamped
    with a deadline (next_retry_at = now + lease) so the next sweep does not send them twice;
    if the task is lost, they become due again when it passes."""
    reclaim_expired_leases()
    dispatched: dict[str, int] = {}
    try:
        with single_flight("sweep", timeout=120, wait=0.5):
            for company in Company.objects.all():
                ctx = SyncContext.for_company(company.pk)
                if not ctx.usable or ratelimit.paused_for(ctx.realm) > 0:
                    continue  # a 429 pauses this realm's writes; other realms go on
                budget = limit or settings.SYNC_SWEEP_LIMIT
                held_after = _changes_held_after(ctx)
                for mapper in ORDERED:
                    sent = _dispatch_type(ctx, company, mapper, budget, held_after)
                    if sent:
                        dispatched[mapper.sync_type] = sent
                        budget -= sent
                    if budget <= 0:
                        break
    except LockTimeout:
        return {"busy": 1}
    if dispatched:
        logger.info("sweep dispatched %s", dispatched)
    return dispatched


def next_scheduled_at(ctx: SyncContext) -> datetime | None:
    """When this company's new and changed records next go, with push on change off
    (None: they go at once, or at the next sweep)."""
    fs, connection = ctx.settings, ctx.connection
    if fs.push_on_change or connection is None or connection.last_scheduled_at is None:
        return None
    return connection.last_scheduled_at + timedelta(minutes=fs.schedule_minutes)


def _changes_held_after(ctx: SyncContext) -> datetime | None:
    """The beat ticks every SYNC_SWEEP_SECONDS for retries and the push-on-change catch-up.
    With push on change off, records changed after the company's last scheduled moment wait for
    the next one (returned); what was owed at that moment goes, its dependents after it."""
    if ctx.settings.push_on_change or ctx.connection is None:
        return None
    now = timezone.now()
    due_at = next_scheduled_at(ctx)
    if due_at is not None and due_at > now:
        return ctx.connection.last_scheduled_at
    type(ctx.connection).objects.filter(pk=ctx.connection.pk).update(last_scheduled_at=now)
    ctx.connection.last_scheduled_at = now
    return now


def _dispatch_type(
    ctx: SyncContext,
    company: Company,
    mapper: Mapper[Any],
    budget: int,
    held_after: datetime | None,
) -> int:
    due = due_queryset(mapper.model).filter(company=company)
    if held_after is not None:  # retries keep their own time; later changes wait
        due = due.exclude(
            sync_status=SyncStatus.PENDING, next_retry_at__isnull=True, updated_at__gt=held_after
        )
    if not ctx.type_allowed(mapper):
        skip_disabled(sync_type=mapper.sync_type, pks=list(due.values_list("pk", flat=True)))
        return 0
    waiting = mapper.wait_for()
    if waiting is not None:
        due = due.exclude(waiting)
    pks = list(due.order_by("pk").values_list("pk", flat=True).distinct()[:budget])
    if not pks:
        return 0
    deadline = timezone.now() + timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    move(
        due_queryset(mapper.model).filter(pk__in=pks),
        SyncStatus.PENDING,
        how="dispatched",
        sources=CLAIMABLE,
        next_retry_at=deadline,
    )
    size = settings.SYNC_BATCH_SIZE
    for start in range(0, len(pks), size):
        enqueue.push_dispatched(mapper.sync_type, pks[start : start + size])
    return len(pks)


def after_batch(*, sync_type: str, outcomes: dict[str, int]) -> None:
    """Records others wait for just landed: those can go now, not at the next sweep."""
    if MAPPERS[sync_type].unblocks_others and outcomes.get("synced"):
        enqueue.sweep_soon()
