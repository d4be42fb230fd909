"""Read queries for sync pages."""

from django.utils import timezone

from sync.models import QuickBooksConnection


def connection_for_company(*, company) -> QuickBooksConnection:
    connection, _ = QuickBooksConnection.objects.get_or_create(company=company)
    return connection


def connection_banner_for(*, user) -> dict | None:
    """The reconnect banner: shown to everyone signed in while QuickBooks needs attention."""
    connection = (
        QuickBooksConnection.objects.exclude(status=QuickBooksConnection.Status.CONNECTED)
        .exclude(realm_id="")
        .order_by("pk")
        .first()
    )
    if connection is None:
        return None
    remaining = None
    if connection.refresh_token_expires_at:
        remaining = connection.refresh_token_expires_at - timezone.now()
    return {"connection": connection, "refresh_remaining": remaining}
