"""Per-realm rate limits in the database (works across processes and without Redis).

Counts live in one row per company and epoch second; the per-minute limit is the sum of the
last 60 rows (a sliding window), the per-second limit the current row. The company row lock
serializes the check-and-count.
"""

import logging
import random
import time

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum

from .models import SandboxCompany, ThrottleBucket
from .store import lock_company

logger = logging.getLogger(__name__)
_ADVISORY_CLASS = 7201  # "qbo sandbox throttle", one key per company


def enabled(company):
    if company.throttle_enabled is not None:
        return company.throttle_enabled
    return getattr(settings, "QBO_SANDBOX_THROTTLE_ENABLED", True)


def _lock_counts(pk):
    """The counts' own lock, not the company row that writes hold: Intuit counts a request when
    it arrives, and a request waiting behind a long batch must be counted (or refused) then, not
    seconds later in a bunch with others. SQLite has one write lock anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_ADVISORY_CLASS, pk])
        return SandboxCompany.objects.get(pk=pk)
    return lock_company(pk)


def admit(company, *, is_batch=False):
    """Count the request; False when it is over a limit (the caller answers 429)."""
    with transaction.atomic():
        locked = _lock_counts(company.pk)
        now = int(time.time())  # read under the lock: counted in the order admitted
        if locked.throttle_burst > 0:
            SandboxCompany.objects.filter(pk=company.pk).update(
                throttle_burst=F("throttle_burst") - 1
            )
            return False
        if not enabled(locked):
            return True
        window = ThrottleBucket.objects.filter(company=locked, second__gt=now - 60)
        totals = window.aggregate(r=Sum("requests"), b=Sum("batches"))
        current = window.filter(second=now).values_list("requests", flat=True).first() or 0
        over = [
            name
            for name, count, limit in (
                ("per_minute", totals["r"] or 0, locked.per_minute),
                ("per_second", current, locked.per_second),
                (
                    "batch_per_minute",
                    (totals["b"] or 0) if is_batch else 0,
                    locked.batch_per_minute,
                ),
            )
            if count >= limit
        ]
        if over:
            # Which window refused it: what a pacing client needs to know, and Intuit never says.
            logger.warning(
                "realm %s throttled (%s) at %.3f", locked.realm_id, ", ".join(over), time.time()
            )
            return False
        updated = ThrottleBucket.objects.filter(company=locked, second=now).update(
            requests=F("requests") + 1, batches=F("batches") + (1 if is_batch else 0)
        )
        if not updated:
            ThrottleBucket.objects.create(
                company=locked, second=now, requests=1, batches=1 if is_batch else 0
            )
        if random.random() < 0.02:  # prune old buckets now and then
            ThrottleBucket.objects.filter(company=locked, second__lt=now - 120).delete()
    return True
