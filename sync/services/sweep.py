"""The scheduled sweep: find what is due, hand it to workers in batches, in dependency order."""

import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from finance.models import Company
from finance.syncstate import OWED, SyncStatus
from sync.mappers import ORDERED
from sync.services import ratelimit
from sync.services.engine import (
    SyncContext,
    _type_allowed,
    due_queryset,
    reclaim_expired_leases,
    skip_disabled,
)
from sync.services.locks import LockTimeout, get_redis, single_flight

logger = logging.getLogger(__name__)

# Records whose customer (or invoice) is itself still on its way wait for it: dispatching them
# now would only make them wait inside a worker.
_WAIT_FOR = {
    # An invoice whose charge code is still being created would be parked as
    # missing_item_mapping if its batch ran before the item's (same sweep, parallel workers).
    "invoice": Q(customer__qb_id="", customer__sync_status__in=OWED)
    | Q(
        charge_sets__lines__charge_code__qb_id="",
        charge_sets__lines__charge_code__sync_status__in=OWED,
    ),
    "creditmemo": Q(customer__qb_id="", customer__sync_status__in=OWED),
    "payment": Q(customer__qb_id="", customer__sync_status__in=OWED)
    | Q(applications__invoice__qb_id="", applications__invoice__sync_status__in=OWED),
}


def dispatch_due(*, limit: int | None = None) -> dict[str, int]:
    """Enqueue due records (batches of ≤ 30). Dispatched records are stamped with a deadline
    (next_retry_at = now + lease) so the next sweep does not send them twice; if the task is
    lost, they become due again when it passes."""
    from sync.tasks import push_batch, push_record

    limit = limit or settings.SYNC_SWEEP_LIMIT
    reclaim_expired_leases()
    dispatched: dict[str, int] = {}
    try:
        with single_flight("sweep", timeout=120, wait=0.5):
            for company in Company.objects.all():
                ctx = SyncContext.for_company(company.pk)
                if not ctx.usable or ratelimit.paused_for(ctx.connection.realm_id) > 0:
                    continue  # a 429 pauses this realm's writes; other realms go on
                budget = limit
                for mapper in ORDERED:
                    due = due_queryset(mapper.model).filter(company=company)
                    if not _type_allowed(ctx, mapper):
                        skip_disabled(
                            sync_type=mapper.sync_type, pks=list(due.values_list("pk", flat=True))
                        )
                        continue
                    if mapper.sync_type in _WAIT_FOR:
                        due = due.exclude(_WAIT_FOR[mapper.sync_type])
                    pks = list(due.order_by("pk").values_list("pk", flat=True).distinct()[:budget])
                    if not pks:
                        continue
                    deadline = timezone.now() + timezone.timedelta(
                        seconds=settings.SYNC_LEASE_SECONDS
                    )
                    due_queryset(mapper.model).filter(pk__in=pks).update(
                        sync_status=SyncStatus.PENDING, next_retry_at=deadline
                    )
                    size = settings.SYNC_BATCH_SIZE
                    for start in range(0, len(pks), size):
                        chunk = pks[start : start + size]
                        if len(chunk) == 1:
                            push_record.delay(mapper.sync_type, chunk[0])
                        else:
                            push_batch.delay(mapper.sync_type, chunk)
                    dispatched[mapper.sync_type] = len(pks)
                    budget -= len(pks)
                    if budget <= 0:
                        break
    except LockTimeout:
        return {"busy": 1}
    if dispatched:
        logger.info("sweep dispatched %s", dispatched)
    return dispatched


def after_batch(*, sync_type: str, outcomes: dict) -> None:
    """Customers or items just landed: records waiting for them can go now, not next minute."""
    if sync_type not in {"customer", "item"} or not outcomes.get("synced"):
        return
    from sync.tasks import sweep_due

    client = get_redis()
    if client is not None and not client.set("portpro-qb:sweep-soon", "1", nx=True, ex=2):
        return
    sweep_due.delay()
