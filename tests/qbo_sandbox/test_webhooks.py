import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from quickbooks import QuickBooks

from qbo_sandbox import services
from qbo_sandbox.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """A tiny webhook endpoint on a random port; answers the queued statuses, then 200."""

    def __init__(self, statuses=()):
        self.requests = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.requests


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def hooked(app, receiver):
    app.webhook_url = receiver.url
    app.save()
    return app


def test_a_create_sends_a_signed_cloudevent(hooked, tokens, api, receiver, company):
    customer = api.post("customer", json={"DisplayName": "Hooked"}).json()["Customer"]
    headers, body = receiver.wait(1)[0]
    # python-quickbooks' own check accepts the signature.
    assert QuickBooks().validate_webhook_signature(
        body, headers["intuit-signature"], hooked.verifier_token
    )
    assert headers["intuit-t-id"] and headers["intuit-created-time"]
    events = json.loads(body)
    assert len(events) == 1
    event = events[0]
    assert event["specversion"] == "1.0"
    assert event["type"] == "qbo.customer.created.v1"
    assert (event["intuitaccountid"], event["intuitentityid"]) == (company.realm_id, customer["Id"])


def test_legacy_format_and_a_batch_in_one_notification(hooked, tokens, api, receiver, company):
    hooked.webhook_format = "legacy"
    hooked.save()
    items = [
        {"bId": str(n), "operation": "create", "Customer": {"DisplayName": f"L{n}"}}
        for n in range(3)
    ]
    api.post("batch", json={"BatchItemRequest": items})
    headers, body = receiver.wait(1)[0]
    payload = json.loads(body)
    note = payload["eventNotifications"][0]
    assert note["realmId"] == company.realm_id
    assert [e["operation"] for e in note["dataChangeEvent"]["entities"]] == ["Create"] * 3
    assert QuickBooks().validate_webhook_signature(
        body, headers["intuit-signature"], hooked.verifier_token
    )


def test_failed_deliveries_are_retried_with_the_same_body(hooked, tokens, api, receiver):
    receiver.statuses = [500, 503]
    api.post("customer", json={"DisplayName": "Retry"})
    requests_seen = receiver.wait(3, timeout=5.0)  # retry scale 0.01: 0.1 s, then 0.2 s
    assert len(requests_seen) == 3
    assert len({body for _, body in requests_seen}) == 1  # redelivery keeps the event id
    deadline = time.monotonic() + 5  # the sender records the outcome just after the response
    while WebhookDelivery.objects.get().status != "delivered" and time.monotonic() < deadline:
        time.sleep(0.02)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)


def test_no_webhook_without_a_connection(app, receiver, company):
    app.webhook_url = receiver.url
    app.save()
    # The app never got tokens for this company: nothing is sent.
    other = services.company_create(name="Other")
    assert WebhookDelivery.objects.filter(company=other).count() == 0


def test_flush_webhooks_delivers_synchronously(hooked, tokens, api, receiver):
    from qbo_sandbox import webhooks

    webhooks.stop()
    WebhookDelivery.objects.all().delete()
    receiver.statuses = [500]
    api.post("customer", json={"DisplayName": "Flush"})
    services.flush_webhooks()
    assert WebhookDelivery.objects.get().status == "delivered"
