"""The sweep holds back a record while something it names is on its way to QuickBooks, and only
then: a line's charge code, a payment's invoice (many per record), each judged on its own."""

from datetime import date
from decimal import Decimal

import pytest

from finance.models import Invoice, Payment
from finance.services import ChargeSetSpec, LineSpec, payment_create
from finance.syncstate import SyncStatus
from sync.mappers import MAPPERS
from sync.services.engine import due_queryset
from tests.finance.factories import ChargeCodeFactory, CustomerFactory, InvoiceFactory, LoadFactory
from tests.sync.uifactories import park

pytestmark = pytest.mark.django_db


def held(record) -> bool:
    model = type(record)
    due = due_queryset(model).filter(pk=record.pk)
    assert due.exists(), "the record is due"
    return not due.exclude(MAPPERS[record.sync_type].wait_for()).exists()


def synced(record, qb_id):
    return park(record, status=SyncStatus.SYNCED, qb_id=qb_id)


@pytest.fixture
def customer(company):
    return synced(CustomerFactory(company=company), "9")


def invoice_with(customer, *codes):
    invoice = InvoiceFactory(
        customer=customer,
        charge_sets=[
            ChargeSetSpec(
                load=LoadFactory(),
                lines=[LineSpec(charge_code=code, rate=Decimal(80)) for code in codes],
            )
        ],
    )
    return park(invoice, status=SyncStatus.PENDING)


def test_an_invoice_waits_for_a_charge_code_on_its_way(customer):
    in_books = synced(ChargeCodeFactory(), "5")
    coming = park(ChargeCodeFactory(), status=SyncStatus.PENDING)
    invoice = invoice_with(customer, in_books, coming)

    assert held(invoice)
    synced(coming, "6")
    assert not held(invoice)


def test_two_codes_each_half_owed_hold_nothing(customer):
    """One code in QuickBooks with an edit on its way, one never sent (unmapped): neither is
    "not in QuickBooks and on its way", so the invoice goes (and is told what is missing)."""
    edited = park(synced(ChargeCodeFactory(), "5"), status=SyncStatus.PENDING, qb_id="5")
    unmapped = park(ChargeCodeFactory(), status=SyncStatus.SKIPPED)
    assert not held(invoice_with(customer, edited, unmapped))


def test_a_payment_waits_for_an_invoice_on_its_way(customer):
    code = synced(ChargeCodeFactory(), "5")
    first, second = invoice_with(customer, code), invoice_with(customer, code)
    synced(first, "70")
    payment = payment_create(
        company=customer.company,
        customer=customer,
        amount=Decimal(160),
        payment_date=date(2026, 11, 30),
        applications=[(first, Decimal(80)), (second, Decimal(80))],
    )
    payment = park(Payment.objects.get(pk=payment.pk), status=SyncStatus.PENDING)

    assert held(payment)
    synced(Invoice.objects.get(pk=second.pk), "71")
    assert not held(payment)
