"""Push on change: called after commit with the records finance marked as owed."""

import logging

from django.conf import settings

logger = logging.getLogger(__name__)


def on_records_changed(sender, *, records, **kwargs) -> None:
    from sync.models import QuickBooksConnection
    from sync.tasks import push_record

    # Not connected: nothing to push now; the sweep picks everything up after connecting.
    if not QuickBooksConnection.objects.filter(
        status=QuickBooksConnection.Status.CONNECTED
    ).exists():
        return
    for sync_type, pk in records:
        try:
            push_record.delay(sync_type, pk, "change")
        except Exception:  # noqa: BLE001 - the beat sweep picks the record up; never lose the save
            logger.warning("could not enqueue %s %s; the sweep will push it", sync_type, pk)
            if settings.DEBUG:
                raise
