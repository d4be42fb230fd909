"""Reads are metered by Intuit (CorePlus): what we count, how few we spend, and what a tenant
sees. Against the live emulator; webhooks delivered by it to our endpoint."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from finance.models import Company, Invoice, Membership
from sync.models import ApiUsage, QuickBooksConnection, ReadPause, WebhookEvent
from sync.selectors import connection_for_company
from sync.services import engine, pull, usage
from sync.services.connection import connect_with_tokens
from tests.sync.test_pull import receive_in_quickbooks, signed

pytestmark = pytest.mark.django_db(transaction=True)


def reads(**filters) -> int:
    return ApiUsage.objects.filter(**filters).aggregate(n=Sum("coreplus"))["n"] or 0


def writes(**filters) -> int:
    return ApiUsage.objects.filter(**filters).aggregate(n=Sum("core"))["n"] or 0


def invoices(count):
    from finance.syncstate import SyncStatus
    from tests.finance.factories import ChargeCodeFactory
    from tests.sync.helpers import invoice_with

    code = ChargeCodeFactory()
    type(code).objects.filter(pk=code.pk).update(sync_status=SyncStatus.PENDING)
    engine.push_record(sync_type="item", pk=code.pk)
    made = []
    for _ in range(count):
        invoice = invoice_with(code, lines=1)
        assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"
        made.append(Invoice.objects.select_related("customer").get(pk=invoice.pk))
    return made


def test_pushing_spends_writes_and_no_read(qbo):
    before_reads = reads()

    made = invoices(3)

    # Customer, item and 3 invoices written (4 or 5 calls with the customer's own), nothing
    # read back after any write: each answer carries the object.
    assert writes() >= 5
    assert reads() - before_reads <= 1  # the income account, found once for the company
    assert reads(purpose="lookup") == 0
    assert all(invoice.qb_id for invoice in made)
    usage_row = ApiUsage.objects.get(purpose="push", company_id=made[0].company_id)
    assert usage_row.month == usage.month_start()


def test_a_burst_of_webhooks_costs_one_change_pull(qbo, settings):
    from qbo_sandbox import services as emulator

    settings.SYNC_PULL_DEBOUNCE_SECONDS = 30
    made = invoices(10)
    emulator.flush_webhooks()
    pull.webhook_events_process_pending()  # the echoes of our own pushes: no read
    assert WebhookEvent.objects.filter(outcome="skipped").count() >= 10
    assert QuickBooksConnection.objects.get(pk=qbo.connection.pk).pull_requested_at is None
    before = reads()

    for invoice in made:  # ten payments received in QuickBooks, one after the other
        receive_in_quickbooks(qbo, invoice, invoice.total)
    emulator.flush_webhooks()
    pull.webhook_events_process_pending()

    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    assert connection.pull_requested_at > timezone.now() + timedelta(seconds=20)  # debounced
    assert reads() == before  # nothing read yet, nothing read per event
    assert Invoice.objects.filter(status=Invoice.Status.PAID).count() == 0
    pending = WebhookEvent.objects.filter(entity_name="Payment", processed_at__isnull=True)
    assert pending.count() == 10

    QuickBooksConnection.objects.filter(pk=connection.pk).update(
        pull_requested_at=timezone.now()
    )  # the debounce has passed
    pull.webhook_events_process_pending()

    assert Invoice.objects.filter(status=Invoice.Status.PAID).count() == 10
    assert reads() - before == 1
    assert reads(purpose="webhook_pull") == 1
    assert not pending.exists()
    assert WebhookEvent.objects.filter(entity_name="Payment", outcome="pulled").count() == 10


def test_our_own_update_echoed_by_a_webhook_needs_no_pull(qbo):
    from qbo_sandbox import services as emulator

    (invoice,) = invoices(1)
    emulator.flush_webhooks()
    pull.webhook_events_process_pending()
    from finance.services import invoice_update

    invoice_update(invoice=invoice, memo="Gate ticket attached")
    assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"
    emulator.flush_webhooks()
    pull.webhook_events_process_pending()

    update = WebhookEvent.objects.get(entity_name="Invoice", operation="update")
    assert update.outcome == "skipped"
    assert QuickBooksConnection.objects.get(pk=qbo.connection.pk).pull_requested_at is None

    # The same invoice changed in QuickBooks afterwards is not taken for an echo.
    later = pull.WebhookEvent.objects.create(
        event_key="ce:someone-else",
        realm_id=qbo.realm,
        entity_name="Invoice",
        entity_id=invoice.qb_id,
        operation="update",
        occurred_at=(timezone.now() + timedelta(seconds=5)).isoformat(),
    )
    assert pull.webhook_event_process(event_id=later.pk) == "pull_requested"


def second_tenant(qbo, name="Bayou Drayage LLC"):
    from finance.services import finance_settings_get, tenant_ensure
    from qbo_sandbox import services as emulator

    company, _ = tenant_ensure(name=name)
    finance_settings_get(company=company)
    books = emulator.company_create(name=f"{name} Books")
    tokens = emulator.tokens_issue(app=qbo.app, company=books)
    connect_with_tokens(
        connection=connection_for_company(company=company),
        realm_id=tokens["realm_id"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )
    return company, tokens["realm_id"]


def cloud_event(realm, entity, qb_id, n, verb="created"):
    return {
        "specversion": "1.0",
        "id": f"evt-{realm}-{entity}-{qb_id}-{n}",
        "source": "intuit.qbo",
        "type": f"qbo.{entity.lower()}.{verb}.v1",
        "datacontenttype": "application/json",
        "time": timezone.now().isoformat(),
        "intuitaccountid": realm,
        "intuitentityid": str(qb_id),
        "data": {},
    }


@pytest.mark.parametrize("content_type", ["application/cloudevents+json", "application/json"])
def test_one_delivery_of_100_events_for_two_realms_is_routed_and_taken_in_once(qbo, content_type):
    (invoice,) = invoices(1)
    other, other_realm = second_tenant(qbo)
    remote = receive_in_quickbooks(qbo, invoice, Decimal("25.00"))
    events = [cloud_event(qbo.realm, "Payment", remote["Id"], 0)]
    # 99 more: the other realm's (unknown objects there) and a realm connected to nobody.
    events += [cloud_event(other_realm, "Payment", 7000 + n, n) for n in range(60)]
    events += [cloud_event("5555", "Payment", 8000 + n, n) for n in range(39)]
    body = json.dumps(events).encode()

    for _ in range(2):  # Intuit redelivers with the same event ids
        response = Client().post(
            "/quickbooks/webhook/",
            data=body,
            content_type=content_type,
            HTTP_INTUIT_SIGNATURE=signed(body),
        )
        assert response.status_code == 200

    delivered = WebhookEvent.objects.filter(event_key__startswith="ce:evt-")
    assert delivered.count() == 100  # (the emulator's own deliveries of our pushes aside)
    assert set(delivered.values_list("deliveries", flat=True)) == {2}
    pull.webhook_events_process_pending()

    assert set(delivered.values_list("realm_id", flat=True)) == {qbo.realm, other_realm, "5555"}
    assert WebhookEvent.objects.filter(realm_id="5555", outcome="ignored").count() == 39
    assert WebhookEvent.objects.filter(realm_id=other_realm, outcome="pulled").count() == 60
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PARTIALLY_PAID
    # One change pull per realm that had news, each counted to its own tenant.
    assert reads(company=other, purpose="webhook_pull") == 1
    assert reads(company_id=invoice.company_id, purpose="webhook_pull") == 1
    assert all(
        connection.last_webhook_at is not None
        for connection in QuickBooksConnection.objects.exclude(realm_id="")
    )


def test_the_safety_sweep_runs_every_3_hours_while_webhooks_are_healthy(qbo, settings):
    settings.SYNC_SAFETY_PULL_SECONDS = 3 * 3600
    settings.SYNC_PULL_SECONDS = 300
    connection = QuickBooksConnection.objects.filter(pk=qbo.connection.pk)
    start = timezone.now()
    connection.update(last_pull_at=start, last_webhook_at=start, unechoed_write_at=None)

    def pulls_over_a_day(**state):
        connection.update(last_pull_at=start, **state)
        times = []
        for tick in range(1, 24 * 12 + 1):  # beat's pull tick every 5 minutes
            now = start + timedelta(minutes=5 * tick)
            if pull.pull_purpose_due(connection.get(), now):
                times.append(now)
                connection.update(last_pull_at=now)
        return len(times)

    assert pulls_over_a_day() == 8  # idle, webhooks healthy: every 3 hours
    # A write of ours that no webhook followed for 15 minutes: webhooks are silent.
    assert pulls_over_a_day(unechoed_write_at=start - timedelta(minutes=20)) == 288
    assert pulls_over_a_day(last_webhook_at=None) == 288  # never heard from
    settings.QBO_WEBHOOK_VERIFIER_TOKEN = ""
    assert pulls_over_a_day(last_webhook_at=start) == 288  # not configured


def test_a_real_idle_day_of_pull_ticks_reads_8_times(qbo, settings):
    connection = QuickBooksConnection.objects.filter(pk=qbo.connection.pk)
    start = timezone.now()
    connection.update(last_pull_at=start, last_webhook_at=start)
    before = reads()
    for tick in range(1, 24 * 12 + 1):  # beat's tick every 5 minutes, a day of them
        now = start + timedelta(minutes=5 * tick)
        spent = reads()
        pull.pull_all(now=now)
        if reads() > spent:
            connection.update(last_pull_at=now)  # the pull ran at that (simulated) moment
    assert reads(purpose="safety_pull") == reads() - before == 8


def login_finance(client, finance_user, company):
    Membership.objects.get_or_create(user=finance_user, company=company)
    client.force_login(finance_user)


def test_the_page_shows_the_reads_against_the_workspace_allowance(qbo, client, finance_user):
    company = Company.objects.get(pk=qbo.connection.company_id)
    other, _ = second_tenant(qbo)
    month = usage.month_start()
    ApiUsage.objects.create(company=company, month=month, purpose="webhook_pull", coreplus=1200)
    ApiUsage.objects.create(company=company, month=month, purpose="lookup", coreplus=30)
    ApiUsage.objects.create(company=other, month=month, purpose="safety_pull", coreplus=398_000)
    last_month = month - timedelta(days=3)
    ApiUsage.objects.create(company=company, month=last_month.replace(day=1), purpose="push",
                            coreplus=90_000)  # fmt: skip
    login_finance(client, finance_user, company)

    html = client.get("/sync/settings/connection/", HTTP_HX_REQUEST="true").content.decode()

    assert 'data-testid="read-budget"' in html
    assert "1,230 reads" in html  # this tenant, this month only
    assert "399,230 of 500,000" in html and "79.8 %" in html
    assert 'data-testid="reads-warning"' not in html  # below 80 %
    assert "Taking in changes QuickBooks announced (webhooks)" in html
    ApiUsage.objects.filter(company=other).update(coreplus=399_000)

    html = client.get("/sync/settings/connection/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="reads-warning"' in html and "80.0 %" in html


def test_a_refused_read_pauses_pulls_while_writes_go_on(qbo, client, finance_user, settings):
    """Intuit's answer once the monthly allowance is spent: 429 ThrottleExceeded naming the
    CorePlus limit. The emulator gives it when the app's allowance is used up."""
    from tests.sync.helpers import invoice_with

    (first,) = invoices(1)  # the company's item and income account are known from here on
    qbo.app.coreplus_allowance = 0
    qbo.app.save()
    before = reads()

    assert pull.pull_all() == {}  # the pull is refused: no crash, nothing counted

    pause = ReadPause.objects.get()
    assert pause.until > timezone.now() and pause.retry_at <= pause.until
    assert reads() == before  # a refused call is not a call Intuit served
    assert pull.pull_all() == {}  # paused: not even tried again before the probe
    assert ReadPause.objects.get().since == pause.since
    from finance.models import ChargeCode

    code = ChargeCode.objects.get(company_id=first.company_id)
    invoice = invoice_with(code, lines=1, customer=first.customer)
    assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"  # writes go on
    login_finance(client, finance_user, Company.objects.get(pk=qbo.connection.company_id))
    html = client.get("/sync/settings/connection/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="reads-paused"' in html and "Records keep going to QuickBooks" in html

    qbo.app.coreplus_allowance = None  # an upgrade: reads are served again
    qbo.app.save()
    ReadPause.objects.update(retry_at=timezone.now())  # the probe is due
    pull.pull_all(now=timezone.now() + timedelta(days=1))
    assert not ReadPause.objects.exists()
    assert QuickBooksConnection.objects.get(pk=qbo.connection.pk).pull_failures == 0
