"""Pull: payments applied in QuickBooks mark TMS invoices paid; deletions become problems."""

import base64
import hashlib
import hmac
import json
from decimal import Decimal

import pytest
import requests
from django.conf import settings as django_settings

from finance.models import Invoice, Payment
from finance.syncstate import SyncStatus
from sync.models import QuickBooksConnection, WebhookEvent
from sync.services import pull
from sync.services.engine import SyncContext

pytestmark = pytest.mark.django_db(transaction=True)


def receive_in_quickbooks(qbo, invoice, amount):
    """A QuickBooks user receives a payment against the invoice (as in the sandbox UI)."""
    session = SyncContext.for_company(invoice.company_id).session
    return session.create(
        "Payment",
        {
            "CustomerRef": {"value": invoice.customer.qb_id},
            "TotalAmt": float(amount),
            "Line": [
                {
                    "Amount": float(amount),
                    "LinkedTxn": [{"TxnId": invoice.qb_id, "TxnType": "Invoice"}],
                }
            ],
        },  # fmt: skip
        request_id=f"test-receive-{invoice.pk}-{amount}",
    )


def signed(body: bytes) -> str:
    key = django_settings.QBO_WEBHOOK_VERIFIER_TOKEN.encode()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def test_cdc_marks_an_invoice_paid_by_a_quickbooks_payment(qbo, synced_invoice):
    remote = receive_in_quickbooks(qbo, synced_invoice, synced_invoice.total)

    counts = pull.pull_changes(connection=QuickBooksConnection.objects.get(pk=qbo.connection.pk))

    invoice = Invoice.objects.get(pk=synced_invoice.pk)
    assert invoice.status == Invoice.Status.PAID
    assert invoice.qb_balance == 0
    payment = Payment.objects.get(qb_id=remote["Id"])
    assert payment.origin == Payment.Origin.QUICKBOOKS
    assert payment.sync_status == SyncStatus.SYNCED  # never pushed back
    assert counts.get("payment") == 1
    # A second sweep over the same window changes nothing.
    pull.pull_changes(connection=QuickBooksConnection.objects.get(pk=qbo.connection.pk))
    assert Payment.objects.filter(qb_id=remote["Id"]).count() == 1


def test_a_partial_payment_marks_the_invoice_partly_paid(qbo, synced_invoice):
    receive_in_quickbooks(qbo, synced_invoice, Decimal("50.00"))

    pull.pull_changes(connection=QuickBooksConnection.objects.get(pk=qbo.connection.pk))

    invoice = Invoice.objects.get(pk=synced_invoice.pk)
    assert invoice.status == Invoice.Status.PARTIALLY_PAID
    assert invoice.qb_balance == invoice.total - Decimal("50.00")


@pytest.mark.parametrize("webhook_format", ["cloudevents", "legacy"])
def test_a_webhook_marks_the_invoice_paid(qbo, synced_invoice, webhook_format):
    from qbo_sandbox import services

    qbo.app.webhook_format = webhook_format
    qbo.app.save()
    services.flush_webhooks()  # deliveries of our own pushes
    receive_in_quickbooks(qbo, synced_invoice, synced_invoice.total)

    services.flush_webhooks()
    pull.webhook_events_process_pending()

    assert WebhookEvent.objects.filter(entity_name="Payment").exists()
    invoice = Invoice.objects.get(pk=synced_invoice.pk)
    assert invoice.status == Invoice.Status.PAID


def test_an_invoice_deleted_in_quickbooks_becomes_a_problem(qbo, synced_invoice):
    session = SyncContext.for_company(synced_invoice.company_id).session
    remote = session.read("Invoice", synced_invoice.qb_id)
    session.call(
        "post",
        f"{session.client.api_url}/company/{session.realm}/invoice",
        json.dumps({"Id": remote["Id"], "SyncToken": remote["SyncToken"]}),
        params={"operation": "delete"},
    )

    pull.pull_changes(connection=QuickBooksConnection.objects.get(pk=qbo.connection.pk))

    invoice = Invoice.objects.get(pk=synced_invoice.pk)
    assert invoice.sync_status == SyncStatus.PROBLEM
    assert invoice.problem_reason == "deleted_in_quickbooks"


def test_a_forged_webhook_is_refused_and_stores_nothing(live_server, qbo):
    body = json.dumps([{"specversion": "1.0", "id": "forged-1", "type": "qbo.payment.created.v1",
                        "intuitaccountid": qbo.realm, "intuitentityid": "1"}]).encode()  # fmt: skip

    response = requests.post(
        live_server.url + "/quickbooks/webhook/",
        data=body,
        headers={"intuit-signature": base64.b64encode(b"x" * 32).decode()},
        timeout=5,
    )

    assert response.status_code == 403
    assert not WebhookEvent.objects.exists()


def test_a_replayed_webhook_is_processed_once(live_server, qbo):
    body = json.dumps([{"specversion": "1.0", "id": "evt-42", "type": "qbo.customer.updated.v1",
                        "intuitaccountid": qbo.realm, "intuitentityid": "77"}]).encode()  # fmt: skip
    for _ in range(2):
        response = requests.post(
            live_server.url + "/quickbooks/webhook/",
            data=body,
            headers={"intuit-signature": signed(body), "Content-Type": "application/json"},
            timeout=5,
        )
        assert response.status_code == 200

    event = WebhookEvent.objects.get()
    assert event.deliveries == 2


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"unexpected": true}', b'[{"specversion": "1.0"}]'],
)
def test_a_malformed_webhook_gets_a_clear_400(live_server, qbo, body):
    response = requests.post(
        live_server.url + "/quickbooks/webhook/",
        data=body,
        headers={"intuit-signature": signed(body)},
        timeout=5,
    )

    assert response.status_code == 400
    assert "malformed" in response.text
    assert not WebhookEvent.objects.exists()


def test_cdc_pages_past_quickbooks_cap_of_changes(qbo, synced_invoice, monkeypatch, settings):
    # QuickBooks stops at 1,000 objects per answer; shrink the cap on both sides to see paging.
    import qbo_sandbox.api

    settings.QBO_RATE_LIMIT_ENABLED = False  # a dozen calls in a second; pacing is not the point
    monkeypatch.setattr(qbo_sandbox.api, "CDC_MAX_OBJECTS", 3)
    monkeypatch.setattr(pull, "CDC_CAP", 3)
    session = SyncContext.for_company(synced_invoice.company_id).session
    for n in range(4):
        session.create("Customer", {"DisplayName": f"Noise {n}"}, request_id=f"test-noise-{n}")
    receive_in_quickbooks(qbo, synced_invoice, synced_invoice.total)

    pull.pull_changes(connection=QuickBooksConnection.objects.get(pk=qbo.connection.pk))

    assert Invoice.objects.get(pk=synced_invoice.pk).status == Invoice.Status.PAID
