"""Finance services: every change QuickBooks must learn bumps version and makes it PENDING."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from finance.models import Invoice, ManualAction, Payment
from finance.services import (
    ChargeSetSpec,
    LineSpec,
    QuickBooksConflict,
    customer_update,
    invoice_replace_charges,
    invoice_update,
    invoice_void,
    payment_create,
)
from finance.syncstate import SyncStatus
from tests.finance.factories import ChargeCodeFactory, CustomerFactory, InvoiceFactory, LoadFactory

pytestmark = pytest.mark.django_db


def _synced(record):
    type(record).objects.filter(pk=record.pk).update(
        sync_status=SyncStatus.SYNCED, synced_version=record.version, qb_id="11"
    )
    record.refresh_from_db()
    return record


def _qbo_payment(invoice, amount):
    return payment_create(
        company=invoice.company,
        customer=invoice.customer,
        amount=amount,
        payment_date=date(2026, 10, 25),
        applications=[(invoice, amount)],
        origin=Payment.Origin.QUICKBOOKS,
        sync_status=SyncStatus.SYNCED,
        qb_id="900",
    )


def test_customer_update_bumps_version_and_sets_pending(company):
    customer = _synced(CustomerFactory())

    customer = customer_update(customer=customer, billing_email="new@shipper.example")

    assert (customer.version, customer.sync_status) == (2, SyncStatus.PENDING)


def test_customer_update_without_a_change_does_nothing(company):
    customer = _synced(CustomerFactory(billing_email="same@shipper.example"))

    customer = customer_update(customer=customer, billing_email="same@shipper.example")

    # Why: a no-op save must not cause a pointless push to QuickBooks.
    assert (customer.version, customer.sync_status) == (1, SyncStatus.SYNCED)


def test_invoice_update_bumps_version(company):
    invoice = _synced(InvoiceFactory())

    invoice = invoice_update(invoice=invoice, memo="Rebilled per customer request")

    assert (invoice.version, invoice.sync_status) == (2, SyncStatus.PENDING)


def test_invoice_update_without_a_change_does_nothing(company):
    invoice = _synced(InvoiceFactory(memo="same"))

    invoice = invoice_update(invoice=invoice, memo="same")

    assert invoice.version == 1 and invoice.sync_status == SyncStatus.SYNCED


def test_invoice_replace_charges_bumps_version_and_total(company):
    invoice = _synced(InvoiceFactory())
    code = ChargeCodeFactory()

    invoice = invoice_replace_charges(
        invoice=invoice,
        charge_sets=[ChargeSetSpec(load=LoadFactory(), lines=[LineSpec(code, Decimal("310"))])],
    )

    assert invoice.total == Decimal("310.00")
    assert (invoice.version, invoice.sync_status) == (2, SyncStatus.PENDING)


def test_invoice_void_bumps_version(company):
    invoice = _synced(InvoiceFactory())

    invoice = invoice_void(invoice=invoice)

    assert invoice.status == Invoice.Status.VOID
    assert (invoice.version, invoice.sync_status) == (2, SyncStatus.PENDING)


def test_a_change_in_flight_keeps_the_status_but_bumps_version(company):
    invoice = InvoiceFactory()
    Invoice.objects.filter(pk=invoice.pk).update(sync_status=SyncStatus.IN_FLIGHT)

    invoice = invoice_update(invoice=invoice, memo="changed while pushing")

    # Why: the engine owns IN_FLIGHT; it sees version 2 > pushed 1 when it settles.
    assert (invoice.version, invoice.sync_status) == (2, SyncStatus.IN_FLIGHT)


def test_problem_records_go_back_to_pending_on_change(company):
    customer = CustomerFactory()
    type(customer).objects.filter(pk=customer.pk).update(
        sync_status=SyncStatus.PROBLEM,
        problem_reason="duplicate_name",
        problem_since=timezone.now(),
        attempts=3,
    )
    customer.refresh_from_db()

    customer = customer_update(customer=customer, display_name="Pacific Freight Co (TX)")

    assert (customer.sync_status, customer.attempts) == (SyncStatus.PENDING, 0)


def test_payment_over_application_is_refused(company):
    invoice = InvoiceFactory()  # 2 × 100.00

    with pytest.raises(ValidationError, match="more than the 200.00 still open"):
        payment_create(
            company=company,
            customer=invoice.customer,
            amount=Decimal("250"),
            payment_date=date(2026, 10, 25),
            applications=[(invoice, Decimal("250"))],
        )


def test_applications_over_the_payment_amount_are_refused(company):
    invoice = InvoiceFactory()

    with pytest.raises(ValidationError, match="more than the payment"):
        payment_create(
            company=company,
            customer=invoice.customer,
            amount=Decimal("50"),
            payment_date=date(2026, 10, 25),
            applications=[(invoice, Decimal("60"))],
        )


def test_a_payment_for_another_customers_invoice_is_refused(company):
    invoice = InvoiceFactory()

    with pytest.raises(ValidationError, match="another customer"):
        payment_create(
            company=company,
            customer=CustomerFactory(),
            amount=Decimal("50"),
            payment_date=date(2026, 10, 25),
            applications=[(invoice, Decimal("50"))],
        )


def test_void_is_refused_when_quickbooks_payment_exists(company):
    invoice = InvoiceFactory()
    _qbo_payment(invoice, Decimal("80"))

    with pytest.raises(QuickBooksConflict, match="already been applied"):
        invoice_void(invoice=invoice)

    invoice.refresh_from_db()
    assert invoice.status != Invoice.Status.VOID


def test_total_change_is_refused_when_quickbooks_payment_exists(company):
    invoice = InvoiceFactory()
    _qbo_payment(invoice, Decimal("80"))
    code = ChargeCodeFactory()

    with pytest.raises(QuickBooksConflict):
        invoice_replace_charges(
            invoice=invoice,
            charge_sets=[ChargeSetSpec(load=LoadFactory(), lines=[LineSpec(code, Decimal("90"))])],
        )

    invoice.refresh_from_db()
    assert invoice.total == Decimal("200.00")  # rolled back with the refused change


def test_confirmed_void_is_audited(company, finance_user):
    invoice = InvoiceFactory()
    _qbo_payment(invoice, Decimal("80"))

    invoice = invoice_void(invoice=invoice, user=finance_user, confirm_conflict=True)

    assert invoice.status == Invoice.Status.VOID
    action = ManualAction.objects.get(kind=ManualAction.Kind.CONFIRM_CONFLICT)
    assert action.user == finance_user and action.record_id == invoice.pk


def test_tms_payments_do_not_trigger_the_guard(company):
    invoice = InvoiceFactory()
    payment_create(
        company=company,
        customer=invoice.customer,
        amount=Decimal("80"),
        payment_date=date(2026, 10, 25),
        applications=[(invoice, Decimal("80"))],
    )

    invoice = invoice_void(invoice=invoice)

    assert invoice.status == Invoice.Status.VOID
