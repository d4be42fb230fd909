"""Per-realm rate limits in the database (works across processes and without Redis).

Counts live in one row per company and epoch second; the per-minute limit is the sum of the
last 60 rows (a sliding window), the per-second limit the current row. The company row lock
serializes the check-and-count.
"""

import random
import time

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum

from .models import SandboxCompany, ThrottleBucket
from .store import lock_company


def enabled(company):
    if company.throttle_enabled is not None:
        return company.throttle_enabled
    return getattr(settings, "QBO_SANDBOX_THROTTLE_ENABLED", True)


def admit(company, *, is_batch=False):
    """Count the request; False when it is over a limit (the caller answers 429)."""
    now = int(time.time())
    with transaction.atomic():
        locked = lock_company(company.pk)
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
        if (totals["r"] or 0) >= locked.per_minute or current >= locked.per_second:
            return False
        if is_batch and (totals["b"] or 0) >= locked.batch_per_minute:
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
