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
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from finance.models import Customer, Invoice, Payment, PaymentApplication
from finance.services import (
    invoice_open_balance,
    invoice_record_quickbooks_balance,
    invoice_refresh_paid_status,
    payment_create,
)
from finance.syncstate import SyncStatus
from finance.validators import printable
from sync.models import ProblemEvent, QuickBooksConnection, WebhookEvent
from sync.services.client import NeedsReconnect, QboError, session_for

logger = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 1_000_000  # Intuit: about 1 MB per CloudEvents request
PULLED_ENTITIES = {"Invoice", "Payment", "Customer"}


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


def _cloud_event_key(item: dict) -> str:
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
    events: list[ChangeEvent] = []
    if isinstance(data, dict) and "specversion" in data:
        data = [data]
    if isinstance(data, list):
        for item in data:
            if not isinstance(item, dict) or "type" not in item:
                raise BadWebhook("CloudEvent without a type")
            parts = str(item["type"]).split(".")  # qbo.payment.created.v1
            if len(parts) < 3:
                raise BadWebhook(f"unknown event type {item['type']!r}")
            verb = parts[2].lower()
            operation = {"created": "create", "updated": "update", "deleted": "delete",
                         "voided": "void", "merged": "merge"}.get(verb, verb)  # fmt: skip
            events.append(
                ChangeEvent(
                    key=_cloud_event_key(item),
                    realm_id=str(item.get("intuitaccountid", "")),
                    entity=parts[1].capitalize() if parts[1] != "creditmemo" else "CreditMemo",
                    entity_id=str(item.get("intuitentityid", "")),
                    operation=operation,
                    occurred_at=str(item.get("time", "")),
                )
            )
        return events
    if isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        for notification in data["eventNotifications"]:
            realm = str(notification.get("realmId", ""))
            entities = (notification.get("dataChangeEvent") or {}).get("entities") or []
            for entity in entities:
                operation = str(entity.get("operation", "")).lower()
                key = ":".join(
                    ["legacy", realm, str(entity.get("name")), str(entity.get("id")), operation,
                     str(entity.get("lastUpdated", ""))]
                )  # fmt: skip
                events.append(
                    ChangeEvent(
                        key=key[:200],
                        realm_id=realm,
                        entity=str(entity.get("name", "")),
                        entity_id=str(entity.get("id", "")),
                        operation=operation,
                        occurred_at=str(entity.get("lastUpdated", "")),
                    )
                )
        return events
    raise BadWebhook("neither CloudEvents nor eventNotifications")


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

    def enqueue():
        from sync.tasks import process_webhook_event

        for pk in new_ids:
            try:
                process_webhook_event.delay(pk)
            except Exception:  # noqa: BLE001 - the beat job processes stored events
                logger.warning("could not enqueue webhook event %s", pk)

    transaction.on_commit(enqueue)
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
    if connection is None or event.entity_name not in PULLED_ENTITIES:
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
    return _event_done(event, WebhookEvent.Outcome.PROCESSED)


def _needs_no_read(connection, event) -> bool:
    """Echoes of our own creates, and new customers/invoices made in QuickBooks (we import
    neither), need no API read: reads share the realm's request budget with pushes."""
    if event.operation != "create":
        return False
    if event.entity_name in {"Customer", "Invoice"}:
        return True
    return Payment.objects.filter(company_id=connection.company_id, qb_id=event.entity_id).exists()


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


def _deleted(obj: dict) -> bool:
    return obj.get("status") == "Deleted"


def _voided(obj: dict) -> bool:
    return obj.get("PrivateNote") == "Voided" and Decimal(str(obj.get("TotalAmt") or 0)) == 0


def _flag(record, reason: str, message: str) -> None:
    model = type(record)
    updated = (
        model.objects.filter(pk=record.pk)
        .exclude(sync_status__in=[SyncStatus.PROBLEM, SyncStatus.CLEARED])
        .update(
            sync_status=SyncStatus.PROBLEM,
            problem_reason=reason,
            problem_since=timezone.now(),
            last_error_code="",
            last_error_message=message,
        )
    )
    if updated:
        ProblemEvent.objects.create(
            record_type=record.sync_type, record_id=record.pk, kind="opened", reason=reason
        )


def apply_change(*, connection, entity: str, obj: dict, session=None) -> str:
    company_id = connection.company_id
    qb_id = str(obj.get("Id", ""))
    if entity == "Invoice":
        invoice = Invoice.objects.filter(company_id=company_id, qb_id=qb_id).first()
        if invoice is None:
            return "unknown"
        if _deleted(obj):
            _flag(invoice, "deleted_in_quickbooks", f"Invoice {qb_id} was deleted in QuickBooks.")
            return "flagged"
        if _voided(obj) and invoice.status != Invoice.Status.VOID:
            _flag(invoice, "voided_in_quickbooks", f"Invoice {qb_id} was voided in QuickBooks.")
            return "flagged"
        balance = obj.get("Balance")
        if balance not in (None, "") and invoice_record_quickbooks_balance(
            invoice=invoice, balance=balance, sync_token=obj.get("SyncToken", "")
        ):
            invoice_refresh_paid_status(invoice=invoice)
        return "updated"
    if entity == "Customer":
        customer = Customer.objects.filter(company_id=company_id, qb_id=qb_id).first()
        if customer is None:
            return "unknown"
        if _deleted(obj) or obj.get("Active") is False:
            _flag(
                customer,
                "deleted_in_quickbooks",
                f"Customer {customer.display_name} was deleted or made inactive in QuickBooks.",
            )
            return "flagged"
        return "seen"
    if entity == "Payment":
        return _apply_payment(company_id=company_id, obj=obj, session=session)
    return "ignored"


def _linked_invoices(obj: dict) -> list[tuple[str, Decimal]]:
    """(invoice Id, amount) for each payment line applied to an invoice."""
    return [
        (str(txn.get("TxnId")), Decimal(str(line.get("Amount") or 0)))
        for line in obj.get("Line") or []
        for txn in line.get("LinkedTxn") or []
        if txn.get("TxnType") == "Invoice"
    ]


def _record_quickbooks_payment(*, company_id, qb_id: str, obj: dict, linked) -> bool:
    """Record a payment received in QuickBooks, once however often and however concurrently it
    is delivered (webhooks repeat, CDC windows overlap): its invoices are locked, then we look
    whether it is already recorded; the unique (company, qb_id) constraint backs that up."""
    try:
        with transaction.atomic():
            invoices = {
                invoice.qb_id: invoice
                for invoice in Invoice.objects.select_for_update()
                .filter(company_id=company_id, qb_id__in=[txn_id for txn_id, _ in linked])
                .select_related("customer", "company")
                .order_by("pk")  # one lock order: concurrent payments never deadlock
            }
            if not invoices:
                return False
            if Payment.objects.filter(company_id=company_id, qb_id=qb_id).exists():
                return False
            first = next(iter(invoices.values()))
            applications = []
            for txn_id, amount in linked:
                invoice = invoices.get(txn_id)
                if invoice is None or invoice.customer_id != first.customer_id or amount <= 0:
                    continue
                open_balance = invoice_open_balance(invoice)
                if open_balance > 0:
                    applications.append((invoice, min(amount, open_balance)))
            if not applications:
                return False
            payment_create(
                company=first.company,
                customer=first.customer,
                amount=sum((a for _, a in applications), Decimal("0")),
                payment_date=(obj.get("TxnDate") or str(timezone.now().date()))[:10],
                applications=applications,
                reference_number=printable(str(obj.get("PaymentRefNum") or ""))[:40],
                origin=Payment.Origin.QUICKBOOKS,
                sync_status=SyncStatus.SYNCED,
                qb_id=qb_id,
            )
            return True
    except IntegrityError:
        return False  # recorded by a concurrent delivery a moment earlier


def _forget_quickbooks_payment(existing: Payment, qb_id: str) -> None:
    """Removed (deleted or voided) in QuickBooks: take its money off our invoices, or flag a
    TMS payment that someone removed there."""
    if existing.origin != Payment.Origin.QUICKBOOKS:
        _flag(existing, "deleted_in_quickbooks", f"Payment {qb_id} was removed in QuickBooks.")
        return
    touched = list(existing.applications.values_list("invoice_id", flat=True))
    PaymentApplication.objects.filter(payment=existing).delete()
    for invoice in Invoice.objects.filter(pk__in=touched):
        invoice_refresh_paid_status(invoice=invoice)


def _refresh_balances(*, company_id, linked, session) -> None:
    """QuickBooks' own balance is the truth for "paid": read it for every invoice touched."""
    if session is None:
        return
    for invoice in Invoice.objects.filter(
        company_id=company_id, qb_id__in=[txn_id for txn_id, _ in linked]
    ).select_related("company__quickbooks_connection"):
        try:
            apply_change(
                connection=invoice.company.quickbooks_connection,
                entity="Invoice",
                obj=session.read("Invoice", invoice.qb_id),
            )
        except QboError:
            logger.info("could not refresh invoice %s balance", invoice.qb_id)


def _apply_payment(*, company_id, obj: dict, session) -> str:
    qb_id = str(obj.get("Id", ""))
    linked = _linked_invoices(obj)
    removed = _deleted(obj) or _voided(obj)
    ours = str(obj.get("PrivateNote") or "").startswith("TMS payment ")
    if removed:
        existing = Payment.objects.filter(company_id=company_id, qb_id=qb_id).first()
        if existing is not None:
            _forget_quickbooks_payment(existing, qb_id)
    elif not ours and linked:
        _record_quickbooks_payment(company_id=company_id, qb_id=qb_id, obj=obj, linked=linked)
    _refresh_balances(company_id=company_id, linked=linked, session=session)
    return "payment"


CDC_CAP = 1000  # QuickBooks silently stops at 1,000 objects per CDC answer


def _cdc_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S%z")


def _changes_since(session, since: datetime) -> dict[str, list[dict]]:
    """All changes since `since`. One call when under the cap; otherwise entity by entity,
    moving the window to the newest change seen until an answer comes back under the cap."""
    changes = session.cdc(sorted(PULLED_ENTITIES), _cdc_time(since))
    if sum(len(objs) for objs in changes.values()) < CDC_CAP:
        return changes
    complete: dict[str, list[dict]] = {}
    for entity in sorted(PULLED_ENTITIES):
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
    # Invoices first, so payments applied to them see their latest state.
    for entity in ("Customer", "Invoice", "Payment"):
        if entity == "Payment" and not fs.pull_payments:
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
