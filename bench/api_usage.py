"""Section 9: metered reads (Intuit's CorePlus calls), per what the product does.

Measured on the real stack (gunicorn serving the app and the emulator, the Celery worker,
webhooks on, the product's own defaults for the debounce and the safety sweep): reads per
1,000 records pushed, reads per QuickBooks-side payment taken in during a burst of 10, reads
per idle tenant per day (a day of beat's pull ticks, run at simulated times against the
emulator). Then a month of 1,000 tenants is played through the same scheduling functions the
product uses, priced with the measured figures.
"""

import random
import time
from datetime import UTC, timedelta

from bench.beat import product_beat

ALLOWANCE = 500_000


def say(text=""):
    print(text, flush=True)


def metered_reads(company=None) -> int:
    """CorePlus calls as our own meter counted them (sync.models.ApiUsage)."""
    from django.db.models import Sum

    from sync.models import ApiUsage

    rows = ApiUsage.objects.all() if company is None else ApiUsage.objects.filter(company=company)
    return rows.aggregate(n=Sum("coreplus"))["n"] or 0


def reads_by_purpose(company) -> dict[str, int]:
    from django.db.models import Sum

    from sync.models import ApiUsage

    rows = ApiUsage.objects.filter(company=company).values("purpose").annotate(n=Sum("coreplus"))
    return {row["purpose"]: row["n"] for row in rows if row["n"]}


def _delta(after: dict, before: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def emulator_reads(sandbox) -> int | None:
    """The same, as the emulator (Intuit's side) counted them, when it meters."""
    try:
        from qbo_sandbox.models import UsageCounter
    except ImportError:
        return None
    from django.db.models import Sum

    return UsageCounter.objects.filter(company=sandbox).aggregate(n=Sum("coreplus"))["n"] or 0


def _wait(predicate, timeout, what):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.25)
    say(f"  (timed out after {timeout:.0f}s waiting for {what})")
    return None


def _events_open(realm) -> int:
    from sync.models import WebhookEvent

    return WebhookEvent.objects.filter(realm_id=realm, processed_at__isnull=True).count()


def bench_api_usage(wiring, results, *, payer_cls, latency_ms, limits, scale=1.0):
    from django.conf import settings

    from bench import seed
    from finance.models import Invoice
    from finance.syncstate import OWED

    count = max(300, round(1_000 * scale))
    say(
        f"\n== 9. Metered reads (CorePlus): {count} invoices pushed, a burst of 10 payments "
        f"made in QuickBooks, an idle day; debounce {settings.SYNC_PULL_DEBOUNCE_SECONDS}s, "
        f"safety sweep every {settings.SYNC_SAFETY_PULL_SECONDS}s =="
    )
    company = seed.company("Usage Tenant")
    sandbox, _, connection = wiring.connect(
        company, "Usage Books", throttle_enabled=True, latency_ms=latency_ms, **limits
    )
    customers, codes, invoices = seed.push_set(
        company, customers=max(20, count // 20), invoices=count, tag="U"
    )
    records = customers + codes + invoices
    wiring.webhooks(True)
    out = {}
    try:
        with product_beat():
            # 1. push, webhooks echoing every write
            before, before_remote = metered_reads(company), emulator_reads(sandbox)
            started = time.monotonic()
            _wait(
                lambda: not Invoice.objects.filter(company=company, sync_status__in=OWED).exists(),
                max(300.0, records / 10),
                "the push",
            )
            pushed_s = time.monotonic() - started
            time.sleep(settings.SYNC_WEBHOOK_ECHO_GRACE_SECONDS + 15)  # the echoes come in
            _wait(lambda: _events_open(connection.realm_id) == 0, 120, "the echoes")
            push_reads = metered_reads(company) - before
            remote = emulator_reads(sandbox)
            out["push"] = {
                "records": records,
                "seconds": round(pushed_s, 1),
                "reads": push_reads,
                "emulator_reads": None if remote is None else remote - (before_remote or 0),
                "reads_per_1000_records": round(push_reads / records * 1000, 2),
                "goal": 5,
            }
            say(
                f"  push: {records} records in {pushed_s:.0f}s, {push_reads} reads "
                f"(emulator counted {out['push']['emulator_reads']}) → "
                f"{out['push']['reads_per_1000_records']} per 1,000 records (goal ≤ 5)"
            )

            # The next change pull (a safety sweep, or the first webhook's) holds every object
            # just pushed: past QuickBooks' 1,000 per answer it pages entity by entity. A cost
            # of the backfill's first pull, not of each push: shown on its own.
            from sync.services import pull

            before = metered_reads(company)
            connection.refresh_from_db()
            pull.pull_changes(connection=connection, purpose="safety_pull")
            # Its window overlaps the one before by a minute (clock skew): the pull after it
            # still holds the push's last minute. The burst below is of a tenant past that.
            time.sleep(65)
            connection.refresh_from_db()
            pull.pull_changes(connection=connection, purpose="safety_pull")
            out["first_pull_after_push"] = {"reads": metered_reads(company) - before}
            say(
                f"  the first two change pulls after the push: "
                f"{out['first_pull_after_push']['reads']} reads (paging past the 1,000 cap)"
            )

            # 2. a burst of 10 payments made in QuickBooks
            payer = payer_cls(company, sandbox)
            before, before_remote = metered_reads(company), emulator_reads(sandbox)
            purposes = reads_by_purpose(company)
            unpaid = payer.unpaid(10)
            paid_at = [payer.pay(invoice) for invoice in unpaid]
            waits = [payer.wait_paid(invoice, paid_at[0], timeout=180.0) for invoice in unpaid]
            burst_reads = metered_reads(company) - before
            remote = emulator_reads(sandbox)
            taken = [w for w in waits if w is not None]
            out["payments"] = {
                "payments": len(unpaid),
                "taken_in": len(taken),
                "reads": burst_reads,
                "emulator_reads": None if remote is None else remote - (before_remote or 0),
                "reads_per_payment": round(burst_reads / max(1, len(unpaid)), 3),
                "max_latency_s": round(max(taken), 1) if taken else None,
                "by_purpose": _delta(reads_by_purpose(company), purposes),
                "goal": 0.2,
            }
            say(
                f"  burst: {len(taken)} of {len(unpaid)} payments taken in, the last "
                f"{out['payments']['max_latency_s']}s after the first was made; {burst_reads} "
                f"reads → {out['payments']['reads_per_payment']} per payment (goal ≤ 0.2); "
                f"{out['payments']['by_purpose']}"
            )
    finally:
        wiring.webhooks(False)

    out["webhooks"] = _webhook_answers(connection.realm_id)
    w = out["webhooks"]
    say(
        f"  webhook endpoint at {w['events_per_minute']} events/min ({w['deliveries']} "
        f"deliveries of 1–100 events, 3 realms, a tenth redelivered): answer p50 "
        f"{w['p50_ms']} ms, p99 {w['p99_ms']} ms, max {w['max_ms']} ms (goal p99 < 3,000 ms); "
        f"{w['stored']} events stored once each"
    )
    out["idle_day"] = _idle_day(connection)
    say(
        f"  idle day: {out['idle_day']['pulls']} pulls, {out['idle_day']['reads']} reads over "
        f"{out['idle_day']['ticks']} pull ticks (goal ≤ 10); {out['idle_day']['by_purpose']}"
    )
    out["month"] = _month_of_tenants(
        reads_per_record=push_reads / records,
        reads_per_pull=out["idle_day"]["reads"] / max(1, out["idle_day"]["pulls"]),
    )
    m = out["month"]
    say(
        f"  month, 1,000 tenants × (300 invoices, 200 QuickBooks payments at random business "
        f"hours): {m['reads_per_tenant']:.0f} reads per tenant, {m['total_reads']:,} in all = "
        f"{m['share_of_allowance']:.2f} of the 500,000 allowance → "
        f"{'FITS' if m['fits'] else 'DOES NOT FIT'}"
    )
    results["api_usage"] = out
    return out


def _idle_day(connection):
    """A day of beat's pull ticks at simulated times: the tenant's webhooks are healthy (a
    delivery came, nothing of ours went unechoed); each pull due is a real CDC call."""
    from django.utils import timezone

    from sync.models import QuickBooksConnection
    from sync.services import pull

    rows = QuickBooksConnection.objects.filter(pk=connection.pk)
    start = timezone.now()
    rows.update(last_pull_at=start, last_webhook_at=start, unechoed_write_at=None)
    before = metered_reads(connection.company)
    purposes = reads_by_purpose(connection.company)
    ticks = 24 * 3600 // pull_tick_seconds()
    pulls = 0
    for tick in range(1, ticks + 1):
        now = start + timedelta(seconds=tick * pull_tick_seconds())
        current = rows.select_related("company__finance_settings").get()
        purpose = pull.pull_purpose_due(current, now)
        if purpose is None:
            continue
        pull.pull_changes(connection=current, purpose=purpose)
        rows.update(last_pull_at=now)  # the pull ran at that simulated moment
        pulls += 1
    return {
        "ticks": ticks,
        "pulls": pulls,
        "reads": metered_reads(connection.company) - before,
        "by_purpose": _delta(reads_by_purpose(connection.company), purposes),
    }


def pull_tick_seconds() -> int:
    from django.conf import settings

    return settings.SYNC_PULL_SECONDS


class _Connection:
    """What the scheduling functions read of a connection, for the simulated month."""

    def __init__(self, now):
        self.pull_requested_at = None
        self.last_pull_at = now
        self.last_webhook_at = now
        self.unechoed_write_at = None


def _month_of_tenants(*, reads_per_record, reads_per_pull, tenants=1000, days=30, seed=7):
    """One tenant's month through pull_purpose_due and the debounce (request_pull's rule: the
    first event of a burst sets the pull a debounce later); a pull costs what one cost in the
    idle day; 1,000 tenants cost 1,000 times a tenant (their months are alike)."""
    from datetime import datetime

    from django.conf import settings

    from sync.services import pull

    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    business = [
        start + timedelta(days=day, hours=9)
        for day in range(days)
        if (start + timedelta(days=day)).weekday() < 5
    ]

    def at_business_hours():
        return rng.choice(business) + timedelta(seconds=rng.uniform(0, 8 * 3600))

    payments = sorted(at_business_hours() for _ in range(200))
    connection = _Connection(start)
    tick = timedelta(seconds=10)  # the stored-webhook pass, where requested pulls run
    debounce = timedelta(seconds=settings.SYNC_PULL_DEBOUNCE_SECONDS)
    pull_every = timedelta(seconds=settings.SYNC_PULL_SECONDS)
    now, next_pull_tick, pulls, index = start, start, 0, 0
    end = start + timedelta(days=days)
    while now < end:
        while index < len(payments) and payments[index] <= now:
            if connection.pull_requested_at is None:  # request_pull
                connection.pull_requested_at = payments[index] + debounce
            connection.last_webhook_at = payments[index]
            index += 1
        due = connection.pull_requested_at is not None and connection.pull_requested_at <= now
        if not due and now >= next_pull_tick:
            due = pull.pull_purpose_due(connection, now) is not None
            next_pull_tick = now + pull_every
        if due:
            pulls += 1
            connection.pull_requested_at = None
            connection.last_pull_at = now
        # Jump to the next moment anything can happen, 10 s at a time while a pull waits.
        upcoming = [next_pull_tick]
        if index < len(payments):
            upcoming.append(payments[index])
        if connection.pull_requested_at is not None:
            upcoming.append(connection.pull_requested_at)
        now = max(now + tick, min(upcoming)) if not due else now + tick
    per_tenant = pulls * reads_per_pull + 300 * reads_per_record
    total = round(per_tenant * tenants)
    return {
        "tenants": tenants,
        "invoices_per_tenant": 300,
        "payments_per_tenant": 200,
        "pulls_per_tenant": pulls,
        "reads_per_tenant": round(per_tenant, 1),
        "total_reads": total,
        "allowance": ALLOWANCE,
        "share_of_allowance": round(total / ALLOWANCE, 3),
        "fits": total <= ALLOWANCE,
    }


def _webhook_answers(realm, *, per_minute=500, seconds=60.0):
    """Signed CloudEvents deliveries to the running web server, at Intuit's pace: the time to
    the answer of each (Intuit wants it within 3 s)."""
    import base64
    import hashlib
    import hmac
    import json
    import uuid

    import requests
    from django.conf import settings

    from bench import stack
    from sync.models import WebhookEvent

    rng = random.Random(11)
    key = settings.QBO_WEBHOOK_VERIFIER_TOKEN.encode()
    url = f"{stack.BASE}/quickbooks/webhook/"
    realms = [realm, "5555000001", "5555000002"]
    sent, latencies, deliveries, previous = 0, [], 0, None
    started = time.monotonic()
    http = requests.Session()
    while time.monotonic() - started < seconds:
        size = 100 if rng.random() < 0.05 else rng.randint(1, 15)
        if previous is not None and rng.random() < 0.1:
            body = previous  # a redelivery: the same events, the same ids
        else:
            events = [
                {
                    "specversion": "1.0",
                    "id": str(uuid.uuid4()),
                    "source": "intuit.bench",
                    "type": "qbo.customer.updated.v1",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "intuitaccountid": rng.choice(realms),
                    "intuitentityid": str(rng.randint(100000, 999999)),
                    "data": {},
                }
                for _ in range(size)
            ]
            body = json.dumps(events).encode()
            sent += size
        previous = body
        signature = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
        t = time.monotonic()
        response = http.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/cloudevents+json",
                "intuit-signature": signature,
            },
            timeout=30,
        )
        latencies.append((time.monotonic() - t) * 1000)
        deliveries += 1
        assert response.status_code == 200, response.text[:200]
        # Keep to the pace: `sent` events should have taken this long at per_minute.
        ahead = sent / per_minute * 60 - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1)

    elapsed = time.monotonic() - started
    return {
        "events_per_minute": round(sent / elapsed * 60),
        "deliveries": deliveries,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1], 1),
        "stored": WebhookEvent.objects.filter(
            entity_name="Customer", operation="update", realm_id__in=realms
        ).count(),
        "sent_events": sent,
        "goal_p99_ms": 3000,
    }
