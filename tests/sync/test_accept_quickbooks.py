"""'Use QuickBooks' version': the TMS record takes what someone changed in QuickBooks, through
the finance services' guards, and nothing is sent; what it cannot take is refused, unchanged."""

from decimal import Decimal

import pytest
from django.urls import reverse

from finance.models import Customer, Invoice, ManualAction
from finance.services import customer_update, payment_create
from finance.syncstate import SyncStatus
from sync.models import SyncAttempt
from sync.services import actions
from tests.sync.test_quickbooks_changes import (
    edit_first_line_in_quickbooks,
    edit_in_the_tms,
    push,
    quickbooks_user,
    synced_invoice,
    unpaced,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.django_db(transaction=True)


def changed_in_quickbooks(qbo, amount=99.0):
    """Changed in QuickBooks, met by a push that changes nothing in the TMS (a re-send)."""
    invoice = synced_invoice(qbo)
    edit_first_line_in_quickbooks(qbo, invoice, amount)
    actions.record_resend(record=invoice, user=None)
    assert push(invoice) == "problem"
    invoice.refresh_from_db()
    assert invoice.problem_reason == "changed_in_quickbooks"
    return invoice


def writes_to_quickbooks(qbo):
    from qbo_sandbox.models import RequestLog

    return RequestLog.objects.filter(company=qbo.company).count()  # one per requestid


def test_the_invoice_takes_quickbooks_amounts_and_nothing_is_sent(qbo, finance_user):
    invoice = changed_in_quickbooks(qbo)
    line = invoice.charge_sets.get().lines.get()
    remote_before = qbo.get("Invoice", invoice.qb_id)
    writes = writes_to_quickbooks(qbo)

    actions.record_accept_quickbooks(record=invoice, user=finance_user)

    invoice.refresh_from_db()
    assert (invoice.sync_status, invoice.total) == (SyncStatus.SYNCED, Decimal("99.00"))
    assert invoice.synced_version == invoice.version  # nothing owed: no push follows
    assert invoice.qb_sync_token == str(remote_before["SyncToken"])
    taken = invoice.charge_sets.get().lines.get()
    assert (taken.charge_code_id, taken.quantity, taken.rate) == (line.charge_code_id, 1, 99)
    assert taken.note == line.note  # the same charge keeps its note
    assert writes_to_quickbooks(qbo) == writes  # not one write
    assert qbo.get("Invoice", invoice.qb_id)["SyncToken"] == remote_before["SyncToken"]
    audit = ManualAction.objects.get(kind="accept_quickbooks", record_id=invoice.pk)
    assert audit.user == finance_user and "Line 1 Amount" in audit.note


def test_after_taking_it_a_tms_edit_is_pushed_without_a_false_conflict(qbo, finance_user):
    invoice = changed_in_quickbooks(qbo)
    actions.record_accept_quickbooks(record=invoice, user=finance_user)

    invoice.refresh_from_db()
    assert push(edit_in_the_tms(invoice)) == "synced"  # compared with QuickBooks' version taken
    remote = qbo.get("Invoice", invoice.qb_id)
    assert Decimal(str(remote["TotalAmt"])) == Decimal("99")
    assert SyncAttempt.objects.filter(record_id=invoice.pk, operation="accept").count() == 1


def test_the_tms_edit_that_met_the_change_goes_after_taking_quickbooks_lines(qbo, finance_user):
    invoice = synced_invoice(qbo)
    edit_first_line_in_quickbooks(qbo, invoice, 99.0)
    due = edit_in_the_tms(invoice).due_date  # ours: a later due date
    assert push(invoice) == "problem"
    invoice.refresh_from_db()

    actions.record_accept_quickbooks(record=invoice, user=finance_user)

    invoice.refresh_from_db()
    assert (invoice.total, invoice.due_date) == (Decimal("99.00"), due)
    assert invoice.sync_status == SyncStatus.PENDING and invoice.qb_overwrite_token
    assert push(invoice) == "synced"
    remote = qbo.get("Invoice", invoice.qb_id)
    assert Decimal(str(remote["TotalAmt"])) == 99 and remote["DueDate"] == due.isoformat()


def test_quickbooks_changed_again_since_shown_moves_nothing(qbo, finance_user):
    invoice = changed_in_quickbooks(qbo)
    edit_first_line_in_quickbooks(qbo, invoice, 77.0)  # after the row was drawn

    with pytest.raises(actions.ActionRefused, match="changed .* again"):
        actions.record_accept_quickbooks(record=invoice, user=finance_user)

    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PROBLEM and invoice.total == Decimal("125.50")
    theirs = {c["field"]: c["theirs"] for c in invoice.qb_drift["changes"]}
    assert Decimal(theirs["Line 1 Amount"]) == 77  # the row shows the newest change


def test_an_item_no_charge_code_maps_to_is_refused_and_nothing_changes(qbo, finance_user):
    invoice = changed_in_quickbooks(qbo)
    session = quickbooks_user(qbo)
    other = session.create(
        "Item",
        {"Name": "Lumper fee", "Type": "Service", "IncomeAccountRef": {"value": "1"}},
        request_id=f"test-item-{invoice.pk}",
    )
    remote = session.read("Invoice", invoice.qb_id)
    line = next(item for item in remote["Line"] if item["DetailType"] == "SalesItemLineDetail")
    line["SalesItemLineDetail"]["ItemRef"] = {"value": other["Id"], "name": "Lumper fee"}
    session.update("Invoice", remote, request_id=f"test-item-line-{invoice.pk}")
    actions.record_resend(record=Invoice.objects.get(pk=invoice.pk), user=None)
    assert push(invoice) == "problem"
    invoice.refresh_from_db()

    with pytest.raises(actions.ActionRefused, match="Lumper fee, which no charge code"):
        actions.record_accept_quickbooks(record=invoice, user=finance_user)

    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PROBLEM and invoice.total == Decimal("125.50")


def test_a_customer_takes_quickbooks_email_and_keeps_its_own_new_phone(qbo, finance_user):
    invoice = synced_invoice(qbo)
    customer = Customer.objects.get(pk=invoice.customer_id)
    session = quickbooks_user(qbo)
    remote = session.read("Customer", customer.qb_id)
    remote["PrimaryEmailAddr"] = {"Address": "new-ap@theirs.example"}
    session.update("Customer", remote, request_id=f"test-email-{customer.pk}")
    customer = customer_update(customer=customer, phone="(555) 010-0199")  # ours, meanwhile
    assert push(customer) == "problem"
    customer.refresh_from_db()
    assert customer.problem_reason == "changed_in_quickbooks"

    actions.record_accept_quickbooks(record=customer, user=finance_user)

    customer.refresh_from_db()
    assert customer.billing_email == "new-ap@theirs.example"  # what QuickBooks changed
    assert customer.phone == "(555) 010-0199"  # what the TMS changed stays, and goes
    assert customer.sync_status == SyncStatus.PENDING and customer.qb_overwrite_token
    assert push(customer) == "synced"
    remote = qbo.get("Customer", customer.qb_id)
    assert remote["PrimaryEmailAddr"]["Address"] == "new-ap@theirs.example"
    assert remote["PrimaryPhone"]["FreeFormNumber"] == "(555) 010-0199"


def test_the_row_offers_it_and_finance_uses_it(client, finance_user, qbo):
    invoice = changed_in_quickbooks(qbo)
    client.force_login(finance_user)
    html = client.get(reverse("sync:problems") + "?type=invoice").content.decode()
    assert "Use QuickBooks&#x27; version" in html or "Use QuickBooks' version" in html

    url = reverse("sync:record_action", args=["invoice", invoice.pk, "accept"])
    response = client.post(url, HTTP_HX_REQUEST="true")

    assert "changed in the TMS to QuickBooks" in response.content.decode()
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.SYNCED and invoice.total == Decimal("99.00")


def test_a_payment_whose_amount_changed_in_quickbooks_is_refused(qbo, finance_user):
    invoice = synced_invoice(qbo)
    payment = payment_create(
        company=invoice.company,
        customer=invoice.customer,
        amount=Decimal("100.00"),
        payment_date=invoice.invoice_date,
        applications=[(invoice, Decimal("100.00"))],
        reference_number="CHK-1",
    )
    assert push(payment) == "synced"
    payment.refresh_from_db()
    session = quickbooks_user(qbo)
    remote = session.read("Payment", payment.qb_id)
    session.update(
        "Payment", remote | {"TotalAmt": 90, "Line": [{**remote["Line"][0], "Amount": 90}]},
        request_id=f"test-pay-{payment.pk}",
    )  # fmt: skip
    # As a push that met the change would leave it (payments change in the TMS only by date).
    type(payment).objects.filter(pk=payment.pk).update(
        sync_status=SyncStatus.PROBLEM,
        problem_reason="changed_in_quickbooks",
        problem_since=invoice.created_at,
        qb_drift={"token": str(qbo.get("Payment", payment.qb_id)["SyncToken"]), "changes": []},
    )
    payment.refresh_from_db()

    with pytest.raises(actions.ActionRefused, match="fixed once entered"):
        actions.record_accept_quickbooks(record=payment, user=finance_user)
    payment.refresh_from_db()
    assert payment.sync_status == SyncStatus.PROBLEM and payment.amount == Decimal("100.00")


def test_it_refuses_a_record_quickbooks_did_not_change(qbo, finance_user):
    invoice = synced_invoice(qbo)
    with pytest.raises(actions.ActionRefused, match="no such change"):
        actions.record_accept_quickbooks(record=invoice, user=finance_user)
