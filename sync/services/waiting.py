"""Records parked because something they need was not in QuickBooks go back in the queue, by
themselves, once it is there: a clerk who fixes a customer or maps a charge code does not
re-sync its invoices and payments one by one."""

from __future__ import annotations

from finance.models import SyncedRecord
from finance.syncstate import FRESH_START, SyncStatus, move
from sync.mappers import MAPPERS
from sync.services import enqueue


def requeue_waiting_on(record: SyncedRecord) -> int:
    """`record` just reached QuickBooks (created, linked or mapped): its waiting records go
    back to PENDING, and a sweep sends them. Returns how many."""
    moved = 0
    for waiting in MAPPERS[record.sync_type].waiting_on(record):
        parked = waiting.model.objects.filter(
            waiting.condition,
            sync_status=SyncStatus.PROBLEM,
            problem_reason__in=waiting.reasons,
        )
        moved += move(
            # By id: a join through lines would repeat a record once per line.
            waiting.model.objects.filter(pk__in=parked.values("pk")),
            SyncStatus.PENDING,
            how="dependency_synced",
            sources=[SyncStatus.PROBLEM],
            **FRESH_START,
        )
    if moved:
        enqueue.after_commit("sweep_due", what="records whose dependency is now in QuickBooks")
    return moved
