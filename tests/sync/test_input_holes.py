"""Inputs that gave 500s or wrong answers in the adversarial run: webhook bodies, mapping
forms (docs/reliability.md, "Bad input")."""

import json

import pytest
from django.urls import reverse

from finance.models import ChargeCode, FinanceSettings
from finance.services import finance_settings_get
from finance.syncstate import SyncStatus
from sync.models import WebhookEvent
from sync.services import pull
from sync.services.engine import SyncContext
from tests.finance.factories import ChargeCodeFactory
from tests.sync.test_pull import signed

WEBHOOK = reverse("sync:webhook")


def post_webhook(client, body: bytes):
    return client.post(
        WEBHOOK, body, content_type="application/json", HTTP_INTUIT_SIGNATURE=signed(body)
    )


def event(**overrides):
    base = {
        "specversion": "1.0",
        "id": "ev-1",
        "type": "qbo.customer.updated.v1",
        "intuitentityid": "42",
        "intuitaccountid": "9341000000000001",
        "time": "2026-11-25T10:00:00Z",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.django_db
def test_deeply_nested_json_is_a_400_not_a_500(client):
    body = b"[" * 100_000 + b"]" * 100_000  # RecursionError inside json.loads before

    response = post_webhook(client, body)

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_cloudevents_without_an_id_are_not_taken_for_replays_of_each_other(client):
    # Both used to get the key "ce:None": the second, different event was dropped.
    first = json.dumps([event(id=None, intuitentityid="42")]).encode()
    second = json.dumps([event(id=None, intuitentityid="43")]).encode()

    assert post_webhook(client, first).status_code == 200
    assert post_webhook(client, second).status_code == 200
    assert post_webhook(client, second).status_code == 200  # a true repeat: counted, not stored

    assert sorted(WebhookEvent.objects.values_list("entity_id", flat=True)) == ["42", "43"]
    assert WebhookEvent.objects.get(entity_id="43").deliveries == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides",
    [
        {"intuitentityid": "../../customer/1"},  # went into the QuickBooks URL path
        {"intuitentityid": "42?minorversion=1"},
        {"intuitaccountid": "9341/../1"},
        {"intuitentityid": "٤٢"},  # digits to Python, not a QuickBooks Id
    ],
)
def test_ids_that_are_not_quickbooks_ids_are_refused(client, overrides):
    response = post_webhook(client, json.dumps([event(**overrides)]).encode())

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_the_parser_never_builds_a_path_from_an_id():
    events = pull.parse_webhook(json.dumps([event()]).encode())
    assert [(e.entity, e.entity_id, e.realm_id) for e in events] == [
        ("Customer", "42", "9341000000000001")
    ]


pytestmark_live = pytest.mark.django_db(transaction=True)


@pytestmark_live
@pytest.mark.parametrize("item_id", ["999999", "creditmemo"])
def test_mapping_a_charge_code_to_something_that_is_not_an_item_is_refused(
    client, qbo, finance_user, item_id
):
    # It answered "now maps to QuickBooks item 999999" and marked the code synced.
    code = ChargeCodeFactory(code="TOLL")
    if item_id == "creditmemo":  # an Id that exists in QuickBooks, but not as an Item
        session = SyncContext.for_company(code.company_id).session
        item_id = session.create(
            "Account", {"Name": "Not an item", "AccountType": "Expense"}, request_id="t-acct"
        )["Id"]
    client.force_login(finance_user)

    response = client.post(
        reverse("sync:item_map"), {"code": code.pk, "qb_id": item_id}, follow=True
    )

    assert "Could not map TOLL" in response.content.decode()
    code.refresh_from_db()
    assert (code.qb_id, code.sync_status) == ("", SyncStatus.SKIPPED)


@pytestmark_live
def test_mapping_to_an_existing_item_works(client, qbo, finance_user):
    code = ChargeCodeFactory(code="TOLL")
    item = SyncContext.for_company(code.company_id).session.create(
        "Item", {"Name": "Tolls", "Type": "Service", "IncomeAccountRef": {"value": "1"}},
        request_id="t-item",
    )  # fmt: skip
    client.force_login(finance_user)

    client.post(reverse("sync:item_map"), {"code": code.pk, "qb_id": item["Id"]})

    code.refresh_from_db()
    assert (code.qb_id, code.sync_status) == (item["Id"], SyncStatus.SYNCED)


@pytest.mark.django_db
@pytest.mark.parametrize("charge_code", ["abc", "", "99999999999999999999"])
def test_a_malformed_mapping_request_is_a_message_not_a_500(client, finance_user, charge_code):
    client.force_login(finance_user)

    response = client.post(
        reverse("sync:item_map"), {"code": charge_code, "qb_id": "1"}, follow=True
    )

    assert response.status_code == 200
    assert "Could not map the charge code" in response.content.decode()
    assert not ChargeCode.objects.exclude(qb_id="").exists()


@pytestmark_live
def test_the_income_account_must_be_an_income_account_in_quickbooks(client, qbo, finance_user):
    session = SyncContext.for_company(qbo.connection.company_id).session
    expense = session.create(
        "Account", {"Name": "Fuel", "AccountType": "Expense"}, request_id="t-fuel"
    )
    client.force_login(finance_user)
    fs = finance_settings_get(company=qbo.connection.company)
    form = {
        f"opt-{name}": getattr(fs, name)
        for name in ("schedule_minutes", "payment_pull_days", "invoice_sync_trigger")
    }
    form.update({"section": "options", "opt-income_account_ref": expense["Id"]})
    for flag in ("sync_customers", "sync_invoices", "sync_payments", "sync_credit_memos"):
        form[f"opt-{flag}"] = "on"

    response = client.post(reverse("finance:quickbooks"), form)

    assert "not Income" in response.content.decode()
    assert FinanceSettings.objects.get(pk=fs.pk).income_account_ref == ""
