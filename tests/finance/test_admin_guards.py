"""Admin edits obey the same finance rules as the TMS, and a record that lives in QuickBooks
cannot be deleted from under it (holes found by the adversarial run on the demo)."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from finance.models import Customer, Invoice, ManualAction, Payment
from finance.services import payment_create
from finance.syncstate import SyncStatus
from tests.finance.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def change_url(obj):
    return reverse(f"admin:finance_{obj._meta.model_name}_change", args=[obj.pk])


def delete_url(obj):
    return reverse(f"admin:finance_{obj._meta.model_name}_delete", args=[obj.pk])


def invoice_form(invoice, **changes):
    data = {
        "customer": invoice.customer_id,
        "doc_number": invoice.doc_number,
        "invoice_date": invoice.invoice_date.isoformat(),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else "",
        "terms_days": invoice.terms_days,
        "memo": invoice.memo,
        "_save": "Save",
        # The read-only charge set inline still posts its management form.
        "charge_sets-TOTAL_FORMS": "0",
        "charge_sets-INITIAL_FORMS": "0",
        "charge_sets-MIN_NUM_FORMS": "0",
        "charge_sets-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def mark_synced(record, qb_id="130"):
    type(record).objects.filter(pk=record.pk).update(
        qb_id=qb_id, sync_status=SyncStatus.SYNCED, synced_version=record.version
    )
    record.refresh_from_db()
    return record


def test_it_refuses_to_move_an_invoice_with_a_payment_to_another_customer(client, superuser):
    # Before, admin saved it: the payment then sat on another customer's invoice.
    invoice = InvoiceFactory()
    payment_create(
        company=invoice.company,
        customer=invoice.customer,
        amount=Decimal("50.00"),
        payment_date=date(2026, 10, 25),
        applications=[(invoice, Decimal("50.00"))],
    )
    other = CustomerFactory()
    client.force_login(superuser)

    response = client.post(change_url(invoice), invoice_form(invoice, customer=other.pk))

    assert response.status_code == 200  # the form again, with the reason
    assert "before changing its customer" in response.content.decode()
    assert Invoice.objects.get(pk=invoice.pk).customer_id == invoice.customer_id


def test_it_refuses_a_due_date_before_the_invoice_date(client, superuser):
    invoice = InvoiceFactory()
    client.force_login(superuser)

    response = client.post(change_url(invoice), invoice_form(invoice, due_date="2026-01-01"))

    assert "cannot be before the invoice date" in response.content.decode()
    assert Invoice.objects.get(pk=invoice.pk).due_date == invoice.due_date


def test_an_admin_edit_goes_through_the_service_and_reaches_quickbooks(client, superuser):
    invoice = mark_synced(InvoiceFactory())
    client.force_login(superuser)

    response = client.post(change_url(invoice), invoice_form(invoice, memo="Gate fee disputed"))

    assert response.status_code == 302
    saved = Invoice.objects.get(pk=invoice.pk)
    assert saved.memo == "Gate fee disputed"
    assert (saved.version, saved.sync_status) == (invoice.version + 1, SyncStatus.PENDING)


def test_a_date_out_of_range_is_a_form_error_not_a_500(client, superuser):
    invoice = InvoiceFactory()
    client.force_login(superuser)

    response = client.post(change_url(invoice), invoice_form(invoice, invoice_date="9999-12-31"))

    assert response.status_code == 200
    assert "must be between" in response.content.decode()


@pytest.mark.parametrize("factory", [InvoiceFactory, CustomerFactory])
def test_a_record_that_lives_in_quickbooks_cannot_be_deleted(client, superuser, factory):
    # Before, the TMS rows went and QuickBooks kept an open invoice / active customer.
    record = mark_synced(factory())
    client.force_login(superuser)

    page = client.get(delete_url(record))
    response = client.post(delete_url(record), {"post": "yes"})

    assert page.status_code == 403 and response.status_code == 403
    assert type(record).objects.filter(pk=record.pk).exists()
    change_page = client.get(change_url(record)).content.decode()
    assert "cannot be deleted here" in change_page  # and it says what to do instead


def test_deleting_a_record_not_in_quickbooks_is_audited(client, superuser):
    invoice = InvoiceFactory(doc_number="INV-DRAFT-1", status=Invoice.Status.DRAFT)
    client.force_login(superuser)

    response = client.post(delete_url(invoice), {"post": "yes"})

    assert response.status_code == 302
    assert not Invoice.objects.filter(pk=invoice.pk).exists()
    audit = ManualAction.objects.get(kind=ManualAction.Kind.DELETE)
    assert (audit.record_type, audit.record_id, audit.user) == ("invoice", invoice.pk, superuser)
    assert audit.before["doc_number"] == "INV-DRAFT-1"


def test_bulk_delete_keeps_the_records_that_live_in_quickbooks(client, superuser):
    synced = mark_synced(CustomerFactory(display_name="In QuickBooks Co"))
    local = CustomerFactory(display_name="Only Here Co")
    client.force_login(superuser)

    response = client.post(
        reverse("admin:finance_customer_changelist"),
        {"action": "delete_selected", "_selected_action": [synced.pk, local.pk], "post": "yes"},
        follow=True,
    )

    assert list(Customer.objects.values_list("display_name", flat=True)) == ["In QuickBooks Co"]
    assert "live in QuickBooks" in response.content.decode()


def test_payment_admin_edits_go_through_the_service(client, superuser):
    invoice = InvoiceFactory()
    payment = payment_create(
        company=invoice.company,
        customer=invoice.customer,
        amount=Decimal("50.00"),
        payment_date=date(2026, 10, 25),
        applications=[(invoice, Decimal("50.00"))],
    )
    payment = mark_synced(payment, qb_id="900")
    client.force_login(superuser)

    response = client.post(
        change_url(payment),
        {
            "payment_date": "2026-10-26",
            "reference_number": "CHK 1001",
            "method": "check",
            "applications-TOTAL_FORMS": "0",
            "applications-INITIAL_FORMS": "0",
            "applications-MIN_NUM_FORMS": "0",
            "applications-MAX_NUM_FORMS": "1000",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    saved = Payment.objects.get(pk=payment.pk)
    assert saved.reference_number == "CHK 1001"
    assert saved.sync_status == SyncStatus.PENDING  # QuickBooks learns the new reference
