"""Payables services: bills and settlements, their paid status from QuickBooks bill payments,
the guards around money already paid there, and bill line descriptions."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from finance import payables
from finance.descriptions import describe_bill_line
from finance.models import Bill, BillPayment, FinanceSettings, ManualAction, Vendor
from finance.services import QuickBooksConflict, company_get_default, record_quickbooks_balance
from finance.syncstate import SyncStatus
from tests.finance.factories import LoadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def company():
    return company_get_default()


@pytest.fixture
def bill(company):
    carrier = payables.vendor_create(company=company, display_name="Garden State Haulers")
    lh = payables.pay_code_create(company=company, code="LH", name="Line haul pay")
    bill = payables.bill_create(
        company=company,
        vendor=carrier,
        doc_number="CB-1",
        bill_date=date(2026, 11, 10),
        lines=[payables.BillLineSpec(pay_code=lh, rate=Decimal("500.00"))],
    )
    Bill.objects.filter(pk=bill.pk).update(qb_id="77")
    bill.refresh_from_db()
    return bill


def test_a_new_pay_code_is_unmapped_and_a_new_bill_is_owed_with_its_vendors_terms(company):
    carrier = payables.vendor_create(company=company, display_name="Tidewater", terms_days=30)
    code = payables.pay_code_create(company=company, code="LH", name="Line haul pay")
    assert code.sync_status == SyncStatus.SKIPPED

    bill = payables.bill_create(
        company=company,
        vendor=carrier,
        doc_number="CB-9",
        bill_date=date(2026, 11, 1),
        lines=[payables.BillLineSpec(pay_code=code, rate=Decimal("125.50"), quantity=Decimal(2))],
    )

    assert bill.total == Decimal("251.00")
    assert bill.due_date == date(2026, 12, 1)
    assert bill.sync_status == SyncStatus.PENDING
    assert carrier.sync_status == SyncStatus.PENDING


def test_a_vendors_bill_number_is_unique_for_that_vendor_only(company, bill):
    lh = bill.lines.get().pay_code
    with pytest.raises(ValidationError):
        payables.bill_create(
            company=company,
            vendor=bill.vendor,
            doc_number="CB-1",
            bill_date=date(2026, 11, 10),
            lines=[payables.BillLineSpec(pay_code=lh, rate=Decimal("1.00"))],
        )
    other = payables.vendor_create(company=company, display_name="Red Rock Freight")
    payables.bill_create(
        company=company,
        vendor=other,
        doc_number="CB-1",
        bill_date=date(2026, 11, 10),
        lines=[payables.BillLineSpec(pay_code=lh, rate=Decimal("1.00"))],
    )


def test_bill_payments_made_in_quickbooks_set_the_paid_status_once_however_often_delivered(
    company, bill
):
    for _ in range(2):  # a redelivery changes nothing
        payables.bill_payment_record(
            company=company,
            qb_id="501",
            payment_date="2026-11-20",
            pay_type="Check",
            reference_number="1042",
            applied=[("77", Decimal("200.00")), ("999", Decimal("50.00"))],  # 999: not ours
        )
    bill.refresh_from_db()
    assert bill.status == Bill.Status.PARTIALLY_PAID
    assert BillPayment.objects.get().amount == Decimal("200.00")

    # Edited in QuickBooks to pay the whole bill: the same payment, re-recorded.
    payables.bill_payment_record(
        company=company,
        qb_id="501",
        payment_date="2026-11-20",
        pay_type="Check",
        reference_number="1042",
        applied=[("77", Decimal("500.00"))],
    )
    bill.refresh_from_db()
    assert bill.status == Bill.Status.PAID

    assert payables.bill_payment_forget(company=company, qb_id="501") == 1
    bill.refresh_from_db()
    assert bill.status == Bill.Status.APPROVED
    assert not BillPayment.objects.exists()


def test_quickbooks_balance_older_than_the_one_held_is_ignored(bill):
    assert record_quickbooks_balance(record=bill, balance="100.00", sync_token="4")
    assert not record_quickbooks_balance(record=bill, balance="500.00", sync_token="3")
    payables.bill_refresh_paid_status(bill=bill)
    bill.refresh_from_db()
    assert bill.qb_balance == Decimal("100.00")
    assert bill.status == Bill.Status.PARTIALLY_PAID


def test_voiding_a_bill_paid_in_quickbooks_needs_a_confirmation_that_is_audited(company, bill):
    payables.bill_payment_record(
        company=company,
        qb_id="601",
        payment_date="2026-11-21",
        pay_type="CreditCard",
        reference_number="",
        applied=[("77", Decimal("500.00"))],
    )
    with pytest.raises(QuickBooksConflict, match="already been paid"):
        payables.bill_void(bill=bill)
    assert Bill.objects.get(pk=bill.pk).status == Bill.Status.PAID

    payables.bill_void(bill=bill, confirm_conflict=True)
    voided = Bill.objects.get(pk=bill.pk)
    assert voided.status == Bill.Status.VOID
    assert voided.version == bill.version + 1
    assert ManualAction.objects.filter(kind=ManualAction.Kind.CONFIRM_CONFLICT).exists()


def test_a_bill_line_description_follows_the_bill_fields_of_finance_settings(company):
    driver = payables.vendor_create(
        company=company, display_name="Keisha Williams", kind=Vendor.Kind.DRIVER
    )
    lh = payables.pay_code_create(company=company, code="LH", name="Line haul pay")
    load = LoadFactory(company=company, load_number="LD-7001")
    bill = payables.bill_create(
        company=company,
        vendor=driver,
        doc_number="SET-1",
        bill_date=date(2026, 11, 30),
        lines=[
            payables.BillLineSpec(
                pay_code=lh, rate=Decimal("250.00"), load=load, truck_number=" TRK-204 "
            )
        ],
    )
    line = bill.lines.get()
    settings_row = FinanceSettings(company=company)
    assert describe_bill_line(line=line, settings=settings_row) == (
        f"Line haul pay · Load LD-7001 · Container {load.container_number} · Truck TRK-204"
    )
    settings_row.bill_description_fields = ["truck", "load"]
    settings_row.description_separator = " | "
    assert describe_bill_line(line=line, settings=settings_row) == "Truck TRK-204 | Load LD-7001"
    settings_row.bill_description_fields = []
    assert describe_bill_line(line=line, settings=settings_row) == "Line haul pay"


def test_a_bill_in_quickbooks_cannot_be_deleted_here_void_it_instead(bill):
    from finance.services import record_delete

    with pytest.raises(ValidationError, match="Void it instead"):
        record_delete(record=bill, user=None)
    assert Bill.objects.filter(pk=bill.pk).exists()
