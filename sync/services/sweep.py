"""The scheduled sweep: find what is due, hand it to workers in batches, in dependency order."""

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
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
    if the task is lost, they become due again when it passes.

    Fair shares: each tenant has at most SYNC_REALM_QUEUE_LIMIT records queued or in flight, and
    none while its QuickBooks budget is spent, so one tenant's backfill holds a few tasks of the
    shared queue, not thousands, and another tenant's new invoice waits behind those few. A
    tenant's finished batch refills its own share at once (refill), not at the next beat."""
    reclaim_expired_leases()
    dispatched: Counter[str] = Counter()
    try:
        with single_flight("sweep", timeout=120, wait=0.5):
            for company in tenants_to_visit():
                dispatched.update(_dispatch_company(company, limit or settings.SYNC_SWEEP_LIMIT))
    except LockTimeout:
        return {"busy": 1}
    if dispatched:
        logger.info("sweep dispatched %s", dict(dispatched))
    return dict(dispatched)


def tenants_to_visit() -> QuerySet[Company]:
    """Tenants with something due, and those syncing on a schedule (their clock ticks at every
    sweep, work or none). A tenant pushing on change with nothing due costs the sweep nothing:
    asked one by one (connection, settings, share, five types), idle tenants would be the
    sweep's whole cost at a thousand of them (docs/scaling.md)."""
    now = timezone.now()
    has_due = Q()
    for mapper in ORDERED:
        has_due |= Q(pk__in=due_queryset(mapper.model, now=now).values("company_id"))
    on_schedule = Q(finance_settings__push_on_change=False)
    return Company.objects.filter(has_due | on_schedule).order_by("pk")


def refill(*, company_ids: Iterable[int]) -> dict[str, int]:
    """Work of these tenants just finished: their next records take the room it left."""
    dispatched: Counter[str] = Counter()
    for company in Company.objects.filter(pk__in=set(company_ids)):
        dispatched.update(_dispatch_company(company, settings.SYNC_SWEEP_LIMIT))
    return dict(dispatched)


def queued_count(company: Company) -> int:
    """Records of this tenant handed to workers and not yet settled: dispatched (stamped with
    their lease) or being pushed."""
    now = timezone.now()
    queued = Q(sync_status=SyncStatus.IN_FLIGHT) | Q(
        sync_status=SyncStatus.PENDING, next_retry_at__gt=now
    )
    return sum(m.model.objects.filter(queued, company=company).count() for m in ORDERED)


def _dispatch_company(company: Company, limit: int) -> Counter[str]:
    dispatched: Counter[str] = Counter()
    try:
        # One dispatcher per tenant at a time (the beat's sweep or a refill); a busy one is
        # already doing what this call would.
        with single_flight(f"sweep:{company.pk}", timeout=60, wait=0):
            ctx = SyncContext.for_company(company.pk)
            if not ctx.usable or ratelimit.write_wait_long(ctx.realm) > 0:
                return dispatched  # not connected, paused after a 429, or its budget spent
            room = settings.SYNC_REALM_QUEUE_LIMIT - queued_count(company)
            if room < min(settings.SYNC_BATCH_SIZE, settings.SYNC_REALM_QUEUE_LIMIT):
                return dispatched  # wait for a full batch's room: batch slots are scarce
            budget = min(limit, room)
            held_after = _changes_held_after(ctx)
            for mapper in ORDERED:
                sent = _dispatch_type(ctx, company, mapper, budget, held_after)
                if sent:
                    dispatched[mapper.sync_type] += sent
                    budget -= sent
                if budget <= 0:
                    break
    except LockTimeout:
        pass
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
    size = settings.SYNC_BATCH_SIZE
    if len(pks) == budget and len(pks) > size:
        pks = pks[: len(pks) - len(pks) % size]  # more are due: whole batches only
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
    for start in range(0, len(pks), size):
        enqueue.push_dispatched(mapper.sync_type, pks[start : start + size])
    return len(pks)


def after_batch(*, sync_type: str, pks: list[int], outcomes: dict[str, int]) -> None:
    """The batch's room in its tenant's share is free again: refill it now. Records others wait
    for just landed: those can go now too, not at the next sweep."""
    model = MAPPERS[sync_type].model
    refill(company_ids=model.objects.filter(pk__in=pks).values_list("company_id", flat=True))
    if MAPPERS[sync_type].unblocks_others and outcomes.get("synced"):
        enqueue.sweep_soon()
