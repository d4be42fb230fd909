"""A customer name QuickBooks says is taken, resolved by finance on one screen, no admin; the
invoices waiting on the customer follow by themselves."""

import pytest
from django.urls import reverse

from finance.models import Customer, Invoice, ManualAction
from finance.syncstate import SyncStatus
from sync.services import engine
from sync.services.engine import SyncContext
from tests.finance.factories import ChargeCodeFactory, CustomerFactory
from tests.sync.helpers import invoice_with
from tests.sync.uifactories import park

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "Harbor Logistics LLC"


@pytest.fixture(autouse=True)
def unpaced(settings):
    settings.QBO_RATE_LIMIT_ENABLED = False  # a QuickBooks user and the engine at test speed


def push(record):
    record.refresh_from_db()
    return engine.push_record(sync_type=record.sync_type, pk=record.pk)


@pytest.fixture
def conflict(qbo):
    """Theirs in QuickBooks (another email), ours refused with 6240, an invoice waiting on it."""
    theirs = SyncContext.for_company(qbo.connection.company_id).session.create(
        "Customer",
        {"DisplayName": NAME, "PrimaryEmailAddr": {"Address": "ap@harbor.example"},
         "BillAddr": {"Line1": "1 Dock Rd", "City": "Oakland"}},
        request_id="test-theirs-harbor",
    )  # fmt: skip
    customer = CustomerFactory(display_name=NAME, billing_email="billing@ours.example")
    code = ChargeCodeFactory()
    type(code).objects.filter(pk=code.pk).update(sync_status=SyncStatus.PENDING)
    assert push(code) == "synced"
    invoice = invoice_with(code, customer=customer)
    assert push(invoice) == "problem"  # auto-create pushes the customer first: 6240
    customer.refresh_from_db()
    invoice.refresh_from_db()
    assert customer.problem_reason == "customer_email_mismatch"
    assert invoice.problem_reason == "customer_not_synced"
    return theirs, customer, invoice


def match_url(customer):
    return reverse("sync:customer_match", args=[customer.pk])


def test_the_screen_shows_ours_beside_theirs(client, finance_user, conflict):
    theirs, customer, _ = conflict
    client.force_login(finance_user)

    html = client.get(match_url(customer)).content.decode()

    assert "billing@ours.example" in html and "ap@harbor.example" in html
    assert f'data-qb-id="{theirs["Id"]}"' in html and "1 Dock Rd, Oakland" in html


def test_link_adopts_theirs_and_the_waiting_invoice_follows(client, finance_user, qbo, conflict):
    theirs, customer, invoice = conflict
    client.force_login(finance_user)

    response = client.post(match_url(customer), {"choice": "link", "qb_id": theirs["Id"]})

    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.sync_status, customer.qb_id) == (SyncStatus.SYNCED, theirs["Id"])
    assert qbo.get("Customer", theirs["Id"])["PrimaryEmailAddr"]["Address"] == "ap@harbor.example"
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PENDING  # back in the queue, nobody re-synced it
    # Waiting shows it without the customer's old failure, which is fixed.
    assert (invoice.last_error_code, invoice.last_error_message) == ("", "")
    waiting = client.get(reverse("sync:waiting")).content.decode()
    assert str(invoice.doc_number) in waiting and "6240" not in waiting
    assert push(invoice) == "synced"
    invoice.refresh_from_db()
    assert qbo.get("Invoice", invoice.qb_id)["CustomerRef"]["value"] == theirs["Id"]
    assert ManualAction.objects.filter(kind="link", record_id=customer.pk, user=finance_user)


def test_link_and_update_sends_our_email_over_theirs(client, finance_user, qbo, conflict):
    theirs, customer, invoice = conflict
    client.force_login(finance_user)

    client.post(match_url(customer), {"choice": "link_send", "qb_id": theirs["Id"]})

    assert push(customer) == "synced"
    remote = qbo.get("Customer", theirs["Id"])
    assert remote["PrimaryEmailAddr"]["Address"] == "billing@ours.example"
    assert len(qbo.objects("Customer")) == 1
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PENDING


def test_create_under_another_name(client, finance_user, qbo, conflict):
    theirs, customer, invoice = conflict
    client.force_login(finance_user)

    client.post(match_url(customer), {"choice": "rename", "display_name": f"{NAME} (Oakland)"})

    assert push(customer) == "synced"
    customer.refresh_from_db()
    assert customer.qb_id != theirs["Id"]
    assert qbo.get("Customer", customer.qb_id)["DisplayName"] == f"{NAME} (Oakland)"
    assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.PENDING


def test_link_refuses_a_quickbooks_customer_of_another_name(client, finance_user, qbo, conflict):
    _, customer, _ = conflict
    other = SyncContext.for_company(qbo.connection.company_id).session.create(
        "Customer", {"DisplayName": "Someone Else Inc"}, request_id="test-someone-else"
    )
    client.force_login(finance_user)

    response = client.post(
        match_url(customer), {"choice": "link", "qb_id": other["Id"]}, follow=True
    )

    assert "pick one of the customers listed" in response.content.decode()
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.PROBLEM and customer.qb_id == ""


def test_support_may_look_but_not_choose(client, support_user, conflict):
    theirs, customer, _ = conflict
    client.force_login(support_user)

    assert client.get(match_url(customer)).status_code == 200
    response = client.post(match_url(customer), {"choice": "link", "qb_id": theirs["Id"]})
    assert response.status_code == 403
    assert Customer.objects.get(pk=customer.pk).qb_id == ""


def test_fix_links_lead_finance_only_where_it_can_go(
    client, finance_user, support_user, db, monkeypatch
):
    from dataclasses import replace

    from sync import problems
    from tests.finance.factories import InvoiceFactory

    customer = park(CustomerFactory(), reason="customer_email_mismatch")
    taken = park(InvoiceFactory(lines=1), reason="duplicate_doc_number")
    # A fix only support can make (none today) is said to finance with a note to send them.
    only_support = replace(problems.REASONS["validation"], support="correct it in admin")
    monkeypatch.setitem(problems.REASONS, "validation", only_support)
    invoice = park(InvoiceFactory(lines=1), reason="validation")
    client.force_login(finance_user)

    customers = client.get(reverse("sync:problems"), {"type": "customer"}).content.decode()
    invoices = client.get(reverse("sync:problems"), {"type": "invoice"}).content.decode()

    assert match_url(customer) in customers
    assert reverse("sync:doc_number_match", args=["invoice", taken.pk]) in invoices
    assert "/admin/" not in customers and "/admin/" not in invoices
    assert reverse("sync:detail", args=["invoice", invoice.pk]) in invoices
    assert 'data-testid="support-note"' in invoices and f"TMS id {invoice.pk}" in invoices
    client.force_login(support_user)
    invoices = client.get(reverse("sync:problems"), {"type": "invoice"}).content.decode()
    assert f"/admin/finance/invoice/{invoice.pk}/change/" in invoices
    assert 'data-testid="support-note"' not in invoices
