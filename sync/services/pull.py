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
from django.db.models import F
from django.utils import timezone

from sync.mappers import MAPPERS, PULLED
from sync.models import QuickBooksConnection, WebhookEvent
from sync.services import usage
from sync.services.client import NeedsReconnect, QboError, QboObject, QuickBooksSession, session_for
from sync.services.locks import LockTimeout, single_flight

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
    """Verify and store; Intuit wants the answer within 3 s, so nothing else happens here.
    Returns ids of new events (repeats are counted, not stored again). The beat pass decides
    each event a few seconds later (SYNC_WEBHOOK_ECHO_GRACE_SECONDS): Intuit announces our own
    writes too, and by then the push that caused one has settled, so the echo is known as ours
    and costs no read."""
    if not signature_valid(body, signature):
        raise PermissionError("invalid intuit-signature")
    events = [e for e in parse_webhook(body) if e.entity_id and e.realm_id]
    by_key = {event.key: event for event in events}  # one delivery may repeat an event
    usage.note_webhooks(realm_ids={event.realm_id for event in events})
    if not by_key:
        return []
    seen = set(
        WebhookEvent.objects.filter(event_key__in=list(by_key)).values_list("event_key", flat=True)
    )
    due = timezone.now() + timedelta(seconds=settings.SYNC_WEBHOOK_ECHO_GRACE_SECONDS)
    fresh = [
        WebhookEvent(
            event_key=event.key,
            realm_id=event.realm_id,
            entity_name=event.entity,
            entity_id=event.entity_id,
            operation=event.operation,
            occurred_at=event.occurred_at,
            next_attempt_at=due,
        )
        for key, event in by_key.items()
        if key not in seen
    ]
    # A redelivery racing this one stores its copy first: ignore_conflicts keeps it single.
    WebhookEvent.objects.bulk_create(fresh, ignore_conflicts=True)
    if seen:
        WebhookEvent.objects.filter(event_key__in=seen).update(deliveries=F("deliveries") + 1)
    return list(
        WebhookEvent.objects.filter(event_key__in=[event.event_key for event in fresh]).values_list(
            "pk", flat=True
        )
    )


WEBHOOK_MAX_ATTEMPTS = 8  # then the event is given up on; the CDC sweep still sees the change
WEBHOOK_RETRY_BASE_SECONDS = 30
WEBHOOK_RETRY_MAX_SECONDS = 3600


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
    """Decide one stored event: not ours, our own echo, a deletion (no read needed), or a
    change to take in — then the realm's change pull is asked for (one CDC per burst, not
    one read per event). The event stays open until that pull has run."""
    event = WebhookEvent.objects.filter(pk=event_id, processed_at__isnull=True).first()
    if event is None:
        return "done"
    connection = QuickBooksConnection.objects.filter(realm_id=event.realm_id).first()
    if connection is None or event.entity_name not in PULLED:
        return _event_done(event, WebhookEvent.Outcome.IGNORED, "not for us")
    if _needs_no_read(connection, event):
        return _event_done(event, WebhookEvent.Outcome.SKIPPED)
    if event.operation == "delete":
        try:
            gone = {"Id": event.entity_id, "status": "Deleted"}
            apply_change(connection=connection, entity=event.entity_name, obj=gone)
        except Exception as exc:  # noqa: BLE001 - a bug must not make the event a poison pill
            logger.exception("webhook event %s failed", event.pk)
            error = f"{exc.__class__.__name__}: {exc}"
            return _event_later(event, error, delay=_event_backoff(event.attempts), counted=True)
        return _event_done(event, WebhookEvent.Outcome.PROCESSED)
    due = request_pull(connection_id=connection.pk)
    # Looked at again only if that pull has not taken it in by then (it failed, or waits).
    later = (due - timezone.now()).total_seconds() + settings.SYNC_PULL_SECONDS
    WebhookEvent.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=max(later, 60))
    )
    return "pull_requested"


def request_pull(*, connection_id: int) -> datetime:
    """The realm's next change pull, a debounce after the first event that asked for it: the
    events of a burst share that one CDC call. Returns when it is due."""
    due = timezone.now() + timedelta(seconds=settings.SYNC_PULL_DEBOUNCE_SECONDS)
    QuickBooksConnection.objects.filter(pk=connection_id, pull_requested_at__isnull=True).update(
        pull_requested_at=due
    )
    requested = QuickBooksConnection.objects.values_list("pull_requested_at", flat=True).get(
        pk=connection_id
    )
    return requested or due


def _needs_no_read(connection: QuickBooksConnection, event: WebhookEvent) -> bool:
    """Echoes of our own writes, and new objects of types we never import from QuickBooks,
    need no pull: reads are metered and share the realm's budget with pushes."""
    route = PULLED[event.entity_name]
    if event.operation == "create" and not route.creates:
        return True
    if route.model is None:  # not a record of ours: it cannot be our echo
        return False
    ours = route.model.objects.filter(company_id=connection.company_id, qb_id=event.entity_id)
    if event.operation == "create":
        return ours.exists()
    changed_at = _event_time(event.occurred_at)
    if changed_at is None or event.operation not in {"update", "void"}:
        return False
    # Our write of it settled after QuickBooks made this change: the change is that write.
    return ours.filter(last_synced_at__gte=changed_at).exists()


def _event_time(value: str) -> datetime | None:
    """Intuit's event times: ISO 8601, up to nanoseconds (more than datetime takes)."""
    match = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?", value.strip())
    if match is None:
        return None
    base, fraction, zone = match.groups()
    text = base + (fraction or "")[:7] + ("+00:00" if zone in (None, "Z") else zone)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def webhook_events_process_pending(*, limit: int = 500) -> int:
    """The beat job's pass: stored events due now, soonest due first (an event that keeps
    failing moves back in the line instead of blocking it), then the change pulls they asked
    for that are due."""
    due = WebhookEvent.objects.filter(
        processed_at__isnull=True, next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at", "pk")
    done = 0
    for pk in list(due.values_list("pk", flat=True)[:limit]):
        if webhook_event_process(event_id=pk) not in {"retry", "pull_requested"}:
            done += 1
    run_requested_pulls()
    return done


def run_requested_pulls() -> int:
    """The change pulls webhooks asked for, once their debounce has passed."""
    ran = 0
    for connection in QuickBooksConnection.objects.filter(
        status=QuickBooksConnection.Status.CONNECTED, pull_requested_at__lte=timezone.now()
    ).select_related("company__finance_settings"):
        if _pull_quietly(connection, purpose="webhook_pull") is not None:
            ran += 1
    return ran


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


def changes_since(
    session: QuickBooksSession, since: datetime, entities: list[str] | None = None
) -> dict[str, list[QboObject]]:
    """All changes since `since`, in as few calls as the cap allows (each is a metered read):
    one call when under the cap; otherwise the entities absent from the cut answer in one call
    again, and those present page by page, the window moving to the newest change seen."""
    entities = entities or sorted(PULLED)
    changes = session.cdc(entities, _cdc_time(since))
    if sum(len(objs) for objs in changes.values()) < CDC_CAP:
        return changes
    present = [entity for entity in entities if changes.get(entity)]
    absent = [entity for entity in entities if entity not in present]
    complete = changes_since(session, since, absent) if absent else {}
    if len(present) == 1 and not absent:
        present_pages = {present[0]: _pages(session, present[0], since, changes[present[0]])}
    else:
        present_pages = {entity: _pages(session, entity, since) for entity in present}
    return {**complete, **present_pages}


def _pages(
    session: QuickBooksSession,
    entity: str,
    since: datetime,
    first: list[QboObject] | None = None,
) -> list[QboObject]:
    window, objs = since, []
    for _ in range(100):
        batch = (
            first if first is not None else session.cdc([entity], _cdc_time(window)).get(entity, [])
        )
        first = None
        objs.extend(batch)
        times = [
            datetime.fromisoformat(o["MetaData"]["LastUpdatedTime"])
            for o in batch
            if (o.get("MetaData") or {}).get("LastUpdatedTime")
        ]
        if len(batch) < CDC_CAP or not times or max(times) <= window:
            break
        window = max(times)  # overlap is harmless: applying a change twice is a no-op
    return objs


def pull_changes(
    *, connection: QuickBooksConnection, purpose: str = "manual_pull"
) -> dict[str, int]:
    """CDC since the stored cursor (≤ 30 days), applied in order; the cursor moves on success,
    and the webhook events received before it started are taken in by it."""
    started = timezone.now()
    # Claimed: events arriving from now on ask for a pull of their own.
    QuickBooksConnection.objects.filter(pk=connection.pk).update(pull_requested_at=None)
    fs = connection.company.finance_settings
    # QuickBooks refuses a changedSince older than 30 days; stay a few minutes inside it.
    floor = started - timedelta(days=min(30, fs.payment_pull_days)) + timedelta(minutes=5)
    since = max(connection.pull_cursor or floor, floor)
    session = session_for(connection)
    try:
        with usage.purpose(purpose):
            counts = _apply_changes(session, connection, changes_since(session, since))
    except Exception as exc:
        _pull_failed(connection, exc)
        raise
    # Overlap the next window a little: our clock and Intuit's are not the same clock.
    QuickBooksConnection.objects.filter(pk=connection.pk).update(
        pull_cursor=started - timedelta(seconds=60),
        last_pull_at=timezone.now(),
        pull_failures=0,
        last_pull_error="",
    )
    WebhookEvent.objects.filter(
        realm_id=connection.realm_id, processed_at__isnull=True, received_at__lt=started
    ).update(processed_at=timezone.now(), outcome=WebhookEvent.Outcome.PULLED, error="")
    usage.reads_resumed()
    return counts


def _pull_failed(connection: QuickBooksConnection, exc: Exception) -> None:
    """Not taken in: the events that asked for the pull still want it, after a back-off (a
    failing pull must not spend a metered read every pass)."""
    failures = QuickBooksConnection.objects.values_list("pull_failures", flat=True).get(
        pk=connection.pk
    )
    if isinstance(exc, QboError) and exc.kind == "reads_refused":
        delay = float(exc.retry_after or settings.SYNC_READS_PROBE_SECONDS)
    elif isinstance(exc, QboError) and exc.kind == "throttle":
        delay = exc.retry_after or settings.QBO_THROTTLE_BACKOFF_SECONDS
    else:
        delay = _event_backoff(failures)
    QuickBooksConnection.objects.filter(pk=connection.pk).update(
        pull_requested_at=timezone.now() + timedelta(seconds=delay),
        pull_failures=min(failures + 1, 1000),
        last_pull_error=f"{exc.__class__.__name__}: {exc}"[:500],
    )


def _apply_changes(
    session: QuickBooksSession,
    connection: QuickBooksConnection,
    changes: dict[str, list[QboObject]],
) -> dict[str, int]:
    fs = connection.company.finance_settings
    # The answer holds each changed object's latest version: a hook wanting one (a payment's
    # invoices) takes it from here rather than reading it again.
    for entity, objs in changes.items():
        for obj in objs:
            if obj.get("Id") and obj.get("status") != "Deleted":
                session.known[entity, str(obj["Id"])] = obj
    counts: dict[str, int] = {}
    # In dependency order, so payments applied to invoices see the invoices' latest state.
    for entity, route in PULLED.items():
        if route.toggle and not getattr(fs, route.toggle):
            continue
        for obj in changes.get(entity, []):
            outcome = apply_change(connection=connection, entity=entity, obj=obj, session=session)
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def webhooks_healthy(connection: QuickBooksConnection, now: datetime) -> bool:
    """Webhooks are configured, have reached us for this realm, and followed our writes."""
    if not settings.QBO_WEBHOOK_VERIFIER_TOKEN or connection.last_webhook_at is None:
        return False
    unechoed = connection.unechoed_write_at
    return unechoed is None or now - unechoed < timedelta(
        seconds=settings.SYNC_WEBHOOK_SILENCE_SECONDS
    )


def pull_interval(connection: QuickBooksConnection, now: datetime) -> int:
    """The safety sweep's interval: long while webhooks bring the changes, short otherwise."""
    if webhooks_healthy(connection, now):
        return settings.SYNC_SAFETY_PULL_SECONDS
    return settings.SYNC_PULL_SECONDS


def pull_schedule(connection: QuickBooksConnection) -> dict[str, Any]:
    """How this tenant's changes come in, for its QuickBooks page."""
    now = timezone.now()
    healthy = webhooks_healthy(connection, now)
    if not settings.QBO_WEBHOOK_VERIFIER_TOKEN:
        why = "webhooks are not configured (QBO_WEBHOOK_VERIFIER_TOKEN)"
    elif connection.last_webhook_at is None:
        why = "no webhook has arrived from this QuickBooks company yet"
    elif not healthy:
        why = "webhooks went silent after our writes"
    else:
        why = ""
    return {
        "webhooks_healthy": healthy,
        "why_short": why,
        "interval": _spoken(pull_interval(connection, now)),
        "last_pull_at": connection.last_pull_at,
        "last_webhook_at": connection.last_webhook_at,
        "last_pull_error": connection.last_pull_error,
        "paused": usage.reads_pause(),
    }


def _spoken(seconds: int) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def pull_purpose_due(connection: QuickBooksConnection, now: datetime) -> str | None:
    if connection.pull_requested_at is not None and connection.pull_requested_at <= now:
        return "webhook_pull"
    if connection.last_pull_at is None:
        return "safety_pull"
    # Half a beat tick of slack: a sweep due a second after this tick is not put off a tick.
    slack = timedelta(seconds=settings.SYNC_PULL_SECONDS / 2)
    if now - connection.last_pull_at + slack >= timedelta(seconds=pull_interval(connection, now)):
        return "safety_pull"
    return None


def _pull_quietly(
    connection: QuickBooksConnection, *, purpose: str, now: datetime | None = None
) -> dict[str, int] | None:
    """One pull; a failure is logged (the next tick tries again), never raised to beat."""
    if usage.reads_paused_now() is not None:
        return None
    try:
        # One pull of a realm at a time: beat passes overlap when a pull is slow, and a second
        # CDC over the same window is a read spent for nothing. A request made while one runs
        # stays for the next pass.
        with single_flight(f"pull:{connection.realm_id}", timeout=600, wait=0):
            connection.refresh_from_db()
            if purpose == "webhook_pull" and not _still_requested(connection, now):
                return None
            return pull_changes(connection=connection, purpose=purpose)
    except LockTimeout:
        return None
    except (QboError, NeedsReconnect) as exc:
        logger.warning("pull for realm %s failed: %s", connection.realm_id, exc)
    except Exception:  # noqa: BLE001 - one tenant's bug must not stop the others' pulls
        logger.exception("pull for realm %s failed", connection.realm_id)
    return None


def _still_requested(connection: QuickBooksConnection, now: datetime | None) -> bool:
    requested = connection.pull_requested_at
    return requested is not None and requested <= (now or timezone.now())


def pull_all(*, now: datetime | None = None) -> dict[str, int]:
    """Beat's pull tick: each connected tenant whose pull is due (asked for by its webhooks, or
    its safety sweep). While Intuit refuses reads, nothing is read but one probe an hour."""
    now = now or timezone.now()
    totals: dict[str, int] = {}
    for connection in QuickBooksConnection.objects.filter(
        status=QuickBooksConnection.Status.CONNECTED
    ).select_related("company__finance_settings"):
        purpose = pull_purpose_due(connection, now)
        if purpose is None:
            continue
        for key, value in (_pull_quietly(connection, purpose=purpose, now=now) or {}).items():
            totals[key] = totals.get(key, 0) + value
    return totals
