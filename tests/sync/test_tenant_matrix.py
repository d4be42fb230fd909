"""Every URL of the product, walked by a member of one tenant beside another tenant's records:
nothing of the other tenant shows, changes or answers other than 404. A URL added without a place
in the coverage table below fails the first test, so the walk cannot fall behind the product."""

from collections import Counter
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from alerts.models import AlertSent, AlertSubscription, TenantAlertWebhook
from finance.models import Company, CreditMemo, Customer, Invoice, Membership, Payment
from finance.registry import SYNCED_MODELS
from finance.services import (
    ChargeSetSpec,
    LineSpec,
    credit_memo_create,
    membership_ensure,
    payment_create,
    tenant_ensure,
)
from finance.syncstate import SyncStatus
from sync.mappers import MAPPERS
from sync.models import (
    BulkJob,
    QuickBooksConnection,
    ReconciliationAcknowledgement,
    ReconciliationRun,
    WebhookEvent,
)
from sync.selectors import connection_for_company
from sync.services import pull
from sync.services.connection import connect_with_tokens
from sync.views.problems import ACTIONS
from tests.finance.factories import ChargeCodeFactory, CustomerFactory, InvoiceFactory, LoadFactory
from tests.sync.test_pull import signed
from tests.sync.uifactories import park

pytestmark = pytest.mark.django_db

# Pages a member opens in their own tenant: 200, with none of the other tenant's data.
PAGES = {
    "sync:problems",
    "sync:waiting",
    "sync:not_syncing",
    "sync:resolved",
    "sync:reconciliation",
    "sync:connection",
    "sync:connection_card",
    "sync:item_mapping",
    "sync:account_mapping",
    "finance:quickbooks",
    "alerts:card",
}
# Of those, the settings (the connection page redirects to them): finance's to edit, not support's.
SETTINGS_EDITOR_PAGES = {
    "sync:connection",
    "sync:connection_card",
    "sync:item_mapping",
    "sync:account_mapping",
    "finance:quickbooks",
    "alerts:card",
}
# URLs naming one record or job: another tenant's is a 404, by GET and by POST.
RECORD_URLS = {
    "sync:detail",
    "sync:record_action",
    "sync:customer_match",
    "sync:doc_number_match",
    "sync:bulk_progress",
}
# POSTs acting on the current tenant as a whole: walked below, each leaving the other untouched.
TENANT_POSTS = {
    "sync:bulk",
    "sync:resend_descriptions",
    "sync:reconciliation_refresh",
    "sync:reconciliation_acknowledge",
    "sync:item_map",
    "sync:items_create_missing",
    "sync:account_map",
    "sync:accounts_create_missing",
    "sync:disconnect",
    "sync:connect",
    "finance:tenant_switch",
    "finance:description_preview",
    "alerts:subscription",
    "alerts:webhook",
    "alerts:webhook_test",
}
# GETs that pick their tenant from a QuickBooks realm (Intuit's Reconnect URL): another tenant's
# realm is a 404 that changes nothing there; the member's own starts the consent flow.
REALM_URLS = {
    "sync:reconnect",
}
# Not tenant pages: redirects, sign-in, probes, Intuit's callbacks (signed or state-bound, tested
# in test_pull, test_connection and below), Django admin (tests/finance/test_admin*.py).
EXEMPT = {
    "sync:home",
    "login",
    "logout",
    "healthz",
    "sync:webhook",
    "sync:callback",
    # An alert's link names its tenant: members only, else 403 and no switch
    # (tests/alerts/test_views.py::test_the_alert_link_refuses_other_tenants_and_other_sites).
    "alerts:open",
}
EXEMPT_NAMESPACES = {"admin", "qbo_sandbox"}


def url_names(patterns=None, namespace=""):
    patterns = get_resolver().url_patterns if patterns is None else patterns
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace or ""
            yield from url_names(entry.url_patterns, inner.strip(":"))
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}:{entry.name}" if namespace else entry.name


def test_every_url_has_a_place_in_the_walk():
    covered = PAGES | RECORD_URLS | TENANT_POSTS | REALM_URLS | EXEMPT
    names = {n for n in url_names() if n.split(":")[0] not in EXEMPT_NAMESPACES}
    assert names - covered == set(), "add the new URL to one of the tables of this test"
    assert covered - names == set(), "a URL in the tables no longer exists"


MARK = {"ours": "GRANITE", "theirs": "BAYOU"}


def tenant_records(company, mark, qb_base):
    """A parked invoice, payment, credit memo and customer, and two synced invoices with fixed
    QuickBooks Ids (the same Ids in both tenants: Ids are only unique within a realm)."""
    customer = CustomerFactory(company=company, display_name=f"{mark} Shipper Co")
    code = ChargeCodeFactory(company=company, code=f"{mark}-DRAY", name=f"{mark} drayage")

    def invoice(number):
        return InvoiceFactory(
            company=company,
            customer=customer,
            doc_number=number,
            charge_sets=[
                ChargeSetSpec(
                    load=LoadFactory(company=company, load_number=f"{mark}-{number}"),
                    lines=[LineSpec(charge_code=code, rate=Decimal(120))],
                )
            ],
        )

    parked = park(invoice(f"{mark}-INV-1"), reason="validation")
    payment = payment_create(
        company=company,
        customer=customer,
        amount=Decimal(50),
        payment_date=date(2026, 11, 2),
        applications=[(parked, Decimal(50))],
        reference_number=f"{mark}-CHK-7",
    )
    memo = credit_memo_create(
        company=company,
        customer=customer,
        number=f"{mark}-CM-3",
        memo_date=date(2026, 11, 3),
        lines=[(code, Decimal(20), "detention credit")],
    )
    synced = {
        qb_id: park(invoice(f"{mark}-INV-{qb_id}"), status=SyncStatus.SYNCED, qb_id=qb_id)
        for qb_id in (qb_base, qb_base + 1)
    }
    return {
        "invoice": parked,
        "payment": park(payment, reason="validation"),
        "creditmemo": park(memo, reason="duplicate_doc_number"),
        "customer": park(customer, reason="duplicate_name"),
        "synced": synced,
    }


@pytest.fixture
def world(company, finance_user):
    theirs_company, _ = tenant_ensure(name="Bayou Drayage LLC")
    Membership.objects.create(user=finance_user, company=company)
    ours = tenant_records(company, MARK["ours"], 41)
    theirs = tenant_records(theirs_company, MARK["theirs"], 41)
    return company, theirs_company, ours, theirs


def state(company):
    """Everything of a tenant an action could change, to compare before and after."""
    rows = []
    for model in (Invoice, Payment, CreditMemo, Customer):
        for row in model.objects.filter(company=company).order_by("pk"):
            rows.append(
                (
                    model.__name__,
                    row.pk,
                    row.sync_status,
                    row.problem_reason,
                    row.qb_id,
                    row.version,
                )
            )
    connection = connection_for_company(company=company)
    rows.append(("connection", connection.status, connection.realm_id))
    rows.append(("jobs", BulkJob.objects.filter(company=company).count()))
    return rows


def page_urls():
    urls = [reverse(name) for name in PAGES]
    urls += [reverse("sync:problems") + f"?type={t}" for t in ("invoice", "payment", "customer")]
    urls += [reverse("sync:problems") + "?type=creditmemo"]
    # The export of each list, as a spreadsheet.
    urls += [reverse("sync:problems") + f"?type={t}&format=csv" for t in ("invoice", "payment")]
    return urls


def test_a_members_pages_show_none_of_another_tenants_data(client, finance_user, world):
    _, _, ours, _ = world
    client.force_login(finance_user)

    for url in page_urls():
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        assert MARK["theirs"] not in response.content.decode(), url
    # The walk sees data at all: our own problems are listed with their markers.
    for sync_type in ("invoice", "payment", "customer", "creditmemo"):
        listed = client.get(reverse("sync:problems") + f"?type={sync_type}").content.decode()
        assert f"row-{sync_type}-{ours[sync_type].pk}" in listed, sync_type
    exported = client.get(reverse("sync:problems") + "?type=invoice&format=csv").content.decode()
    assert f"{MARK['ours']}-INV-1" in exported


def record_urls(records):
    """Every record URL for each record, with the actions every type offers."""
    for sync_type in ("invoice", "payment", "customer", "creditmemo"):
        pk = records[sync_type].pk
        yield "GET", reverse("sync:detail", args=[sync_type, pk])
        if MAPPERS[sync_type].doc_number_field:  # the others have no number screen at all
            yield "GET", reverse("sync:doc_number_match", args=[sync_type, pk])
            yield "POST", reverse("sync:doc_number_match", args=[sync_type, pk])
        for action in ACTIONS:
            yield "POST", reverse("sync:record_action", args=[sync_type, pk, action])
    yield "GET", reverse("sync:customer_match", args=[records["customer"].pk])
    yield "POST", reverse("sync:customer_match", args=[records["customer"].pk])


def test_another_tenants_record_urls_are_404_and_change_nothing(client, finance_user, world):
    _, theirs_company, _, theirs = world
    job = BulkJob.objects.create(
        company=theirs_company,
        action="clear",
        record_type="invoice",
        record_ids=[theirs["invoice"].pk],
        total=1,
    )
    before = state(theirs_company)
    client.force_login(finance_user)

    urls = list(record_urls(theirs)) + [("GET", reverse("sync:bulk_progress", args=[job.pk]))]
    for method, url in urls:
        send = client.get if method == "GET" else client.post
        response = send(url, {"choice": "new", "number": "X-1"} if method == "POST" else {})
        assert response.status_code == 404, (method, url, response.status_code)
    assert state(theirs_company) == before


def test_the_same_urls_answer_for_the_members_own_records(client, finance_user, world):
    """The 404s above are about the tenant, not about URLs that fail for everyone."""
    _, _, ours, _ = world
    client.force_login(finance_user)
    for sync_type in ("invoice", "payment", "customer", "creditmemo"):
        url = reverse("sync:detail", args=[sync_type, ours[sync_type].pk])
        assert client.get(url).status_code == 200, url
    clear = reverse("sync:record_action", args=["payment", ours["payment"].pk, "clear"])
    assert client.post(clear).status_code == 302
    assert Payment.objects.get(pk=ours["payment"].pk).sync_status == SyncStatus.CLEARED


def test_tenant_wide_posts_leave_the_other_tenant_untouched(client, finance_user, world):
    ours_company, theirs_company, ours, theirs = world
    for company, realm in ((ours_company, "9341"), (theirs_company, "9342")):
        connect_with_tokens(
            connection=connection_for_company(company=company),
            realm_id=realm,
            access_token=f"a-{realm}",
            refresh_token=f"r-{realm}",
        )
    before = state(theirs_company)
    client.force_login(finance_user)

    for sync_type in ("invoice", "payment", "customer", "creditmemo"):
        # Their ids by hand, then "every matching record" of the list.
        picked = {"action": "clear", "type": sync_type, "ids": [theirs[sync_type].pk]}
        client.post(reverse("sync:bulk"), picked)
        client.post(
            reverse("sync:bulk"), {"action": "resync", "type": sync_type, "all_matching": "on"}
        )
    client.post(reverse("sync:resend_descriptions"), {"confirm": "on"})
    client.post(reverse("sync:reconciliation_refresh"))  # QuickBooks unreachable here
    ack = {"key": f"amount_differs:invoice:r{theirs['invoice'].pk}"}  # their record's key
    client.post(reverse("sync:reconciliation_acknowledge"), ack)
    # The alerts card's posts name the tenant they were shown for: theirs is refused.
    client.post(reverse("alerts:subscription"), {"company": theirs_company.pk, "digest": "on"})
    webhook = {"company": theirs_company.pk, "url": "https://hooks.example/x", "enabled": "on"}
    client.post(reverse("alerts:webhook"), webhook)
    client.post(reverse("alerts:webhook_test"), {"company": theirs_company.pk})
    client.post(reverse("sync:item_map"), {"code": theirs["invoice"].pk, "qb_id": "1"})
    client.post(reverse("sync:account_map"), {"code": theirs["invoice"].pk, "qb_id": "1"})
    preview = client.post(reverse("finance:description_preview"), {"sample": theirs["invoice"].pk})
    assert "Choose an invoice to preview on." in preview.content.decode()
    assert MARK["theirs"] not in preview.content.decode()
    assert client.post(reverse("finance:tenant_switch"), {"company": theirs_company.pk}).status_code
    client.post(reverse("sync:disconnect"))

    assert not BulkJob.objects.filter(company=theirs_company).exists()
    assert not ReconciliationRun.objects.filter(company=theirs_company).exists()
    assert not ReconciliationAcknowledgement.objects.filter(company=theirs_company).exists()
    assert not AlertSubscription.objects.filter(company=theirs_company).exists()
    assert not TenantAlertWebhook.objects.filter(company=theirs_company).exists()
    assert not AlertSent.objects.filter(company=theirs_company).exists()
    assert ReconciliationRun.objects.get(company=ours_company).error.startswith("QuickBooks")
    for job in BulkJob.objects.filter(company=ours_company):
        model = SYNCED_MODELS[job.record_type]
        foreign = model.objects.filter(pk__in=job.record_ids).exclude(company=ours_company)
        assert not foreign.exists(), job.record_ids
    after = state(theirs_company)
    assert after == before
    # What was asked of our own tenant did happen there: the walk has teeth.
    assert connection_for_company(company=ours_company).status != "connected"
    jobs = Counter(BulkJob.objects.filter(company=ours_company).values_list("action", flat=True))
    assert jobs == {"clear": 4, "resync": 4, "resend": 1}


class OfflineAuthClient:
    """intuit-oauth's authorization URL without its discovery request (no emulator here)."""

    def get_authorization_url(self, scopes, state_token=None):
        return f"https://appcenter.example/connect/oauth2?state={state_token}"


def test_realm_urls_reach_only_the_members_own_tenant(client, finance_user, world, monkeypatch):
    from sync.services import connection as connection_services

    monkeypatch.setattr(connection_services, "auth_client", OfflineAuthClient)
    ours_company, theirs_company, _, _ = world
    for company, realm in ((ours_company, "9341"), (theirs_company, "9342")):
        connect_with_tokens(
            connection=connection_for_company(company=company),
            realm_id=realm,
            access_token=f"a-{realm}",
            refresh_token=f"r-{realm}",
        )
    theirs_state = connection_for_company(company=theirs_company).oauth_state
    before = state(theirs_company)
    client.force_login(finance_user)

    for name in REALM_URLS:
        for realm in ("9342", "5555"):  # theirs, and a realm of nobody here: the same answer
            response = client.get(reverse(name), {"realmId": realm})
            assert response.status_code == 404, (name, realm)
            assert MARK["theirs"] not in response.content.decode()
            assert "Bayou" not in response.content.decode()
        assert client.get(reverse(name), {"realmId": "9341"}).status_code == 302, name

    assert state(theirs_company) == before
    assert connection_for_company(company=theirs_company).oauth_state == theirs_state
    # Our own realm did start a consent flow: the walk has teeth.
    assert connection_for_company(company=ours_company).oauth_state


def test_a_support_member_can_look_but_every_post_is_refused(client, world):
    ours_company, _, ours, _ = world
    user, _ = membership_ensure(
        company=ours_company, username="sue", password="pw-sue", role="support"
    )
    before = state(ours_company)
    client.force_login(user)

    settings_pages = {reverse(name) for name in SETTINGS_EDITOR_PAGES}
    for url in page_urls():
        answer = client.get(url, follow=True).status_code
        assert answer == (403 if url.split("?")[0] in settings_pages else 200), url
    settings_post = {"section": "options", "opt-sync_invoices": ""}
    assert client.post(reverse("finance:quickbooks"), settings_post).status_code == 403
    for method, url in record_urls(ours):
        if method == "POST":
            assert client.post(url).status_code == 403, url
    bulk = {"action": "clear", "type": "invoice", "ids": [ours["invoice"].pk]}
    assert client.post(reverse("sync:bulk"), bulk).status_code == 403
    for name in REALM_URLS:  # a consent flow started is a change too
        assert client.get(reverse(name)).status_code == 403, name
    assert not connection_for_company(company=ours_company).oauth_state
    assert state(ours_company) == before


def deliver(client, events):
    import json

    body = json.dumps(events).encode()
    return client.post(
        reverse("sync:webhook"),
        data=body,
        content_type="application/json",
        headers={"intuit-signature": signed(body)},
    )


@pytest.mark.django_db(transaction=True)
def test_one_webhook_delivery_for_two_realms_touches_each_tenant_alone(qbo, world):
    from qbo_sandbox import services as emulator

    ours_company, theirs_company, ours, theirs = world
    # Theirs is connected to a QuickBooks company of its own, through the same app.
    tokens = emulator.tokens_issue(app=qbo.app, company=emulator.company_create(name="Bayou Books"))
    connect_with_tokens(
        connection=connection_for_company(company=theirs_company),
        realm_id=tokens["realm_id"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )
    ours_realm, theirs_realm = qbo.realm, tokens["realm_id"]

    def deleted(realm, qb_id, n):
        return {
            "specversion": "1.0",
            "id": f"evt-{realm}-{qb_id}-{n}",
            "type": "qbo.invoice.deleted.v1",
            "time": "2026-12-01T10:00:00Z",
            "intuitaccountid": realm,
            "intuitentityid": str(qb_id),
        }

    # QuickBooks Ids repeat across realms: Invoice 41 of ours, 42 of theirs, and both of a realm
    # connected to nobody here.
    events = [deleted(ours_realm, 41, 1), deleted(theirs_realm, 42, 2)]
    events += [deleted("5555", 41, 3), deleted("5555", 42, 4)]
    assert deliver(Client(), events).status_code == 200
    for event in WebhookEvent.objects.order_by("pk"):
        pull.webhook_event_process(event_id=event.pk)

    def status(records, qb_id):
        return Invoice.objects.get(pk=records["synced"][qb_id].pk).sync_status

    assert (status(ours, 41), status(ours, 42)) == (SyncStatus.PROBLEM, SyncStatus.SYNCED)
    assert (status(theirs, 41), status(theirs, 42)) == (SyncStatus.SYNCED, SyncStatus.PROBLEM)
    outcomes = dict(WebhookEvent.objects.values_list("event_key", "outcome"))
    assert sorted(outcomes.values()) == ["ignored", "ignored", "processed", "processed"]
    assert QuickBooksConnection.objects.filter(realm_id="5555").count() == 0
    assert Company.objects.count() == 2
