"""Money, dates and text that must be refused with a clear error and nothing saved (holes found
by the adversarial run on the demo: docs/reliability.md, "Bad input")."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from finance.models import Invoice, Payment, PaymentApplication
from finance.services import (
    ChargeSetSpec,
    LineSpec,
    customer_create,
    invoice_create,
    invoice_open_balance,
    invoice_update,
    payment_create,
)
from tests.finance.factories import ChargeCodeFactory, CustomerFactory, InvoiceFactory, LoadFactory

pytestmark = pytest.mark.django_db


def pay(invoice, applied, amount=None):
    return payment_create(
        company=invoice.company,
        customer=invoice.customer,
        amount=Decimal(amount if amount is not None else applied),
        payment_date=date(2026, 10, 25),
        applications=[(invoice, Decimal(applied))],
    )


@pytest.mark.parametrize(
    ("applied", "amount", "message"),
    [
        ("-50", "10", "must be more than zero"),  # was taken: a 100.00 invoice then showed 150 open
        ("0", "10", "must be more than zero"),
        ("0.001", "10", "two decimals"),  # was stored as a 0.00 application and synced
        ("33.335", "40", "two decimals"),  # was kept unrounded on SQLite
        ("10", "-10", "must be more than zero"),
        ("10", "10.005", "two decimals"),
    ],
)
def test_it_refuses_an_impossible_payment_and_saves_nothing(company, applied, amount, message):
    invoice = InvoiceFactory()  # 2 × 100.00

    with pytest.raises(ValidationError, match=message):
        pay(invoice, applied, amount)

    assert not Payment.objects.exists() and not PaymentApplication.objects.exists()
    assert invoice_open_balance(Invoice.objects.get(pk=invoice.pk)) == Decimal("200.00")


def test_it_refuses_a_date_outside_a_sane_range_as_a_validation_error(company):
    # 9999-12-31 raised OverflowError (due date = invoice date + terms) instead of a form error.
    code = ChargeCodeFactory()

    with pytest.raises(ValidationError, match="between"):
        invoice_create(
            company=company,
            customer=CustomerFactory(),
            doc_number="INV-99999",
            invoice_date=date(9999, 12, 31),
            charge_sets=[ChargeSetSpec(load=LoadFactory(), lines=[LineSpec(code, Decimal("10"))])],
        )

    assert not Invoice.objects.filter(doc_number="INV-99999").exists()


def test_it_refuses_a_due_date_before_the_invoice_date(company):
    invoice = InvoiceFactory()

    with pytest.raises(ValidationError, match="before the invoice date"):
        invoice_update(invoice=invoice, due_date=date(2026, 1, 1))

    assert Invoice.objects.get(pk=invoice.pk).due_date != date(2026, 1, 1)


@pytest.mark.parametrize("bad", ["Acme\x00 Freight", "Acme\x1b[31m", "Acme\x85Freight"])
def test_it_refuses_control_characters_in_names(company, bad):
    # NUL reached PostgreSQL as a DataError (a 500); others would reach QuickBooks.
    with pytest.raises(ValidationError, match="control characters"):
        customer_create(company=company, display_name=bad)


def test_it_refuses_control_characters_in_memos_but_keeps_line_breaks(company):
    invoice = InvoiceFactory()

    with pytest.raises(ValidationError, match="control characters"):
        invoice_update(invoice=invoice, memo="see \x00 attached")

    updated = invoice_update(invoice=invoice, memo="line one\nline two\tend")
    assert updated.memo == "line one\nline two\tend"


def test_a_status_change_is_guarded_like_a_void_when_quickbooks_holds_a_payment(company):
    # invoice_update took confirm_conflict but never asked for it.
    from finance.services import QuickBooksConflict

    invoice = InvoiceFactory()
    payment_create(
        company=company,
        customer=invoice.customer,
        amount=Decimal("50.00"),
        payment_date=date(2026, 10, 25),
        applications=[(invoice, Decimal("50.00"))],
        origin=Payment.Origin.QUICKBOOKS,
        qb_id="901",
    )

    with pytest.raises(QuickBooksConflict):
        invoice_update(invoice=invoice, status=Invoice.Status.DRAFT)
    updated = invoice_update(invoice=invoice, status=Invoice.Status.DRAFT, confirm_conflict=True)

    assert updated.status == Invoice.Status.DRAFT
