"""Problem records for the Problem Sync view tests (built with finance services, then parked)."""

from datetime import timedelta

from django.utils import timezone

from finance.syncstate import SyncStatus
from tests.finance.factories import CustomerFactory, InvoiceFactory  # noqa: F401


def park(record, *, reason="missing_item_mapping", days=0, status=SyncStatus.PROBLEM, **extra):
    """Put a record in PROBLEM (or another status) as the engine would."""
    fields = {
        "sync_status": status,
        "problem_reason": reason if status in (SyncStatus.PROBLEM, SyncStatus.CLEARED) else "",
        "problem_since": timezone.now() - timedelta(days=days),
        "attempts": 1,
        "last_error_code": "6000",
        "last_error_message": "Business Validation Error: Item reference missing",
        "last_attempt_at": timezone.now() - timedelta(days=days),
        **extra,
    }
    type(record).objects.filter(pk=record.pk).update(**fields)
    record.refresh_from_db()
    return record


def problem_invoices(n, **kwargs):
    return [park(InvoiceFactory(lines=1), **kwargs) for _ in range(n)]
