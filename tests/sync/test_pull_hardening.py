"""Pull under attack: one QuickBooks payment replayed at once, and webhook events that poison
the queue (holes found by the adversarial run on the demo, docs/reliability.md)."""

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import close_old_connections
from django.utils import timezone

from finance.models import Invoice, Payment
from sync.models import QuickBooksConnection, WebhookEvent
from sync.services import pull
from sync.services.engine import SyncContext
from tests.sync.test_pull import receive_in_quickbooks, signed

pytestmark = pytest.mark.django_db(transaction=True)

DELIVERIES = 20


def cloud_event(qbo, entity: str, entity_id: str, n: int, verb: str = "updated") -> bytes:
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": f"evt-{entity_id}-{n}",
                "source": "intuit.qbo",
                "type": f"qbo.{entity.lower()}.{verb}.v1",
                "time": timezone.now().isoformat(),  # when QuickBooks made the change
                "intuitaccountid": qbo.realm,
                "intuitentityid": entity_id,
                "data": {},
            }
        ]
    ).encode()


def at_once(jobs):
    """Run every job in its own thread, released together, each with its own DB connection."""
    barrier = threading.Barrier(len(jobs))
    errors = []

    def run(job):
        try:
            barrier.wait(timeout=30)
            job()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_it_records_a_quickbooks_payment_once_under_20_concurrent_deliveries_and_cdc(
    qbo, synced_invoice, settings
):
    # A partial payment plus repeated payment.updated webhooks and a CDC pass, all at once:
    # before, 4 of 14 payments were recorded twice (the "already recorded?" check ran unlocked).
    settings.QBO_RATE_LIMIT_ENABLED = False  # 21 readers at once; pacing is not the point here
    remote = receive_in_quickbooks(qbo, synced_invoice, Decimal("100.00"))
    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    bodies = [cloud_event(qbo, "Payment", remote["Id"], n) for n in range(DELIVERIES)]

    def deliver(body):
        return lambda: [
            pull.webhook_event_process(event_id=pk)
            for pk in pull.webhook_receive(body=body, signature=signed(body))
        ]

    jobs = [deliver(body) for body in bodies]
    jobs.append(lambda: pull.pull_changes(connection=connection))
    errors = at_once(jobs)

    assert errors == []
    assert Payment.objects.filter(qb_id=remote["Id"]).count() == 1
    invoice = Invoice.objects.get(pk=synced_invoice.pk)
    assert invoice.applications.get().amount == Decimal("100.00")
    assert invoice.status == Invoice.Status.PARTIALLY_PAID


def test_an_event_for_an_object_quickbooks_deleted_is_taken_in_by_the_pull(
    qbo, synced_invoice, settings
):
    # QuickBooks deleted the invoice: the event asks for the realm's change pull, whose answer
    # holds the deletion; the event is closed by it instead of being read again every pass.
    qbo_api_delete(qbo, synced_invoice)
    body = cloud_event(qbo, "Invoice", synced_invoice.qb_id, 1)
    (event_id,) = pull.webhook_receive(body=body, signature=signed(body))

    assert pull.webhook_event_process(event_id=event_id) == "pull_requested"
    assert pull.run_requested_pulls() == 1

    event = WebhookEvent.objects.get(pk=event_id)
    assert event.outcome == "pulled" and event.processed_at is not None
    invoice = Invoice.objects.get(pk=synced_invoice.pk)
    assert (invoice.sync_status, invoice.problem_reason) == ("problem", "deleted_in_quickbooks")


def qbo_api_delete(qbo, invoice):
    """A QuickBooks user deletes the invoice (through the API, as the sandbox UI does)."""
    session = SyncContext.for_company(invoice.company_id).session
    current = session.read("Invoice", invoice.qb_id)
    session.call(
        "post",
        f"{session.client.api_url}/company/{session.realm}/invoice",
        json.dumps({"Id": current["Id"], "SyncToken": current["SyncToken"]}),
        params={"operation": "delete"},
        write=True,
    )


def test_a_failing_pull_backs_off_and_the_event_waits_for_it(qbo, settings):
    # A pull that keeps failing (a 5xx on every call) is tried again later, each time later,
    # not at every pass (each try is a metered read); the event stays open until one works.
    qbo.faults(error_rate=1.0)
    body = cloud_event(qbo, "Payment", "4242", 1)
    (event_id,) = pull.webhook_receive(body=body, signature=signed(body))
    pull.webhook_event_process(event_id=event_id)
    connection = QuickBooksConnection.objects.filter(pk=qbo.connection.pk)
    delays = []
    for _ in range(4):
        connection.update(pull_requested_at=timezone.now())
        assert pull.run_requested_pulls() == 0
        due = connection.get().pull_requested_at
        delays.append((due - timezone.now()).total_seconds())
        assert pull.run_requested_pulls() == 0  # not due again at once

    assert delays == sorted(delays) and delays[0] > 10, delays
    assert connection.get().pull_failures == 4 and "transient" in connection.get().last_pull_error
    assert WebhookEvent.objects.get(pk=event_id).processed_at is None
    qbo.clear_faults()
    connection.update(pull_requested_at=timezone.now())
    assert pull.run_requested_pulls() == 1, connection.get().last_pull_error
    assert WebhookEvent.objects.get(pk=event_id).outcome == "pulled"
    assert connection.get().pull_failures == 0


def test_poison_events_do_not_starve_a_good_one(qbo, synced_invoice, settings, monkeypatch):
    # 205 events for objects QuickBooks lost, older than one good event: before, the fallback
    # took the oldest 200 first, so the good one was never tried (150 s) and 423 reads went.
    settings.QBO_RATE_LIMIT_ENABLED = False
    old = timezone.now() - timedelta(minutes=10)
    poison = [
        WebhookEvent(
            event_key=f"ce:poison-{n}",
            realm_id=qbo.realm,
            entity_name="Payment",
            entity_id=str(900000 + n),
            operation="update",
            next_attempt_at=old,
        )
        for n in range(205)
    ]
    WebhookEvent.objects.bulk_create(poison)
    WebhookEvent.objects.filter(event_key__startswith="ce:poison-").update(received_at=old)
    remote = receive_in_quickbooks(qbo, synced_invoice, synced_invoice.total)
    body = cloud_event(qbo, "Payment", remote["Id"], 1, verb="created")
    pull.webhook_receive(body=body, signature=signed(body))
    before = metered_reads()

    pull.webhook_events_process_pending()
    pull.webhook_events_process_pending()

    assert Invoice.objects.get(pk=synced_invoice.pk).status == Invoice.Status.PAID
    # The 206 events asked for one change pull: one CDC call, no object read one by one
    # (before the debounce: 205 reads for the lost objects, 423 before the back-off).
    assert metered_reads() - before == 1
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()


def metered_reads() -> int:
    from django.db.models import Sum

    from sync.models import ApiUsage

    return ApiUsage.objects.aggregate(n=Sum("coreplus"))["n"] or 0


def count_reads(monkeypatch) -> list:
    """Every single-object read pull makes (Intuit meters reads; each one counts)."""
    from sync.services.client import QuickBooksSession

    reads = []
    original = QuickBooksSession.read

    def counted(self, entity, qb_id):
        reads.append((entity, qb_id))
        return original(self, entity, qb_id)

    monkeypatch.setattr(QuickBooksSession, "read", counted)
    return reads


def test_an_older_answer_never_overwrites_a_newer_balance(qbo, synced_invoice):
    # Seen in the 30-minute soak: a push's answer (computed before a QuickBooks payment) was
    # settled after the payment's webhook and put the old open balance back (paid, 911.23).
    from finance.services import record_quickbooks_balance

    stale_token = qbo.get("Invoice", synced_invoice.qb_id)["SyncToken"]
    receive_in_quickbooks(qbo, synced_invoice, synced_invoice.total)
    pull.pull_changes(connection=QuickBooksConnection.objects.get(pk=qbo.connection.pk))
    assert Invoice.objects.get(pk=synced_invoice.pk).qb_balance == 0

    kept = record_quickbooks_balance(
        record=Invoice.objects.get(pk=synced_invoice.pk),
        balance=synced_invoice.total,
        sync_token=stale_token,
    )

    invoice = Invoice.objects.get(pk=synced_invoice.pk)
    assert kept is False
    assert (invoice.qb_balance, invoice.status) == (0, Invoice.Status.PAID)


def test_an_unexpected_error_backs_the_event_off_instead_of_failing_every_pass(
    qbo, synced_invoice, monkeypatch
):
    # Any exception but QuickBooks' own used to escape: the event stayed due and the beat job
    # hit it again every 30 s.
    def broken(**kwargs):
        raise ValueError("a bug in a pull handler")

    remote = receive_in_quickbooks(qbo, synced_invoice, Decimal("10.00"))
    monkeypatch.setattr(pull, "apply_change", broken)
    body = cloud_event(qbo, "Payment", remote["Id"], 1)
    (event_id,) = pull.webhook_receive(body=body, signature=signed(body))

    pull.webhook_events_process_pending()  # does not raise: other tenants' pulls go on

    event = WebhookEvent.objects.get(pk=event_id)
    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    assert event.processed_at is None
    assert connection.pull_requested_at > timezone.now() + timedelta(seconds=10)
    assert "a bug in a pull handler" in connection.last_pull_error
