"""Intuit's meter, kept on our side: every call counted per tenant, UTC month and purpose as
Core (data in: free) or CorePlus (data out: reads, queries, CDC; one monthly allowance for the
whole app, shared by every tenant). When Intuit refuses reads because the allowance is spent,
pulls pause for everyone (pushes go on) and the QuickBooks page says why.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from sync.models import ApiUsage, QuickBooksConnection, ReadPause

if TYPE_CHECKING:
    from finance.models import Company

logger = logging.getLogger(__name__)

# Why a call is made, in words a finance clerk can weigh ("what uses the reads").
PURPOSES = {
    "push": "Sending records",
    "lookup": "Checking for a record already in QuickBooks (after an unclear answer)",
    "conflict": "Reading QuickBooks' version after a conflicting change",
    "webhook_pull": "Taking in changes QuickBooks announced (webhooks)",
    "safety_pull": "Safety sweep for changes (CDC)",
    "manual_pull": "Change pulls started by a person or a command",
    "check": "Checks a person asked for (QuickBooks IDs, mappings, refused data)",
    "mapping": "Listing QuickBooks items and accounts for mapping",
    "reconcile": "Reconciliation with QuickBooks (nightly, and refreshes a person asked for)",
}
_purpose: contextvars.ContextVar[str] = contextvars.ContextVar("qbo_purpose", default="push")
# Core calls are frequent (every push); CorePlus calls are what is metered. Both are counted,
# but a write's bookkeeping is one UPDATE of a row that exists after the first call.


@contextmanager
def purpose(name: str) -> Iterator[None]:
    """Calls made inside are counted under `name` (an entry of PURPOSES)."""
    token = _purpose.set(name)
    try:
        yield
    finally:
        _purpose.reset(token)


def current_purpose() -> str:
    return _purpose.get()


def month_start(at: datetime | None = None) -> date:
    at = (at or timezone.now()).astimezone(UTC)
    return at.date().replace(day=1)


def next_month_start(at: datetime | None = None) -> datetime:
    first = month_start(at)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(following.year, following.month, 1, tzinfo=UTC)


def record_call(*, connection: QuickBooksConnection, coreplus: int = 0, core: int = 0) -> None:
    """Count calls QuickBooks served (a refused or unsent call is not counted, as Intuit)."""
    if not (core or coreplus) or not connection.company_id:
        return
    bucket = ApiUsage.objects.filter(
        company_id=connection.company_id, month=month_start(), purpose=current_purpose()
    )
    changes = {"core": F("core") + core, "coreplus": F("coreplus") + coreplus}
    try:
        if not bucket.update(**changes):
            with transaction.atomic():
                ApiUsage.objects.create(
                    company_id=connection.company_id,
                    month=month_start(),
                    purpose=current_purpose(),
                    core=core,
                    coreplus=coreplus,
                )
    except IntegrityError:
        bucket.update(**changes)  # another worker made the row first
    except Exception:  # noqa: BLE001 - bookkeeping must never fail a push
        logger.exception("could not count QuickBooks calls for realm %s", connection.realm_id)
    if core:
        note_write(connection=connection)


def note_write(*, connection: QuickBooksConnection) -> None:
    """Intuit echoes our writes as webhooks: the oldest write no delivery has followed yet is
    how a silent webhook is noticed. One conditional UPDATE per session, not per write: the
    session's copy of the connection remembers it was noted (a delivery clearing it meanwhile
    is seen by the next session, seconds later)."""
    if connection.unechoed_write_at is not None:
        return
    now = timezone.now()
    QuickBooksConnection.objects.filter(pk=connection.pk, unechoed_write_at__isnull=True).update(
        unechoed_write_at=now
    )
    connection.unechoed_write_at = now


def note_webhooks(*, realm_ids: set[str]) -> None:
    if realm_ids:
        QuickBooksConnection.objects.filter(realm_id__in=realm_ids).update(
            last_webhook_at=timezone.now(), unechoed_write_at=None
        )


# --- Intuit refusing reads ---------------------------------------------------------------


def reads_pause() -> ReadPause | None:
    pause = ReadPause.objects.order_by("-since").first()
    if pause is not None and pause.until <= timezone.now():
        ReadPause.objects.filter(pk=pause.pk).delete()
        return None
    return pause


def reads_paused_now() -> ReadPause | None:
    """The pause, while no probe is due (a due probe lets one pull try, to see if reads are
    back: an upgraded tier lifts the block before the month ends)."""
    pause = reads_pause()
    if pause is None or pause.retry_at <= timezone.now():
        return None
    return pause


def pause_reads(*, detail: str, retry_after: float | None) -> ReadPause:
    now = timezone.now()
    until = next_month_start(now)
    if retry_after:
        until = min(until, now + timedelta(seconds=retry_after)) if retry_after > 60 else until
    retry_at = min(until, now + timedelta(seconds=settings.SYNC_READS_PROBE_SECONDS))
    pause = ReadPause.objects.order_by("-since").first()
    if pause is None:
        logger.warning("QuickBooks refused reads (allowance spent): pulls paused until %s", until)
        return ReadPause.objects.create(since=now, retry_at=retry_at, until=until, detail=detail)
    ReadPause.objects.filter(pk=pause.pk).update(retry_at=retry_at, until=until, detail=detail)
    pause.retry_at, pause.until, pause.detail = retry_at, until, detail
    return pause


def reads_resumed() -> None:
    if ReadPause.objects.exists():
        ReadPause.objects.all().delete()
        logger.info("QuickBooks serves reads again: pulls resume")


# --- the budget a tenant sees ------------------------------------------------------------


def _month_fraction(now: datetime) -> float:
    start = datetime.combine(month_start(now), datetime.min.time(), tzinfo=UTC)
    length = (next_month_start(now) - start).total_seconds()
    return max((now - start).total_seconds() / length, 1 / length)


def read_budget(*, company: Company) -> dict[str, Any]:
    """Reads this month: the tenant's (by purpose), every tenant's, the projection to month end
    at this month's pace, and the share of the workspace allowance."""
    now = timezone.now()
    month = ApiUsage.objects.filter(month=month_start(now))
    mine = list(
        month.filter(company=company)
        .values("purpose")
        .annotate(reads=Sum("coreplus"), writes=Sum("core"))
        .order_by("-reads", "purpose")
    )
    tenant_reads = sum(row["reads"] for row in mine)
    totals = month.aggregate(reads=Sum("coreplus"))
    workspace_reads = totals["reads"] or 0
    fraction = _month_fraction(now)
    allowance = settings.QBO_COREPLUS_ALLOWANCE
    projected = round(workspace_reads / fraction)
    used = workspace_reads / allowance if allowance else 0.0
    return {
        "month": month_start(now),
        "tenant_reads": tenant_reads,
        "tenant_writes": sum(row["writes"] for row in mine),
        "tenant_projected": round(tenant_reads / fraction),
        "by_purpose": [
            {**row, "label": PURPOSES.get(row["purpose"], row["purpose"])}
            for row in mine
            if row["reads"] or row["writes"]
        ],
        "workspace_reads": workspace_reads,
        "workspace_projected": projected,
        "allowance": allowance,
        "used_percent": round(used * 100, 1),
        "projected_percent": round(projected / allowance * 100, 1) if allowance else 0.0,
        "warn": used >= settings.QBO_COREPLUS_WARN_FRACTION,
        "projected_over": bool(allowance) and projected > allowance,
        "pause": reads_pause(),
    }
