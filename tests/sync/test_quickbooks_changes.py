"""What someone changed in QuickBooks is shown and chosen, never written over by a push."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from finance.models import Invoice, ManualAction
from finance.services import finance_settings_get, finance_settings_update, invoice_update
from finance.syncstate import SyncStatus
from sync.services import actions, engine
from sync.services.drift import voided
from sync.services.engine import SyncContext
from sync.services.pull_apply import invoice_changed
from tests.finance.factories import ChargeCodeFactory
from tests.sync.conftest import wait_for
from tests.sync.helpers import invoice_with

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def unpaced(settings):
    # Two QuickBooks users at test speed: our 10/s pacing would defer pushes ("retry").
    settings.QBO_RATE_LIMIT_ENABLED = False


def push(record):
    record.refresh_from_db()
    return engine.push_record(sync_type=record.sync_type, pk=record.pk)


def quickbooks_user(qbo):
    """Another QuickBooks user on the same company, through the API."""
    return SyncContext.for_company(qbo.connection.company_id).session


def quickbooks_op(qbo, invoice, operation):
    """Void or delete the invoice in QuickBooks, as a QuickBooks user would."""
    session = quickbooks_user(qbo)
    remote = session.read("Invoice", invoice.qb_id)
    session.call(
        "post",
        f"{session.client.api_url}/company/{session.realm}/invoice",
        json.dumps({"Id": remote["Id"], "SyncToken": remote["SyncToken"]}),
        params={"operation": operation},
        request_id=f"test-{operation}-{invoice.pk}",
        write=True,
    )
    return qbo.get("Invoice", invoice.qb_id) if operation == "void" else None


def synced_invoice(qbo):
    code = ChargeCodeFactory()
    type(code).objects.filter(pk=code.pk).update(sync_status=SyncStatus.PENDING)
    assert push(code) == "synced"
    code.refresh_from_db()
    invoice = invoice_with(code, lines=1)
    assert push(invoice) == "synced"
    invoice.refresh_from_db()
    return invoice


def edit_first_line_in_quickbooks(qbo, invoice, amount):
    session = quickbooks_user(qbo)
    remote = session.read("Invoice", invoice.qb_id)
    line = next(item for item in remote["Line"] if item["DetailType"] == "SalesItemLineDetail")
    line["Amount"] = amount
    line["SalesItemLineDetail"]["UnitPrice"] = amount
    line["SalesItemLineDetail"]["Qty"] = 1
    session.update("Invoice", remote, request_id=f"test-edit-{invoice.pk}-{amount}")


def edit_in_the_tms(invoice):
    return invoice_update(invoice=invoice, due_date=invoice.due_date + timedelta(days=7))


def test_resync_of_an_invoice_voided_in_quickbooks_leaves_it_voided(qbo):
    invoice = synced_invoice(qbo)
    remote = quickbooks_op(qbo, invoice, "void")
    assert invoice_changed(connection=qbo.connection, obj=remote) == "flagged"
    invoice.refresh_from_db()

    actions.record_resync(record=invoice, user=None)

    assert push(invoice) == "problem"
    invoice.refresh_from_db()
    assert invoice.problem_reason == "voided_in_quickbooks"
    assert voided(qbo.get("Invoice", invoice.qb_id))  # not un-voided by the re-sync
    assert invoice.qb_drift["voided"] is True


def test_a_quickbooks_edit_of_a_line_we_sent_stops_our_push_and_shows_both(qbo):
    invoice = synced_invoice(qbo)
    edit_first_line_in_quickbooks(qbo, invoice, 99.0)

    assert push(edit_in_the_tms(invoice)) == "problem"

    invoice.refresh_from_db()
    assert invoice.problem_reason == "changed_in_quickbooks"
    amounts = {c["field"]: c for c in invoice.qb_drift["changes"]}["Line 1 Amount"]
    assert (Decimal(amounts["ours"]), Decimal(amounts["theirs"])) == (Decimal("125.50"), 99)
    assert "Line 1 Amount" in invoice.last_error_message
    remote = qbo.get("Invoice", invoice.qb_id)
    assert Decimal(str(remote["TotalAmt"])) == Decimal("99")  # theirs, untouched


def test_overwrite_sends_the_tms_version_over_that_quickbooks_version_only(qbo):
    invoice = synced_invoice(qbo)
    edit_first_line_in_quickbooks(qbo, invoice, 99.0)
    assert push(edit_in_the_tms(invoice)) == "problem"
    invoice.refresh_from_db()

    actions.record_overwrite_quickbooks(record=invoice, user=None)
    edit_first_line_in_quickbooks(qbo, invoice, 77.0)  # changed again after the person chose
    assert push(invoice) == "problem"  # they agreed to overwrite 99, not 77
    invoice.refresh_from_db()
    theirs = {c["field"]: c["theirs"] for c in invoice.qb_drift["changes"]}
    assert Decimal(theirs["Line 1 Amount"]) == 77

    actions.record_overwrite_quickbooks(record=invoice, user=None)
    assert push(invoice) == "synced"

    invoice.refresh_from_db()
    remote = qbo.get("Invoice", invoice.qb_id)
    assert Decimal(str(remote["TotalAmt"])) == invoice.total == Decimal("125.50")
    assert invoice.qb_drift == {} and invoice.qb_overwrite_token == ""
    assert ManualAction.objects.filter(kind="overwrite", record_id=invoice.pk).count() == 2


def test_a_change_to_a_field_we_do_not_send_is_healed_without_asking(qbo):
    invoice = synced_invoice(qbo)
    session = quickbooks_user(qbo)
    remote = session.read("Invoice", invoice.qb_id)
    session.update(
        "Invoice",
        {"Id": remote["Id"], "SyncToken": remote["SyncToken"], "sparse": True,
         "CustomerMemo": {"value": "Thanks for your business"}},
        request_id="test-memo",
    )  # fmt: skip

    assert push(edit_in_the_tms(invoice)) == "synced"

    remote = qbo.get("Invoice", invoice.qb_id)
    assert remote["DueDate"] == (invoice.due_date + timedelta(days=7)).isoformat()


def test_void_in_the_tms_too_ends_synced_with_quickbooks_still_voided(qbo):
    invoice = synced_invoice(qbo)
    remote = quickbooks_op(qbo, invoice, "void")
    invoice_changed(connection=qbo.connection, obj=remote)
    invoice.refresh_from_db()

    actions.record_accept_void(record=invoice, user=None)
    assert push(invoice) == "synced"

    invoice.refresh_from_db()
    remote = qbo.get("Invoice", invoice.qb_id)
    assert invoice.status == Invoice.Status.VOID and voided(remote)
    assert invoice.qb_sync_token == str(remote["SyncToken"])
    assert ManualAction.objects.filter(kind="accept_quickbooks", record_id=invoice.pk).exists()


def test_send_again_as_new_creates_an_invoice_deleted_in_quickbooks(qbo):
    invoice = synced_invoice(qbo)
    old_id = invoice.qb_id
    quickbooks_op(qbo, invoice, "delete")
    assert push(edit_in_the_tms(invoice)) == "problem"
    invoice.refresh_from_db()
    assert invoice.problem_reason == "deleted_in_quickbooks"

    actions.record_send_again_as_new(record=invoice, user=None)
    assert push(invoice) == "synced"

    invoice.refresh_from_db()
    assert invoice.qb_id and invoice.qb_id != old_id
    assert qbo.get("Invoice", invoice.qb_id)["DocNumber"] == invoice.doc_number


def test_the_choices_refuse_a_record_quickbooks_did_not_change(qbo):
    invoice = synced_invoice(qbo)
    for choose in (
        actions.record_overwrite_quickbooks,
        actions.record_accept_void,
        actions.record_send_again_as_new,
    ):
        with pytest.raises(actions.ActionRefused):
            choose(record=invoice, user=None)


def test_switching_a_type_on_again_brings_its_skipped_records_back(qbo, celery_worker):
    invoice = synced_invoice(qbo)
    fs = finance_settings_get(company=qbo.connection.company)
    finance_settings_update(settings_row=fs, fields={"sync_invoices": False}, user=None)
    assert push(edit_in_the_tms(invoice)) == "skipped"

    finance_settings_update(settings_row=fs, fields={"sync_invoices": True}, user=None)

    invoice.refresh_from_db()
    assert invoice.sync_status in {SyncStatus.PENDING, SyncStatus.IN_FLIGHT, SyncStatus.SYNCED}
    wait_for(
        lambda: Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.SYNCED,
        message="the invoice switched back on was not sent by the sweep",
    )
    remote = qbo.get("Invoice", invoice.qb_id)
    assert remote["DueDate"] == invoice.due_date.isoformat()


def test_the_record_page_compares_quickbooks_copy_with_our_last_write(client, finance_user, qbo):
    invoice = synced_invoice(qbo)
    url = reverse("sync:detail", args=["invoice", invoice.pk])
    client.force_login(finance_user)
    assert 'data-testid="compare-link"' in client.get(url).content.decode()  # no read yet

    assert 'data-testid="in-step"' in client.get(url, {"compare": 1}).content.decode()
    edit_first_line_in_quickbooks(qbo, invoice, 88.0)
    html = client.get(url, {"compare": 1}).content.decode()

    assert "Line 1 Amount" in html and "125.5" in html and "88" in html
    assert 'data-testid="in-step"' not in html
