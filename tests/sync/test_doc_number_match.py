"""A document number QuickBooks says is taken (6140), resolved by finance on one screen: link
ours to the QuickBooks document when it is the same customer's (never writing over it
silently), or send ours under another number. No admin, no QuickBooks ID typed."""

from decimal import Decimal

import pytest
from django.urls import reverse

from finance.models import Invoice, ManualAction
from finance.syncstate import SyncStatus
from sync.services import actions
from tests.finance.factories import CustomerFactory
from tests.sync.helpers import invoice_with
from tests.sync.test_faults import as_qbo_user, mapped_code, push

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def unpaced(settings):
    settings.QBO_RATE_LIMIT_ENABLED = False


def theirs_with_our_number(qbo, code, customer, amount):
    return as_qbo_user(qbo).create(
        "Invoice",
        {
            "DocNumber": "INV-777",
            "CustomerRef": {"value": customer.qb_id},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": amount,
                    "SalesItemLineDetail": {
                        "ItemRef": {"value": code.qb_id},
                        "Qty": 1,
                        "UnitPrice": amount,
                    },
                }
            ],
        },  # fmt: skip
        request_id=f"test-theirs-777-{amount}",
    )


@pytest.fixture
def taken(qbo):
    """QuickBooks holds INV-777 for our customer, with other lines than ours."""
    code = mapped_code(qbo)
    customer = CustomerFactory(display_name="Harbor Freight Lines")
    assert push(customer) == "synced"
    customer.refresh_from_db()
    theirs = theirs_with_our_number(qbo, code, customer, 40)
    invoice = invoice_with(code, customer=customer, lines=1, doc_number="INV-777")
    assert push(invoice) == "problem"  # not linked and overwritten: their lines differ
    invoice.refresh_from_db()
    assert invoice.problem_reason == "duplicate_doc_number"
    assert Decimal(str(qbo.get("Invoice", theirs["Id"])["TotalAmt"])) == 40
    return invoice, theirs


def page(invoice):
    return reverse("sync:doc_number_match", args=["invoice", invoice.pk])


def test_the_row_leads_finance_to_the_screen_with_both_documents(client, finance_user, taken):
    invoice, theirs = taken
    client.force_login(finance_user)
    listed = client.get(reverse("sync:problems") + "?type=invoice").content.decode()
    assert page(invoice) in listed

    html = client.get(page(invoice)).content.decode()

    assert f'data-qb-id="{theirs["Id"]}"' in html and "Link to this QuickBooks document" in html
    assert 'value="INV-777-2"' in html  # a free number offered


def test_linking_a_different_document_asks_which_version_stays(client, finance_user, qbo, taken):
    invoice, theirs = taken
    client.force_login(finance_user)

    client.post(page(invoice), {"choice": "link", "qb_id": theirs["Id"]})

    invoice.refresh_from_db()
    assert (invoice.qb_id, invoice.problem_reason) == (theirs["Id"], "changed_in_quickbooks")
    assert Decimal(str(qbo.get("Invoice", theirs["Id"])["TotalAmt"])) == 40  # nothing sent
    actions.record_accept_quickbooks(record=invoice, user=finance_user)
    invoice.refresh_from_db()
    assert invoice.total == Decimal("40.00")  # their lines; our descriptions still go over
    assert push(invoice) == "synced"
    assert Decimal(str(qbo.get("Invoice", theirs["Id"])["TotalAmt"])) == 40
    assert len(qbo.objects("Invoice")) == 1
    assert ManualAction.objects.filter(kind="link", record_id=invoice.pk, user=finance_user)


def test_send_under_another_number(client, finance_user, qbo, taken):
    invoice, theirs = taken
    client.force_login(finance_user)

    response = client.post(page(invoice), {"choice": "renumber", "doc_number": "INV-777-2"})

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.doc_number, invoice.sync_status) == ("INV-777-2", SyncStatus.PENDING)
    assert push(invoice) == "synced"
    numbers = sorted(obj["DocNumber"] for obj in qbo.objects("Invoice"))
    assert numbers == ["INV-777", "INV-777-2"]


def test_a_number_quickbooks_also_uses_is_refused(client, finance_user, qbo, taken):
    invoice, _ = taken
    client.force_login(finance_user)

    response = client.post(
        page(invoice), {"choice": "renumber", "doc_number": "INV-777"}, follow=True
    )

    assert "already uses INV-777" in response.content.decode()
    assert Invoice.objects.get(pk=invoice.pk).doc_number == "INV-777"


def test_another_customers_document_cannot_be_linked(client, finance_user, qbo):
    code = mapped_code(qbo)
    stranger = CustomerFactory(display_name="Someone Else Inc")
    push(stranger)
    stranger.refresh_from_db()
    theirs = theirs_with_our_number(qbo, code, stranger, 10)
    invoice = invoice_with(code, lines=1, doc_number="INV-777")
    assert push(invoice) == "problem"
    client.force_login(finance_user)

    response = client.post(page(invoice), {"choice": "link", "qb_id": theirs["Id"]}, follow=True)

    assert "another customer" in response.content.decode()
    invoice.refresh_from_db()
    assert (invoice.qb_id, invoice.problem_reason) == ("", "duplicate_doc_number")


def test_the_same_document_as_ours_is_linked_without_asking(qbo):
    code = mapped_code(qbo)
    customer = CustomerFactory(display_name="Harbor Freight Lines")
    push(customer)
    customer.refresh_from_db()
    invoice = invoice_with(code, customer=customer, lines=1, doc_number="INV-777")
    from sync.mappers import MAPPERS
    from sync.services.engine import SyncContext

    body = MAPPERS["invoice"].body(
        MAPPERS["invoice"].load([invoice.pk]).get(), SyncContext.for_company(invoice.company_id)
    )
    theirs = as_qbo_user(qbo).create("Invoice", body, request_id="test-same-777")

    assert push(invoice) == "linked"
    invoice.refresh_from_db()
    assert invoice.qb_id == theirs["Id"] and len(qbo.objects("Invoice")) == 1
