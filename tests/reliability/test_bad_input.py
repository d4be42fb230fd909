"""Bad input: each refusal gives a clear message, leaves an audit or log line, changes nothing."""

import base64
import hashlib
import hmac
import json

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from finance.descriptions import validate_mapping
from finance.models import Customer, FinanceSettings, ManualAction
from finance.qb_ids import qb_id_override
from finance.services import finance_settings_get
from sync.models import QuickBooksConnection, WebhookEvent
from sync.selectors import connection_for_company
from tests.finance.factories import CustomerFactory
from tests.reliability.conftest import console_log

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

WEBHOOK = reverse("sync:webhook")


def signed(body: bytes) -> str:
    token = django_settings.QBO_WEBHOOK_VERIFIER_TOKEN.encode()
    return base64.b64encode(hmac.new(token, body, hashlib.sha256).digest()).decode()


def cloud_event(event_id="ev-1", entity_id="42"):
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": event_id,
                "type": "qbo.customer.updated.v1",
                "intuitentityid": entity_id,
                "intuitaccountid": "9341000000000001",
                "time": "2026-11-25T10:00:00Z",
            }
        ]
    ).encode()


def post_webhook(client, body: bytes, signature: str | None = None):
    signature = signed(body) if signature is None else signature
    return client.post(
        WEBHOOK, body, content_type="application/json", HTTP_INTUIT_SIGNATURE=signature
    )


# --- webhooks ------------------------------------------------------------------------------


def test_it_refuses_a_forged_webhook_signature(client, db):
    body = cloud_event()
    with console_log() as log:
        response = post_webhook(client, body, signed(body + b" "))

    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0  # nothing stored
    assert "bad signature" in log.getvalue()


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"\xff\xfe\x00",
        b"[]" * 3,
        b'{"eventNotifications": ["not an object"]}',
        b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": [1]}]}',
        b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [7]}}]}',
        b'[{"specversion": "1.0", "id": "x", "type": "qbo"}]',
        b'[{"specversion": "1.0", "type": "qbo.customer.updated.v1", "intuitentityid": "'
        + b"9" * 300
        + b'", "intuitaccountid": "1", "id": "long"}]',
        b'[{"specversion": "1.0", "type": "qbo.customer.updated.v1", "intuitentityid": "1", '
        b'"intuitaccountid": "1", "id": "' + b"k" * 400 + b'"}]',
    ],
    ids=[
        "text",
        "binary",
        "bad-json",
        "notification-not-object",
        "change-event-list",
        "entity-not-object",
        "short-type",
        "oversize-id",
        "oversize-key",
    ],
)
def test_it_answers_400_to_a_malformed_webhook_and_stores_nothing(client, db, body):
    with console_log() as log:
        response = post_webhook(client, body)

    assert response.status_code == 400, response.content
    assert b"malformed notification" in response.content
    assert WebhookEvent.objects.count() == 0
    assert "webhook refused" in log.getvalue()


def test_it_refuses_a_webhook_body_over_1_mb(client, db):
    body = b"[" + b" " * 1_000_001 + b"]"
    with console_log() as log:
        response = post_webhook(client, body)

    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0
    assert "webhook refused" in log.getvalue()


def test_it_processes_a_replayed_webhook_once(client, db):
    body = cloud_event("ev-replay")

    codes = [post_webhook(client, body).status_code for _ in range(3)]

    assert codes == [200, 200, 200]  # Intuit retries until it gets a 200: always answer it
    event = WebhookEvent.objects.get()
    assert event.deliveries == 3  # counted, stored once


# --- QuickBooks ID override -----------------------------------------------------------------


@pytest.fixture
def synced_customer(qbo):
    from sync.services import engine

    customer = CustomerFactory(display_name="Override Target Co")
    engine.push_record(sync_type="customer", pk=customer.pk)
    customer.refresh_from_db()
    assert customer.qb_id
    return customer


@pytest.mark.parametrize(
    "bad_id, says",
    [
        ("abc", "positive whole number"),
        ("-5", "positive whole number"),
        ("0", "positive whole number"),
        ("²", "positive whole number"),
        ("12.5", "positive whole number"),
        ("99999", "has no Customer"),
        ("invoice", "has no Customer"),
    ],
)
def test_it_refuses_a_bad_qb_id_override_and_changes_nothing(
    qbo, synced_customer, support_user, bad_id, says
):
    if bad_id == "invoice":  # an object that exists, of another type
        session = qbo_session(qbo)
        bad_id = session.create("Item", {"Name": "Wrong Type", "Type": "Service",
                                         "IncomeAccountRef": {"value": "1"}},
                                request_id="rel-wrong-type")["Id"]  # fmt: skip
    before = Customer.objects.values().get(pk=synced_customer.pk)
    audits = ManualAction.objects.count()

    with console_log() as log, pytest.raises(ValidationError) as refused:
        qb_id_override(record=synced_customer, new_qb_id=bad_id, user=support_user)

    assert says in " ".join(refused.value.messages)
    assert Customer.objects.values().get(pk=synced_customer.pk) == before
    assert ManualAction.objects.count() == audits
    assert "QuickBooks ID override refused" in log.getvalue()


def qbo_session(qbo):
    from sync.services.engine import SyncContext

    return SyncContext.for_company(qbo.connection.company_id).session


# --- OAuth callback -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, says",
    [
        ({"state": "forged", "code": "c", "realmId": "1"}, "does not match a connect request"),
        ({"error": "access_denied", "state": "whatever"}, "you pressed Cancel"),
        ({"error": "server_error"}, "did not grant access"),
    ],
)
def test_it_refuses_a_bad_oauth_callback_and_keeps_the_connection(
    client, company, finance_user, params, says
):
    connection = connection_for_company(company=company)
    QuickBooksConnection.objects.filter(pk=connection.pk).update(oauth_state="the-real-state")
    before = QuickBooksConnection.objects.values().get(pk=connection.pk)
    client.force_login(finance_user)

    response = client.get(reverse("sync:callback"), params, follow=True)

    shown = " ".join(str(m) for m in response.context["messages"])
    assert says in shown
    after = QuickBooksConnection.objects.values().get(pk=connection.pk)
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }
    assert ManualAction.objects.filter(kind="connection", note__startswith="Connect refused")


# --- descriptions and settings --------------------------------------------------------------


@pytest.mark.parametrize(
    "mapping",
    [
        {"fields": ["container", "driver_name"]},
        {"fields": ["po", "po"]},
        {"fields": [], "template": "Container {container} {trailer}"},
        {"fields": [], "template": "{container"},
        {"fields": [], "template": "{po!r}"},
        {"fields": [], "prefix": "Load {nn}: "},
    ],
)
def test_it_refuses_unknown_description_fields(mapping):
    with pytest.raises(ValidationError) as refused:
        validate_mapping(**mapping)

    assert refused.value.messages[0]


@pytest.mark.parametrize(
    "field, value",
    [
        ("schedule_minutes", "0"),
        ("schedule_minutes", "-5"),
        ("schedule_minutes", "100000"),
        ("payment_pull_days", "90"),
        ("payment_pull_days", "-1"),
        ("income_account_ref", "Sales"),
    ],
)
def test_it_refuses_impossible_settings_and_saves_nothing(
    client, company, finance_user, field, value
):
    row = finance_settings_get(company=company)
    before = FinanceSettings.objects.values().get(pk=row.pk)
    client.force_login(finance_user)
    data = {
        "section": "options",
        "opt-sync_customers": "on",
        "opt-invoice_sync_trigger": "approved",
        "opt-schedule_minutes": "5",
        "opt-payment_pull_days": "30",
        "opt-income_account_ref": "",
        "opt-vendor_name_clash": "problem",
        "opt-vendor_name_suffix": " (Vendor)",
        f"opt-{field}": value,
    }

    with console_log() as log:
        response = client.post(reverse("finance:quickbooks"), data)

    assert response.status_code == 200  # the form again, with its errors
    assert response.context["options"].errors.get(field)
    assert FinanceSettings.objects.values().get(pk=row.pk) == before
    assert not ManualAction.objects.filter(kind="settings").exists()
    assert "settings refused" in log.getvalue()
