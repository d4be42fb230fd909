"""A customer or item made inactive in QuickBooks: the records using it wait on it, finance
finds and fixes it on its own tab (no admin, no support), and the records follow by themselves."""

import pytest
from django.urls import reverse

from finance.models import ChargeCode, Customer, Invoice
from finance.syncstate import SyncStatus
from sync.services import actions
from sync.services.pull_apply import customer_changed
from tests.sync.helpers import invoice_with
from tests.sync.test_faults import as_qbo_user, mapped_code, push

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def unpaced(settings):
    settings.QBO_RATE_LIMIT_ENABLED = False  # a QuickBooks user and the engine at test speed


def deactivate(qbo, entity, qb_id):
    session = as_qbo_user(qbo)
    remote = session.read(entity, qb_id)
    return session.update(
        entity,
        {"Id": remote["Id"], "SyncToken": remote["SyncToken"], "sparse": True, "Active": False},
        request_id=f"test-deactivate-{entity}-{qb_id}",
    )


def invoice_of_a_synced_customer(qbo):
    invoice = invoice_with(mapped_code(qbo))
    assert push(invoice.customer) == "synced"
    invoice.customer.refresh_from_db()
    return invoice


def test_a_customer_made_inactive_in_quickbooks_is_chosen_and_its_invoice_follows(qbo):
    invoice = invoice_of_a_synced_customer(qbo)
    customer = invoice.customer
    customer_changed(connection=qbo.connection, obj=deactivate(qbo, "Customer", customer.qb_id))
    customer.refresh_from_db()
    assert customer.problem_reason == "changed_in_quickbooks"  # not "deleted": send again fails
    assert {c["field"] for c in customer.qb_drift["changes"]} == {"Active"}

    assert push(invoice) == "problem"  # QuickBooks' 610: the customer is inactive
    invoice.refresh_from_db()
    assert invoice.problem_reason == "uses_a_problem"  # it waits on the customer

    actions.record_overwrite_quickbooks(record=customer, user=None)  # reactivate it there
    assert push(customer) == "synced"
    assert qbo.get("Customer", customer.qb_id)["Active"] is True
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PENDING  # back in the queue, nobody re-synced it
    assert push(invoice) == "synced"


def test_find_what_quickbooks_refuses_names_an_inactive_item(client, finance_user, qbo):
    invoice = invoice_of_a_synced_customer(qbo)
    code = ChargeCode.objects.get(pk=invoice.charge_sets.get().lines.first().charge_code_id)
    deactivate(qbo, "Item", code.qb_id)  # no pull hook for items: nothing knows yet
    assert push(invoice) == "problem"
    invoice.refresh_from_db()
    assert invoice.problem_reason == "inactive_reference"
    client.force_login(finance_user)
    listed = client.get(reverse("sync:problems") + "?type=invoice").content.decode()
    assert "Find what QuickBooks refuses" in listed and "admin" not in listed.split("<main")[-1]

    url = reverse("sync:record_action", args=["invoice", invoice.pk, "check"])
    client.post(url, HTTP_HX_REQUEST="true")

    invoice.refresh_from_db()
    code.refresh_from_db()
    assert invoice.problem_reason == "uses_a_problem"
    assert f"Charge code {code.code}" in invoice.last_error_message
    assert (code.sync_status, code.problem_reason) == (SyncStatus.PROBLEM, "changed_in_quickbooks")
    actions.record_overwrite_quickbooks(record=code, user=finance_user)
    assert push(code) == "synced"
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PENDING
    assert push(invoice) == "synced"


def test_with_nothing_inactive_the_check_sends_it_again(qbo, finance_user):
    invoice = invoice_of_a_synced_customer(qbo)
    Invoice.objects.filter(pk=invoice.pk).update(
        sync_status=SyncStatus.PROBLEM,
        problem_reason="inactive_reference",
        problem_since=invoice.created_at,
    )
    invoice.refresh_from_db()

    actions.record_check_references(record=invoice, user=finance_user)

    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PENDING and invoice.problem_reason == ""
    assert Customer.objects.get(pk=invoice.customer_id).sync_status == SyncStatus.SYNCED
