"""The audit row every human action on sync state or QuickBooks IDs writes (who, when, before,
after). One place, so admin, Problem Sync and scripts record the same facts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finance.models import ManualAction, SyncedRecord

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SNAPSHOT_FIELDS = (
    "qb_id",
    "qb_sync_token",
    "sync_status",
    "version",
    "synced_version",
    "problem_reason",
    "attempts",
)


def sync_snapshot(record: SyncedRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in SNAPSHOT_FIELDS}


def manual_action_record(
    *, kind: str, record: SyncedRecord, user: User | None, before: dict[str, Any], note: str = ""
) -> ManualAction:
    after = sync_snapshot(record)
    if "status" in before and hasattr(record, "status"):  # a type with a status (invoices)
        after["status"] = record.status
    return ManualAction.objects.create(
        kind=kind,
        record_type=record.sync_type,
        record_id=record.pk,
        user=user,
        before=before,
        after=after,
        note=note[:500],
    )
