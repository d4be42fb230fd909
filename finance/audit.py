"""The audit row every human action on sync state or QuickBooks IDs writes (who, when, before,
after). One place, so admin, Problem Sync and scripts record the same facts."""

from finance.models import ManualAction

SNAPSHOT_FIELDS = (
    "qb_id",
    "qb_sync_token",
    "sync_status",
    "version",
    "synced_version",
    "problem_reason",
    "attempts",
)


def sync_snapshot(record) -> dict:
    return {name: getattr(record, name) for name in SNAPSHOT_FIELDS}


def manual_action_record(*, kind, record, user, before: dict, note: str = "") -> ManualAction:
    after = sync_snapshot(record)
    if "status" in before:
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
