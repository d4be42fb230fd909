"""Read queries of finance data that more than one screen asks."""

from django.db.models import QuerySet

from finance.models import Company, Invoice
from finance.syncstate import SyncStatus


def synced_invoices(*, company: Company) -> QuerySet[Invoice]:
    """Invoices in QuickBooks whose lines carry descriptions (a voided one carries none)."""
    return Invoice.objects.filter(company=company, sync_status=SyncStatus.SYNCED).exclude(
        status=Invoice.Status.VOID
    )
