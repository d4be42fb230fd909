"""The App Partner Program's meter: v3 calls per app, company and UTC month, Core or CorePlus.

Core is data in (create, update, delete, void, send), CorePlus data out (read, query, CDC,
preferences and companyinfo reads, PDFs). Only calls the v3 service answers are counted: the
gateway's refusals (401, 403, the per-minute throttle's 429, this allowance's own 429) and
injected 5xx faults are not; validation faults (4xx) are, as Intuit counts calls it served.
A batch counts each item by its own kind. See README.md, "Research notes (usage)".
"""

import datetime as dt
import math

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from . import faults
from .models import SandboxApp, UsageCounter

CORE = "core"
READ, QUERY, CDC = "read", "query", "cdc"
BATCH = "batch"  # counted item by item
COREPLUS_KINDS = (READ, QUERY, CDC)
COUNTER_FIELDS = ("core", "coreplus", "coreplus_read", "coreplus_query", "coreplus_cdc")
DEFAULT_ALLOWANCE = 500_000  # Builder tier, per month per developer workspace


def month_start(now=None) -> dt.date:
    now = (now or timezone.now()).astimezone(dt.UTC)
    return now.date().replace(day=1)


def next_month_start(now=None) -> dt.datetime:
    first = month_start(now)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return dt.datetime.combine(following, dt.time.min, tzinfo=dt.UTC)


def parse_month(text) -> dt.date:
    """'YYYY-MM' as the month's first day; ValueError otherwise."""
    return dt.datetime.strptime(text.strip(), "%Y-%m").date()


def allowance(app) -> int:
    if app.coreplus_allowance is not None:
        return app.coreplus_allowance
    return getattr(settings, "QBO_SANDBOX_COREPLUS_ALLOWANCE", DEFAULT_ALLOWANCE)


def app_coreplus_used(app_id, month) -> int:
    """CorePlus calls of the app this month over all its companies (the allowance is shared)."""
    total = UsageCounter.objects.filter(app_id=app_id, month=month).aggregate(n=Sum("coreplus"))
    return total["n"] or 0


def call_kind(method, shape) -> str:
    """What a v3 call is by its route shape (api._shape): batch, query, cdc, read or core."""
    head = (shape or "").split("/")[0]
    if head in (BATCH, QUERY, CDC):
        return head
    return READ if method == "GET" else CORE


class Meter:
    """The counts of one v3 request, written with one UPDATE when it is answered (save)."""

    def __init__(self, *, app, company, kind):
        self.app = app
        self.company = company
        self.kind = kind
        self.month = month_start()
        self.counts = dict.fromkeys(COUNTER_FIELDS, 0)
        self.itemised = False  # a batch whose items were counted one by one
        self._used = None

    def take(self, kind) -> bool:
        """Count one call (or batch item) of this kind; False when it is CorePlus and the app's
        monthly allowance is used up (then it is refused and not counted)."""
        if kind == CORE:
            self.counts["core"] += 1
            return True
        if self._used is None:
            # Read once per request: check and count are not one atomic step, so concurrent
            # requests at the edge may pass a few calls over the allowance.
            self._used = app_coreplus_used(self.app.pk, self.month)
        if self._used + self.counts["coreplus"] >= allowance(self.app):
            return False
        self.counts["coreplus"] += 1
        self.counts["coreplus_" + kind] += 1
        return True

    def refusal(self):
        """The 429 Intuit answers once the CorePlus allowance is used up."""
        return coreplus_limit_response(allowance(self.app))

    def save(self):
        if self.kind == BATCH and not self.itemised:
            self.counts["core"] += 1  # a batch refused as a whole (bad body, > 30 items)
        record(app=self.app, company=self.company, month=self.month, **self.counts)


def record(*, app, company, month, **counts):
    """Add to the (app, company, month) counter: one UPDATE; the row is created on first use."""
    counts = {name: n for name, n in counts.items() if n}
    if not counts:
        return
    row = UsageCounter.objects.filter(app=app, company=company, month=month)
    changes = {name: F(name) + n for name, n in counts.items()}
    if row.update(**changes):
        return
    try:
        with transaction.atomic():
            UsageCounter.objects.create(app=app, company=company, month=month, **counts)
    except IntegrityError:  # another request created it meanwhile
        row.update(**changes)


def coreplus_limit_detail(limit) -> str:
    # The emulator's own wording: Intuit's body for this refusal is not published.
    return (
        f"CorePlus API call limit reached for this app: {limit} calls this month. "
        "Calls resume next month or after an upgrade."
    )


def retry_after_seconds(now=None) -> int:
    now = now or timezone.now()
    return max(1, math.ceil((next_month_start(now) - now).total_seconds()))


def coreplus_limit_response(limit):
    body = faults.gateway_envelope(
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        coreplus_limit_detail(limit),
        "3001",
        "SERVICE",
    )
    return faults.json_response(body, 429, {"Retry-After": str(retry_after_seconds())})


def coreplus_limit_fault(limit) -> faults.QboFault:
    """The same refusal for one Query item of a batch (the batch itself is answered 200)."""
    return faults.QboFault(
        3001,
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        coreplus_limit_detail(limit),
        type="SERVICE",
        status=429,
    )


# --- reporting -------------------------------------------------------------------------


def report(*, company, month=None, client_id=None) -> dict:
    """The realm's counts per app for the month (default this one), with each app's allowance
    and its CorePlus use over all its companies."""
    month = month or month_start()
    rows = UsageCounter.objects.filter(company=company, month=month).select_related("app")
    if client_id:
        rows = rows.filter(app__client_id=client_id)
    apps = [_app_row(row, month) for row in rows.order_by("app__client_id")]
    return {
        "realm": company.realm_id,
        "month": month.strftime("%Y-%m"),
        "apps": apps,
        "core": sum(a["core"] for a in apps),
        "coreplus": sum(a["coreplus"] for a in apps),
    }


def _app_row(row, month):
    limit = allowance(row.app)
    used = app_coreplus_used(row.app_id, month)
    return {
        "client_id": row.app.client_id,
        "name": row.app.name,
        **{name: getattr(row, name) for name in COUNTER_FIELDS},
        "coreplus_allowance": limit,
        "coreplus_app_month": used,  # all the app's companies: what the allowance counts
        "allowance_used_percent": round(100.0 * used / limit, 1) if limit else 100.0,
    }


def reset(*, company, month=None, client_id=None) -> int:
    """Forget the realm's counts for the month (default this one); how many rows went."""
    rows = UsageCounter.objects.filter(company=company, month=month or month_start())
    if client_id:
        rows = rows.filter(app__client_id=client_id)
    deleted, _ = rows.delete()
    return deleted


def allowance_set(*, app, coreplus) -> SandboxApp:
    """Set the app's monthly CorePlus allowance; None = back to the setting's default."""
    if coreplus is not None and coreplus < 0:
        raise ValueError("the allowance cannot be negative")
    SandboxApp.objects.filter(pk=app.pk).update(coreplus_allowance=coreplus)
    app.coreplus_allowance = coreplus
    return app
