"""Records parked because something they need was not in QuickBooks go back in the queue, by
themselves, once it is there: a clerk who fixes a customer or maps a charge code does not
re-sync its invoices and payments one by one."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from finance.models import SyncedRecord
from finance.syncstate import FRESH_START, SyncStatus, move
from sync.mappers import MAPPERS
from sync.services import enqueue


def requeue_waiting_on(record: SyncedRecord) -> int:
    """`record` just reached QuickBooks (created, linked or mapped): its waiting records go
    back to PENDING, and a sweep sends them. Returns how many."""
    return requeue_waiting_on_many([record])


def requeue_waiting_on_many(records: Iterable[SyncedRecord]) -> int:
    """The same for records that arrived together (a batch): one question per waiting type and
    tenant, whatever their number: on the engine's hot path, almost always nothing is parked."""
    conditions: dict[tuple[type[SyncedRecord], tuple[str, str], int], Q] = {}
    for record in records:
        for waiting in MAPPERS[record.sync_type].waiting_on(record):
            key = (waiting.model, waiting.reasons, record.company_id)
            known = conditions.get(key)
            conditions[key] = waiting.condition if known is None else known | waiting.condition
    moved = 0
    for (model, reasons, company_id), condition in conditions.items():
        parked = model.objects.filter(
            company_id=company_id, sync_status=SyncStatus.PROBLEM, problem_reason__in=reasons
        )
        # This index-only question is far cheaper than the locked move below.
        if not parked.exists():
            continue
        moved += move(
            # By id: a join through lines would repeat a record once per line.
            model.objects.filter(pk__in=parked.filter(condition).values("pk")),
            SyncStatus.PENDING,
            how="dependency_synced",
            sources=[SyncStatus.PROBLEM],
            **FRESH_START,
        )
    if moved:
        enqueue.after_commit("sweep_due", what="records whose dependency is now in QuickBooks")
    return moved
