"""Pull (QuickBooks → TMS): webhooks and the CDC sweep.

Payments applied in QuickBooks to synced invoices mark them paid or partly paid here (stored
as QuickBooks-origin payments, never pushed back); invoices or customers deleted or voided in
QuickBooks become problems. Every path is idempotent: deliveries repeat, CDC windows overlap.
"""

import base64
import hashlib
import hmac
import json
import logging
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sync.mappers import MAPPERS, PULLED
from sync.models import QuickBooksConnection, WebhookEvent
from sync.services import enqueue
from sync.services.client import NeedsReconnect, QboError, QboObject, QuickBooksSession, session_for

logger = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 1_000_000  # Intuit: about 1 MB per CloudEvents request


class BadWebhook(ValueError):
    pass


def signature_valid(body: bytes, signature: str) -> bool:
    token = settings.QBO_WEBHOOK_VERIFIER_TOKEN
    if not token or not signature:
        return False
    expected = base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature.strip())


@dataclass(frozen=True)
class ChangeEvent:
    key: str
    realm_id: str
    entity: str
    entity_id: str
    operation: str  # create | update | delete | void | merge | emailed
    occurred_at: str


# Longest value each stored field accepts (WebhookEvent columns): longer is not from Intuit.
_EVENT_LIMITS = {"key": 200, "realm_id": 32, "entity": 40, "entity_id": 32, "operation": 20,
                 "occurred_at": 40}  # fmt: skip


def parse_webhook(body: bytes) -> list[ChangeEvent]:
    """Both formats, refusing anything else with BadWebhook (never a 500 or a half-stored body)."""
    try:
        events = _parse_webhook(body)
    except (AttributeError, TypeError, KeyError) as exc:
        raise BadWebhook(f"unexpected structure ({exc.__class__.__name__})") from exc
    for event in events:
        for name, limit in _EVENT_LIMITS.items():
            if len(getattr(event, name)) > limit:
                raise BadWebhook(f"{name} longer than {limit} characters")
        # These end up in QuickBooks URLs (…/company/<realm>/<entity>/<id>): only QuickBooks'
        # own shapes, never a path.
        for name in ("realm_id", "entity_id"):
            value = getattr(event, name)
            if value and not (value.isascii() and value.isdigit()):
                raise BadWebhook(f"{name} {value[:40]!r} is not a QuickBooks id")
        if event.entity and not _ENTITY_NAME.fullmatch(event.entity):
            raise BadWebhook(f"entity {event.entity[:40]!r} is not a QuickBooks entity name")
    return events


_ENTITY_NAME = re.compile(r"[A-Za-z]{1,40}")


def _cloud_event_key(item: dict[str, Any]) -> str:
    """Intuit keeps an event's `id` across redeliveries. Without one, the event's own content
    identifies it: a repeat is still a repeat, a different event is not taken for one."""
    if item.get("id") not in (None, ""):
        return f"ce:{item['id']}"
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return "ce-sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _parse_webhook(body: bytes) -> list[ChangeEvent]:
    """Both formats: CloudEvents (a JSON array) and legacy `eventNotifications`."""
    if len(body) > MAX_WEBHOOK_BYTES:
        raise BadWebhook("body too large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadWebhook("body is not JSON") from exc
    except RecursionError as exc:
        raise BadWebhook("body is nested too deeply") from exc
    if isinstance(data, dict) and "specversion" in data:
        data = [data]
    if isinstance(data, list):
        return [_cloud_event(item) for item in data]
    if isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        return [
            _legacy_event(str(notification.get("realmId", "")), entity)
            for notification in data["eventNotifications"]
            for entity in (notification.get("dataChangeEvent") or {}).get("entities") or []
        ]
    raise BadWebhook("neither CloudEvents nor eventNotifications")


_VERBS = {"created": "create", "updated": "update", "deleted": "delete", "voided": "void",
          "merged": "merge"}  # fmt: skip
# "creditmemo" in an event type is QuickBooks' "CreditMemo", "billpayment" "BillPayment".
_ENTITY_NAMES = {
    name.lower(): name for name in [*(mapper.entity for mapper in MAPPERS.values()), *PULLED]
}


def _cloud_event(item: object) -> ChangeEvent:
    if not isinstance(item, dict) or "type" not in item:
        raise BadWebhook("CloudEvent without a type")
    parts = str(item["type"]).split(".")  # qbo.payment.created.v1
    if len(parts) < 3:
        raise BadWebhook(f"unknown event type {item['type']!r}")
    verb = parts[2].lower()
    return ChangeEvent(
        key=_cloud_event_key(item),
        realm_id=str(item.get("intuitaccountid", "")),
        entity=_ENTITY_NAMES.get(parts[1].lower(), parts[1].capitalize()),
        entity_id=str(item.get("intuitentityid", "")),
        operation=_VERBS.get(verb, verb),
        occurred_at=str(item.get("time", "")),
    )


def _legacy_event(realm: str, entity: dict[str, Any]) -> ChangeEvent:
    operation = str(entity.get("operation", "")).lower()
    key = ":".join(
        ["legacy", realm, str(entity.get("name")), str(entity.get("id")), operation,
         str(entity.get("lastUpdated", ""))]
    )  # fmt: skip
    return ChangeEvent(
        key=key[:200],
        realm_id=realm,
        entity=str(entity.get("name", "")),
        entity_id=str(entity.get("id", "")),
        operation=operation,
        occurred_at=str(entity.get("lastUpdated", "")),
    )


def webhook_receive(*, body: bytes, signature: str) -> list[int]:
    """Verify, store, enqueue. Returns ids of new events (repeats are counted, not redone)."""
    if not signature_valid(body, signature):
        raise PermissionError("invalid intuit-signature")
    events = parse_webhook(body)
    new_ids = []
    for event in events:
        if not event.entity_id or not event.realm_id:
            continue
        try:
            with transaction.atomic():
                stored = WebhookEvent.objects.create(
                    event_key=event.key,
                    realm_id=event.realm_id,
                    entity_name=event.entity,
                    entity_id=event.entity_id,
                    operation=event.operation,
                    occurred_at=event.occurred_at,
                )
            new_ids.append(stored.pk)
        except IntegrityError:
            WebhookEvent.objects.filter(event_key=event.key).update(deliveries=F("deliveries") + 1)

    enqueue.webhook_events(new_ids)
    return new_ids


WEBHOOK_MAX_ATTEMPTS = 8  # then the event is given up on; the CDC sweep still sees the change
WEBHOOK_RETRY_BASE_SECONDS = 30
WEBHOOK_RETRY_MAX_SECONDS = 3600
RECONNECT_WAIT_SECONDS = 300


def _event_done(event: WebhookEvent, outcome: str, error: str = "") -> str:
    WebhookEvent.objects.filter(pk=event.pk).update(
        processed_at=timezone.now(), outcome=outcome, error=error[:500]
    )
    return outcome


def _event_later(event: WebhookEvent, error: str, *, delay: float, counted: bool) -> str:
    """Try again after `delay`; a counted failure spends one of the event's attempts."""
    attempts = event.attempts + (1 if counted else 0)
    if counted and attempts >= WEBHOOK_MAX_ATTEMPTS:
        WebhookEvent.objects.filter(pk=event.pk).update(attempts=attempts)
        logger.warning("webhook event %s given up after %s attempts: %s", event.pk, attempts, error)
        return _event_done(event, WebhookEvent.Outcome.FAILED, error)
    WebhookEvent.objects.filter(pk=event.pk).update(
        attempts=attempts,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        error=error[:500],
    )
    return "retry"


def _event_backoff(attempts: int) -> float:
    delay = min(WEBHOOK_RETRY_BASE_SECONDS * 2**attempts, WEBHOOK_RETRY_MAX_SECONDS)
    return delay * random.uniform(0.9, 1.1)


def webhook_event_process(*, event_id: int) -> str:
    event = WebhookEvent.objects.filter(pk=event_id, processed_at__isnull=True).first()
    if event is None:
        return "done"
    connection = QuickBooksConnection.objects.filter(realm_id=event.realm_id).first()
    if connection is None or event.entity_name not in PULLED:
        return _event_done(event, WebhookEvent.Outcome.IGNORED, "not for us")
    if _needs_no_read(connection, event):
        return _event_done(event, WebhookEvent.Outcome.SKIPPED)
    try:
        session = session_for(connection)
        if event.operation == "delete":
            obj = {"Id": event.entity_id, "status": "Deleted"}
        else:
            obj = session.read(event.entity_name, event.entity_id)
        apply_change(connection=connection, entity=event.entity_name, obj=obj, session=session)
    except NeedsReconnect as exc:
        # Not the event's fault: it waits for the connection without spending attempts.
        return _event_later(event, str(exc), delay=RECONNECT_WAIT_SECONDS, counted=False)
    except QboError as exc:
        if exc.kind == "not_found":
            # QuickBooks no longer has it (deleted, or merged away): a deletion, not a retry.
            gone = {"Id": event.entity_id, "status": "Deleted"}
            apply_change(connection=connection, entity=event.entity_name, obj=gone)
            return _event_done(event, WebhookEvent.Outcome.GONE, str(exc))
        if exc.kind == "throttle":
            delay = exc.retry_after or settings.QBO_THROTTLE_BACKOFF_SECONDS
            return _event_later(event, str(exc), delay=delay, counted=False)
        return _event_later(event, str(exc), delay=_event_backoff(event.attempts), counted=True)
    except Exception as exc:  # noqa: BLE001 - a bug must not make the event a poison pill
        logger.exception("webhook event %s failed", event.pk)
        error = f"{exc.__class__.__name__}: {exc}"
        return _event_later(event, error, delay=_event_backoff(event.attempts), counted=True)
    return _event_done(event, WebhookEvent.Outcome.PROCESSED)


def _needs_no_read(connection: QuickBooksConnection, event: WebhookEvent) -> bool:
    """Echoes of our own creates, and new objects of types we never import from QuickBooks,
    need no API read: reads are metered and share the realm's budget with pushes."""
    if event.operation != "create":
        return False
    route = PULLED[event.entity_name]
    if not route.creates:
        return True
    if route.model is None:  # not a record of ours: it cannot be our echo
        return False
    return route.model.objects.filter(
        company_id=connection.company_id, qb_id=event.entity_id
    ).exists()


def webhook_events_process_pending(*, limit: int = 200) -> int:
    """The beat job's pass over stored events: those due now, soonest due first (an event that
    keeps failing moves back in the line instead of blocking it)."""
    due = WebhookEvent.objects.filter(
        processed_at__isnull=True, next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at", "pk")
    done = 0
    for pk in list(due.values_list("pk", flat=True)[:limit]):
        if webhook_event_process(event_id=pk) != "retry":
            done += 1
    return done


# --- applying what changed --------------------------------------------------------------


def apply_change(
    *,
    connection: QuickBooksConnection,
    entity: str,
    obj: QboObject,
    session: QuickBooksSession | None = None,
) -> str:
    """Hand a changed QuickBooks object to its type's pull hook (sync/services/pull_apply.py)."""
    route = PULLED.get(entity)
    if route is None:
        return "ignored"
    return route.hook(connection=connection, obj=obj, session=session)


CDC_CAP = 1000  # QuickBooks silently stops at 1,000 objects per CDC answer


def _cdc_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S%z")


def _changes_since(session: QuickBooksSession, since: datetime) -> dict[str, list[QboObject]]:
    """All changes since `since`. One call when under the cap; otherwise entity by entity,
    moving the window to the newest change seen until an answer comes back under the cap."""
    changes = session.cdc(sorted(PULLED), _cdc_time(since))
    if sum(len(objs) for objs in changes.values()) < CDC_CAP:
        return changes
    complete: dict[str, list[QboObject]] = {}
    for entity in sorted(PULLED):
        window, objs = since, []
        for _ in range(100):
            batch = session.cdc([entity], _cdc_time(window)).get(entity, [])
            objs.extend(batch)
            times = [
                datetime.fromisoformat(o["MetaData"]["LastUpdatedTime"])
                for o in batch
                if (o.get("MetaData") or {}).get("LastUpdatedTime")
            ]
            if len(batch) < CDC_CAP or not times or max(times) <= window:
                break
            window = max(times)  # overlap is harmless: applying a change twice is a no-op
        complete[entity] = objs
    return complete


def pull_changes(*, connection: QuickBooksConnection) -> dict[str, int]:
    """CDC since the stored cursor (≤ 30 days), applied in order; the cursor moves on success."""
    started = timezone.now()
    fs = connection.company.finance_settings
    # QuickBooks refuses a changedSince older than 30 days; stay a few minutes inside it.
    floor = started - timedelta(days=min(30, fs.payment_pull_days)) + timedelta(minutes=5)
    since = max(connection.pull_cursor or floor, floor)
    session = session_for(connection)
    changes = _changes_since(session, since)
    counts: dict[str, int] = {}
    # In dependency order, so payments applied to invoices see the invoices' latest state.
    for entity, route in PULLED.items():
        if route.toggle and not getattr(fs, route.toggle):
            continue
        for obj in changes.get(entity, []):
            outcome = apply_change(connection=connection, entity=entity, obj=obj, session=session)
            counts[outcome] = counts.get(outcome, 0) + 1
    # Overlap the next window a little: our clock and Intuit's are not the same clock.
    QuickBooksConnection.objects.filter(pk=connection.pk).update(
        pull_cursor=started - timedelta(seconds=60), last_pull_at=timezone.now()
    )
    return counts


def pull_all() -> dict[str, int]:
    totals: dict[str, int] = {}
    for connection in QuickBooksConnection.objects.filter(
        status=QuickBooksConnection.Status.CONNECTED
    ).select_related("company__finance_settings"):
        try:
            for key, value in pull_changes(connection=connection).items():
                totals[key] = totals.get(key, 0) + value
        except (QboError, NeedsReconnect) as exc:
            logger.warning("pull for realm %s failed: %s", connection.realm_id, exc)
    return totals
