"""Signed webhook notifications to the apps connected to a company, with Intuit's retries.

Events are rows written in the same transaction as the change; after commit a daemon thread
of this process packs each app's pending events, of all its companies, into deliveries of at
most 100 (as Intuit's CloudEvents deliveries are per app, not per company) and sends the due
ones (claimed with a guarded UPDATE, so several web processes never send the same delivery
twice at once). A delivery's body is fixed when it is packed: retries resend it as it is.
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

from .models import SandboxApp, Token, WebhookDelivery, WebhookEvent
from .timefmt import meta_time

log = logging.getLogger(__name__)

# Intuit's retry schedule in seconds (10 s, 20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h, then 6 h).
RETRY_SCHEDULE = [10, 20, 30, 300, 1200, 7200, 14400, 21600]
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 4
LEGACY_OPERATIONS = {"created": "Create", "updated": "Update", "deleted": "Delete",
                     "voided": "Void", "merged": "Merge", "emailed": "Emailed"}  # fmt: skip
CLAIM_SECONDS = 30
DELIVERY_TIMEOUT = 3.0  # Intuit wants a 200 within 3 seconds
MAX_EVENTS = 100  # per request, Intuit's maximum


def retry_delay(attempts):
    base = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1]
    return base * getattr(settings, "QBO_SANDBOX_WEBHOOK_RETRY_SCALE", 1.0)


def coalesce_seconds():
    return getattr(settings, "QBO_SANDBOX_WEBHOOK_COALESCE_SECONDS", 0.0)


def content_type(app):
    """The Content-Type of the app's deliveries: its own choice, else the format's."""
    if app.webhook_content_type:
        return app.webhook_content_type
    if app.webhook_format == "legacy":
        return "application/json; charset=utf-8"
    return "application/cloudevents+json"


def _apps_for(company):
    app_ids = Token.objects.filter(company=company).values_list("app_id", flat=True).distinct()
    return SandboxApp.objects.filter(pk__in=list(app_ids)).exclude(webhook_url="")


def _cloudevent(company, event, now):
    entity_type, qbo_id, verb = event
    return {
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


def _legacy_entity(event, now):
    entity_type, qbo_id, verb = event
    return {
        "name": entity_type,
        "id": str(qbo_id),
        "operation": LEGACY_OPERATIONS.get(verb, "Update"),
        "lastUpdated": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def _legacy_body(events):
    """One eventNotifications element per realm, in the order the realms first appear."""
    by_realm: dict[str, list] = {}
    for event in events:
        by_realm.setdefault(event.company.realm_id, []).append(json.loads(event.payload))
    return {
        "eventNotifications": [
            {"realmId": realm, "dataChangeEvent": {"entities": entities}}
            for realm, entities in by_realm.items()
        ]
    }


def _body(events):
    if events[0].webhook_format == "legacy":
        return _legacy_body(events)
    return [json.loads(event.payload) for event in events]


def enqueue(company, events):
    """Record these (entity_type, id, verb) events for every connected app with a webhook URL.
    Each event's payload (its CloudEvent id too) is fixed now; the delivery loop packs them."""
    if not events:
        return
    now = timezone.now()
    due = now + dt.timedelta(seconds=coalesce_seconds())
    rows = [
        WebhookEvent(
            app=app,
            company=company,
            webhook_format=app.webhook_format,
            payload=json.dumps(
                _legacy_entity(event, now)
                if app.webhook_format == "legacy"
                else _cloudevent(company, event, now)
            ),
            created=now,
            due_at=due,
        )
        for app in _apps_for(company)
        for event in events
    ]
    if rows:
        WebhookEvent.objects.bulk_create(rows)
        transaction.on_commit(kick)


def pack_due(*, everything=False):
    """Turn pending events into deliveries: once an app's oldest pending event is due, all its
    pending events, of any of its companies, go out together, at most 100 per request (one
    format per request). Returns how many deliveries were made."""
    pending = WebhookEvent.objects.filter(delivery__isnull=True)
    due = pending if everything else pending.filter(due_at__lte=timezone.now())
    made = 0
    for app_id, fmt in due.values_list("app_id", "webhook_format").distinct():
        while _pack_one(app_id, fmt):
            made += 1
    return made


def _pack_one(app_id, fmt):
    """One delivery of up to 100 of the app's pending events; False when none was left."""
    with transaction.atomic():
        ids = list(
            WebhookEvent.objects.filter(app_id=app_id, webhook_format=fmt, delivery__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:MAX_EVENTS]
        )
        if not ids:
            return False
        app = SandboxApp.objects.get(pk=app_id)
        delivery = WebhookDelivery.objects.create(
            app=app, body="", content_type=content_type(app), next_attempt_at=timezone.now()
        )
        # Guarded: an event another process packed meanwhile is not taken twice.
        WebhookEvent.objects.filter(pk__in=ids, delivery__isnull=True).update(delivery=delivery)
        events = list(delivery.events.select_related("company").order_by("pk"))
        if not events:
            delivery.delete()
            return True  # lost the race for these; look again
        realms = {event.company_id for event in events}
        delivery.company_id = realms.pop() if len(realms) == 1 else None
        delivery.body = json.dumps(_body(events))
        delivery.save(update_fields=["company", "body"])
    return True


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
        "content-type": delivery.content_type,
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
    """Pack due events, send every due delivery once; returns (sent, seconds until the next
    delivery or event is due, or None)."""
    pack_due()
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
    next_event = (
        WebhookEvent.objects.filter(delivery__isnull=True)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    moments = [m for m in (upcoming, next_event) if m is not None]
    if not moments:
        return sent, None
    return sent, max(0.0, (min(moments) - timezone.now()).total_seconds())


def flush(*, include_future=True, timeout=10.0):
    """Deliver until nothing is pending (or only failing retries remain after `timeout`)."""
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        if include_future:
            pack_due(everything=True)
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
    now = timezone.now()
    due = WebhookDelivery.objects.filter(status="pending", next_attempt_at__lte=now)
    if due.exists() or WebhookEvent.objects.filter(delivery__isnull=True, due_at__lte=now).exists():
        kick()


def stop(timeout=5.0):
    """Stop this process's delivery thread (tests call it before the database goes away)."""
    _stop.set()
    _wake.set()
    worker = _worker
    if worker is not None and worker.is_alive():
        worker.join(timeout)
