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


# --- deliveries per app, holding events of several companies --------------------------------


def _lower(headers):
    return {name.lower(): value for name, value in headers.items()}


@pytest.fixture
def two_realms(hooked, company, tokens, api, base_url, settings):
    """Two companies connected to one app with a webhook receiver; events of both created within
    the coalescing window go out together."""
    import requests

    settings.QBO_SANDBOX_WEBHOOK_COALESCE_SECONDS = 1.0
    other = services.company_create(name="Second Haul")
    pair = services.tokens_issue(app=hooked, company=other)

    def create_in_other(name):
        return requests.post(
            f"{base_url}/v3/company/{other.realm_id}/customer",
            json={"DisplayName": name},
            headers={"Authorization": f"Bearer {pair['access_token']}"},
            timeout=10,
        ).json()["Customer"]

    return other, create_in_other


def test_events_of_two_companies_go_out_in_one_delivery(two_realms, api, receiver, company, hooked):
    other, create_in_other = two_realms
    mine = api.post("customer", json={"DisplayName": "Here"}).json()["Customer"]
    theirs = create_in_other("There")
    headers, body = receiver.wait(1)[0]
    time.sleep(1.5)  # nothing else follows: both events were in that one request
    assert len(receiver.requests) == 1
    assert _lower(headers)["content-type"] == "application/cloudevents+json"
    assert QuickBooks().validate_webhook_signature(
        body, headers["intuit-signature"], hooked.verifier_token
    )
    events = json.loads(body)
    assert [(e["intuitaccountid"], e["intuitentityid"]) for e in events] == [
        (company.realm_id, mine["Id"]),
        (other.realm_id, theirs["Id"]),
    ]
    assert len({e["id"] for e in events}) == 2
    delivery = WebhookDelivery.objects.get()
    assert delivery.company is None and delivery.events.count() == 2


def test_a_multi_realm_redelivery_keeps_its_body(two_realms, api, receiver, company):
    _, create_in_other = two_realms
    receiver.statuses = [500]
    api.post("customer", json={"DisplayName": "Again here"})
    create_in_other("Again there")
    first, second = receiver.wait(2, timeout=5.0)
    assert first[1] == second[1]  # same events, same ids
    assert {e["intuitaccountid"] for e in json.loads(first[1])} == {
        company.realm_id,
        WebhookDelivery.objects.get().events.exclude(company=company).get().company.realm_id,
    }


def test_legacy_deliveries_hold_one_element_per_realm(two_realms, api, receiver, company, hooked):
    other, create_in_other = two_realms
    hooked.webhook_format = "legacy"
    hooked.save()
    api.post("customer", json={"DisplayName": "Legacy here"})
    create_in_other("Legacy there")
    headers, body = receiver.wait(1)[0]
    notes = json.loads(body)["eventNotifications"]
    assert [n["realmId"] for n in notes] == [company.realm_id, other.realm_id]
    assert _lower(headers)["content-type"] == "application/json; charset=utf-8"


def test_the_app_may_send_cloudevents_as_application_json(hooked, tokens, api, receiver):
    hooked.webhook_content_type = "application/json"
    hooked.save()
    api.post("customer", json={"DisplayName": "Plain JSON"})
    headers, body = receiver.wait(1)[0]
    assert _lower(headers)["content-type"] == "application/json"
    assert json.loads(body)[0]["type"] == "qbo.customer.created.v1"


def test_at_most_100_events_per_delivery(hooked, tokens, company, receiver):
    from django.db import transaction

    from qbo_sandbox import webhooks

    webhooks.stop()
    with transaction.atomic():
        webhooks.enqueue(company, [("Customer", n, "updated") for n in range(1, 151)])
    webhooks.stop()  # the commit kicked the thread: deliver here instead
    services.flush_webhooks()
    sizes = sorted(len(json.loads(body)) for _, body in receiver.wait(2))
    assert sizes == [50, 100]


def test_create_app_sets_the_content_type():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command(
        "qbo_sandbox", "create-app", "--redirect-uri", "http://a/cb",
        "--webhook-content-type", "application/json", "--json", stdout=out,
    )  # fmt: skip
    made = json.loads(out.getvalue())
    assert made["webhook_content_type"] == "application/json"
