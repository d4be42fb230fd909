"""Signed webhook notifications to the apps connected to a company, with Intuit's retries.

Deliveries are rows written in the same transaction as the change; after commit a daemon
thread of this process sends the due ones (claimed with a guarded UPDATE, so several web
processes never send the same delivery twice at once).
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid

import requests
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .models import SandboxApp, Token, WebhookDelivery
from .timefmt import meta_time

log = logging.getLogger(__name__)

# Intuit's retry schedule in seconds (10 s, 20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h, then 6 h).
RETRY_SCHEDULE = [10, 20, 30, 300, 1200, 7200, 14400, 21600]
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 4
LEGACY_OPERATIONS = {"created": "Create", "updated": "Update", "deleted": "Delete",
                     "voided": "Void", "merged": "Merge", "emailed": "Emailed"}  # fmt: skip
CLAIM_SECONDS = 30
DELIVERY_TIMEOUT = 3.0  # Intuit wants a 200 within 3 seconds


def retry_delay(attempts):
    base = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1]
    return base * getattr(settings, "QBO_SANDBOX_WEBHOOK_RETRY_SCALE", 1.0)


def _apps_for(company):
    app_ids = Token.objects.filter(company=company).values_list("app_id", flat=True).distinct()
    return SandboxApp.objects.filter(pk__in=list(app_ids)).exclude(webhook_url="")


def _cloudevents(company, events, now):
    return [
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "intuit.qbo-sandbox",
            "type": f"qbo.{entity_type.lower()}.{verb}.v1",
            "datacontenttype": "application/json",
            "time": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "intuitentityid": str(qbo_id),
            "intuitaccountid": company.realm_id,
            "data": {},
        }
        for entity_type, qbo_id, verb in events
    ]


def _legacy(company, events, now):
    entities = [
        {
            "name": entity_type,
            "id": str(qbo_id),
            "operation": LEGACY_OPERATIONS.get(verb, "Update"),
            "lastUpdated": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        for entity_type, qbo_id, verb in events
    ]
    return {
        "eventNotifications": [
            {"realmId": company.realm_id, "dataChangeEvent": {"entities": entities}}
        ]
    }


def enqueue(company, events):
    """Queue one delivery per connected app for these (entity_type, id, verb) events."""
    if not events:
        return
    now = timezone.now()
    created = 0
    for app in _apps_for(company):
        for start in range(0, len(events), 100):  # at most 100 events per request
            chunk = events[start : start + 100]
            if app.webhook_format == "legacy":
                body = _legacy(company, chunk, now)
            else:
                body = _cloudevents(company, chunk, now)
            WebhookDelivery.objects.create(
                app=app, company=company, body=json.dumps(body), next_attempt_at=now
            )
            created += 1
    if created:
        transaction.on_commit(kick)


def sign(verifier_token, body):
    digest = hmac.new(verifier_token.encode("utf-8"), body.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def _claim(delivery_id, now):
    """Guarded UPDATE: only one process may hold a delivery at a time."""
    return WebhookDelivery.objects.filter(
        Q(in_flight_until__isnull=True) | Q(in_flight_until__lt=now),
        pk=delivery_id,
        status="pending",
    ).update(in_flight_until=now + dt.timedelta(seconds=CLAIM_SECONDS))


def deliver_one(delivery):
    now = timezone.now()
    if _claim(delivery.pk, now) != 1:
        return False
    app = delivery.app
    headers = {
        "content-type": "application/json; charset=utf-8",
        "intuit-signature": sign(app.verifier_token, delivery.body),
        "intuit-created-time": meta_time(delivery.created),
        "intuit-t-id": str(uuid.uuid4()),
        "intuit-notification-schema-version": "0.1",
        "user-agent": "intuit_notification_server/0.1",
    }
    status, error = None, ""
    try:
        response = requests.post(
            app.webhook_url, data=delivery.body.encode("utf-8"), headers=headers,
            timeout=DELIVERY_TIMEOUT,
        )  # fmt: skip
        status = response.status_code
    except requests.RequestException as exc:
        error = str(exc)[:500]
    fields = {
        "attempts": delivery.attempts + 1,
        "last_status": status,
        "last_error": error,
        "in_flight_until": None,
    }
    if status is not None and 200 <= status < 300:
        fields.update(status="delivered", delivered_at=timezone.now())
    elif fields["attempts"] >= MAX_ATTEMPTS:
        fields["status"] = "failed"
    else:
        delay = dt.timedelta(seconds=retry_delay(fields["attempts"]))
        fields["next_attempt_at"] = timezone.now() + delay
    # Guarded: only the claim holder writes back (never re-creates a row deleted meanwhile).
    WebhookDelivery.objects.filter(pk=delivery.pk, status="pending").update(**fields)
    for name, value in fields.items():
        setattr(delivery, name, value)
    return delivery.status == "delivered"


def deliver_due():
    """Send every due delivery once; returns (sent, seconds until the next one or None)."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(status="pending", next_attempt_at__lte=now)
        .select_related("app")
        .order_by("next_attempt_at", "pk")[:50]
    )
    sent = sum(1 for d in due if deliver_one(d))
    upcoming = (
        WebhookDelivery.objects.filter(status="pending")
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    wait = None if upcoming is None else max(0.0, (upcoming - timezone.now()).total_seconds())
    return sent, wait


def flush(*, include_future=True, timeout=10.0):
    """Deliver until nothing is pending (or only failing retries remain after `timeout`)."""
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        if include_future:
            WebhookDelivery.objects.filter(
                status="pending", next_attempt_at__gt=timezone.now()
            ).update(next_attempt_at=timezone.now())
        sent, wait = deliver_due()
        total += sent
        if wait is None:
            break
        if not include_future:
            break
        time.sleep(0.05)
    return total


_lock = threading.Lock()
_worker = None
_wake = threading.Event()
_stop = threading.Event()


def kick():
    """Start (or wake) this process's delivery thread."""
    global _worker
    _stop.clear()
    _wake.set()
    with _lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_loop, name="qbo-sandbox-webhooks", daemon=True)
            _worker.start()


def _loop():
    global _worker
    try:
        while True:
            _deliver_until_idle()
            # kick() wakes us under the same lock: if it did after our last look, go on;
            # otherwise leave, and the next kick() starts a new thread.
            with _lock:
                if _wake.is_set() and not _stop.is_set():
                    continue
                _worker = None
                return
    finally:
        connection.close()


def _deliver_until_idle():
    idle_rounds = 0
    while idle_rounds < 3 and not _stop.is_set():
        _wake.clear()
        try:
            close_old_connections()
            sent, wait = deliver_due()
        except Exception:  # never let the thread die on a DB hiccup
            log.exception("webhook delivery round failed")
            sent, wait = 0, 1.0
        if wait is None and not sent:
            idle_rounds += 1
            _wake.wait(0.2)
            continue
        idle_rounds = 0
        _wake.wait(min(wait if wait is not None else 0.2, 5.0))


_last_resume_check = 0.0


def maybe_resume(every=30.0):
    """Restart delivery after a process restart: at most every `every` s, look for due rows."""
    global _last_resume_check
    now = time.monotonic()
    if now - _last_resume_check < every:
        return
    _last_resume_check = now
    due = WebhookDelivery.objects.filter(status="pending", next_attempt_at__lte=timezone.now())
    if due.exists():
        kick()


def stop(timeout=5.0):
    """Stop this process's delivery thread (tests call it before the database goes away)."""
    _stop.set()
    _wake.set()
    worker = _worker
    if worker is not None and worker.is_alive():
        worker.join(timeout)
