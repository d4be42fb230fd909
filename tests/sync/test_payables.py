"""Payables end to end against the emulator: vendors and pay codes before bills, settlements over
several trucks with deductions, void, the shared name list, and bill payments made in QuickBooks
taken back (CDC and webhooks) without reading the bills again."""

import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from finance import payables
from finance.models import Bill, BillPayment, Vendor
from finance.services import customer_create, finance_settings_get
from finance.syncstate import SyncStatus
from sync.models import QuickBooksConnection, SyncAttempt, WebhookEvent
from sync.services import actions, engine, pull
from sync.services.engine import SyncContext
from sync.services.mapping import MAPPED, code_map, create_missing
from tests.finance.factories import LoadFactory

pytestmark = pytest.mark.django_db(transaction=True)


def push(record):
    record.refresh_from_db()
    return engine.push_record(sync_type=record.sync_type, pk=record.pk)


def pay_code(qbo, code="LH", name="Line haul pay", kind="earning", mapped=True, **fields):
    row = payables.pay_code_create(
        company=qbo.connection.company, code=code, name=name, kind=kind, **fields
    )
    if mapped:
        create_missing(mapped=MAPPED["account"], company=qbo.connection.company, user=None)
        row.refresh_from_db()
    return row


def vendor(qbo, name="Lone Star Carriers", **fields):
    fields.setdefault("email", "dispatch@lonestar.example")
    return payables.vendor_create(company=qbo.connection.company, display_name=name, **fields)


def settlement(qbo, driver, lh, fadv, escr):
    company = qbo.connection.company
    loads = [LoadFactory(company=company) for _ in range(4)]
    lines = [
        payables.BillLineSpec(pay_code=lh, rate=Decimal("250.00"), load=load, truck_number=truck)
        for load, truck in zip(loads, ["TRK-101", "TRK-101", "TRK-207", "TRK-207"], strict=True)
    ]
    lines += [
        payables.BillLineSpec(pay_code=fadv, rate=Decimal("180.00"), note="Fuel card"),
        payables.BillLineSpec(pay_code=escr, rate=Decimal("50.00")),
    ]
    return payables.bill_create(
        company=company,
        vendor=driver,
        doc_number="SET-261128-001",
        bill_date=date(2026, 11, 30),
        lines=lines,
        kind=Bill.Kind.SETTLEMENT,
        period_start=date(2026, 11, 22),
        period_end=date(2026, 11, 28),
    )


def test_a_pay_code_becomes_an_account_of_its_type_and_can_be_remapped(qbo):
    escrow = pay_code(
        qbo, "ESCR", "Driver escrow", "deduction", account_type="Other Current Liability"
    )

    assert escrow.sync_status == SyncStatus.SYNCED
    remote = qbo.get("Account", escrow.qb_id)
    assert remote["Name"] == "Driver escrow"
    assert remote["AccountType"] == "Other Current Liability"
    # Mapped by hand to an existing account instead: checked in QuickBooks first.
    fuel = next(a for a in qbo.objects("Account") if a["Name"] == "Truck Fuel")
    code_map(code=escrow, qb_id=fuel["Id"], user=None)
    escrow.refresh_from_db()
    assert escrow.qb_id == fuel["Id"]
    with pytest.raises(ValidationError):
        code_map(code=escrow, qb_id="999999", user=None)


def test_a_settlement_over_two_trucks_lands_with_its_deductions_as_negative_lines(qbo):
    settings_row = finance_settings_get(company=qbo.connection.company)
    settings_row.bill_description_fields = ["load", "container", "truck"]
    settings_row.save()
    lh = pay_code(qbo)
    fadv = pay_code(qbo, "FADV", "Fuel advance", "deduction", account_type="Other Current Asset")
    escr = pay_code(qbo, "ESCR", "Escrow", "deduction", account_type="Other Current Liability")
    driver = vendor(qbo, "Miguel Alvarez", kind=Vendor.Kind.DRIVER, is_1099=True)
    bill = settlement(qbo, driver, lh, fadv, escr)
    assert bill.total == Decimal("770.00")  # 4 × 250 − 180 − 50

    # The vendor is not in QuickBooks yet: the bill pushes it first.
    assert push(bill) == "synced"

    bill.refresh_from_db()
    driver.refresh_from_db()
    assert driver.sync_status == SyncStatus.SYNCED
    remote_vendor = qbo.get("Vendor", driver.qb_id)
    assert remote_vendor["Vendor1099"] is True
    remote = qbo.get("Bill", bill.qb_id)
    assert remote["VendorRef"]["value"] == driver.qb_id
    assert remote["TotalAmt"] == 770.0
    assert remote["Balance"] == 770.0
    amounts = [line["Amount"] for line in remote["Line"]]
    assert amounts == [250.0, 250.0, 250.0, 250.0, -180.0, -50.0]
    texts = [line["Description"] for line in remote["Line"]]
    assert "Truck TRK-101" in texts[0] and "Truck TRK-207" in texts[3]
    assert texts[0].startswith("Load LD-")
    assert remote["Line"][4]["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] == fadv.qb_id
    assert "Settlement 11/22/2026–11/28/2026" in remote["PrivateNote"]
    assert bill.qb_balance == Decimal("770.00")


def test_deductions_above_the_pay_are_refused_before_anything_is_stored(qbo):
    lh = pay_code(qbo, mapped=False)
    fadv = pay_code(qbo, "FADV", "Fuel advance", "deduction", mapped=False)
    driver = vendor(qbo, "Tanya Brooks")
    with pytest.raises(ValidationError, match="deductions exceed the pay by 100.00"):
        payables.bill_create(
            company=qbo.connection.company,
            vendor=driver,
            doc_number="SET-1",
            bill_date=date(2026, 11, 30),
            lines=[
                payables.BillLineSpec(pay_code=lh, rate=Decimal("200.00")),
                payables.BillLineSpec(pay_code=fadv, rate=Decimal("300.00")),
            ],
        )
    assert not Bill.objects.exists()


def test_a_bill_with_an_unmapped_pay_code_waits_as_a_problem_then_goes_once_mapped(qbo):
    lh = pay_code(qbo, mapped=False)
    carrier = vendor(qbo)
    bill = payables.bill_create(
        company=qbo.connection.company,
        vendor=carrier,
        doc_number="CB-00001",
        bill_date=date(2026, 11, 20),
        lines=[payables.BillLineSpec(pay_code=lh, rate=Decimal("375.00"))],
    )

    assert push(bill) == "problem"
    bill.refresh_from_db()
    assert bill.problem_reason == "missing_account_mapping"
    assert "LH" in bill.last_error_message

    subcontractors = next(a for a in qbo.objects("Account") if a["Name"] == "Subcontractors")
    code_map(code=lh, qb_id=subcontractors["Id"], user=None)  # puts the bill back in the queue
    bill.refresh_from_db()
    assert bill.sync_status == SyncStatus.PENDING
    assert push(bill) == "synced"


def test_voiding_a_bill_zeroes_it_in_quickbooks(qbo):
    lh = pay_code(qbo)
    bill = payables.bill_create(
        company=qbo.connection.company,
        vendor=vendor(qbo),
        doc_number="CB-00002",
        bill_date=date(2026, 11, 20),
        lines=[payables.BillLineSpec(pay_code=lh, rate=Decimal("400.00"))],
    )
    push(bill)

    payables.bill_void(bill=bill)
    assert push(bill) == "synced"

    bill.refresh_from_db()
    remote = qbo.get("Bill", bill.qb_id)
    assert remote["TotalAmt"] == 0.0
    assert remote["PrivateNote"] == "Voided"  # as QuickBooks' own void of a bill
    assert len(qbo.objects("Bill")) == 1


def test_a_carrier_named_like_a_customer_is_a_clear_problem_with_a_one_click_fix(qbo):
    customer = customer_create(company=qbo.connection.company, display_name="Lone Star Carriers")
    assert push(customer) == "synced"
    carrier = vendor(qbo)

    assert push(carrier) == "problem"
    carrier.refresh_from_db()
    assert carrier.problem_reason == "vendor_name_taken"
    assert "customer or employee" in carrier.last_error_message

    actions.vendor_send_with_suffix(record=carrier, user=None)
    assert push(carrier) == "synced"
    carrier.refresh_from_db()
    assert qbo.get("Vendor", carrier.qb_id)["DisplayName"] == "Lone Star Carriers (Vendor)"
    assert carrier.display_name == "Lone Star Carriers"  # the TMS keeps its own name


def test_with_the_suffix_setting_the_clash_resolves_itself(qbo):
    settings_row = finance_settings_get(company=qbo.connection.company)
    settings_row.vendor_name_clash = "suffix"
    settings_row.vendor_name_suffix = " - Carrier"
    settings_row.save()
    push(customer_create(company=qbo.connection.company, display_name="Summit Drayage"))
    carrier = vendor(qbo, "Summit Drayage")

    assert push(carrier) == "retry"  # renamed, going again at once under a new version
    assert push(carrier) == "synced"
    carrier.refresh_from_db()
    assert qbo.get("Vendor", carrier.qb_id)["DisplayName"] == "Summit Drayage - Carrier"
    creates = SyncAttempt.objects.filter(record_type="vendor", operation="create")
    assert creates.values("request_id").distinct().count() == 2  # never the same requestid


def pay_in_quickbooks(bill, amount, txn_id=None):
    session = SyncContext.for_company(bill.company_id).session
    checking = session.query("SELECT * FROM Account WHERE AccountType = 'Bank'")[0]
    return session.create(
        "BillPayment",
        {
            "VendorRef": {"value": bill.vendor.qb_id},
            "PayType": "Check",
            "CheckPayment": {"BankAccountRef": {"value": checking["Id"]}},
            "TotalAmt": float(amount),
            "Line": [
                {"Amount": float(amount), "LinkedTxn": [{"TxnId": bill.qb_id, "TxnType": "Bill"}]}
            ],
        },
        request_id=f"test-pay-{bill.pk}-{amount}-{txn_id}",
    )


@pytest.fixture
def synced_bill(qbo):
    lh = pay_code(qbo)
    bill = payables.bill_create(
        company=qbo.connection.company,
        vendor=vendor(qbo),
        doc_number="CB-00003",
        bill_date=date(2026, 11, 20),
        lines=[payables.BillLineSpec(pay_code=lh, rate=Decimal("600.00"))],
    )
    assert push(bill) == "synced"
    bill.refresh_from_db()
    return bill


def test_cdc_marks_the_bill_partly_paid_then_paid_and_a_void_takes_it_back(qbo, synced_bill):
    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    first = pay_in_quickbooks(synced_bill, Decimal("200.00"))
    pull.pull_changes(connection=connection)
    bill = Bill.objects.get(pk=synced_bill.pk)
    assert bill.status == Bill.Status.PARTIALLY_PAID

    pay_in_quickbooks(synced_bill, Decimal("400.00"), txn_id="second")
    pull.pull_changes(connection=connection)
    pull.pull_changes(connection=connection)  # overlapping windows: recorded once
    bill.refresh_from_db()
    assert bill.status == Bill.Status.PAID
    assert BillPayment.objects.filter(company=bill.company).count() == 2

    session = SyncContext.for_company(bill.company_id).session
    current = session.read("BillPayment", first["Id"])
    session.call(
        "post",
        f"{session.client.api_url}/company/{session.realm}/billpayment",
        json.dumps({"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True}),
        params={"operation": "update", "include": "void"},
    )
    pull.pull_changes(connection=connection)
    bill.refresh_from_db()
    assert bill.status == Bill.Status.PARTIALLY_PAID
    assert BillPayment.objects.filter(company=bill.company).count() == 1


def test_a_bill_payment_webhook_marks_the_bill_paid(qbo, synced_bill):
    from qbo_sandbox import services

    services.flush_webhooks()  # deliveries of our own pushes
    pay_in_quickbooks(synced_bill, synced_bill.total)
    services.flush_webhooks()
    writes_before = SyncAttempt.objects.count()

    pull.webhook_events_process_pending()

    event = WebhookEvent.objects.get(entity_name="BillPayment")
    assert event.outcome == WebhookEvent.Outcome.PULLED
    assert Bill.objects.get(pk=synced_bill.pk).status == Bill.Status.PAID
    assert SyncAttempt.objects.count() == writes_before  # nothing is written back


def test_a_bill_deleted_in_quickbooks_becomes_a_problem_and_mark_paid_clears_it(qbo, synced_bill):
    session = SyncContext.for_company(synced_bill.company_id).session
    remote = session.read("Bill", synced_bill.qb_id)
    session.call(
        "post",
        f"{session.client.api_url}/company/{session.realm}/bill",
        json.dumps({"Id": remote["Id"], "SyncToken": remote["SyncToken"]}),
        params={"operation": "delete"},
    )
    pull.pull_changes(connection=QuickBooksConnection.objects.get(pk=qbo.connection.pk))
    bill = Bill.objects.get(pk=synced_bill.pk)
    assert bill.sync_status == SyncStatus.PROBLEM
    assert bill.problem_reason == "deleted_in_quickbooks"

    actions.record_mark_paid_outside(record=bill, user=None)
    bill.refresh_from_db()
    assert bill.sync_status == SyncStatus.PAID_OUTSIDE
    assert bill.status == Bill.Status.PAID


def test_sync_status_counts_vendors_and_bills(qbo, synced_bill):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("sync_status", "--json", stdout=out)
    counts = json.loads(out.getvalue())
    assert counts["vendor"] == {"synced": 1}
    assert counts["bill"] == {"synced": 1}
    assert counts["account"] == {"synced": 1}


def test_a_bill_paid_in_the_sandbox_ui_shows_paid_in_the_tms_after_its_webhook(
    qbo, synced_bill, client
):
    from qbo_sandbox import services

    services.user_ensure(
        email="ap-clerk@portpro.example", password="sandbox", realm_ids=[qbo.realm]
    )
    signin = {"email": "ap-clerk@portpro.example", "password": "sandbox"}
    assert client.post("/qbo-sandbox/signin", signin).status_code == 302
    services.flush_webhooks()  # deliveries of our own pushes
    checking = next(a for a in qbo.objects("Account") if a.get("AccountType") == "Bank")

    page = client.post(
        f"/qbo-sandbox/company/{qbo.realm}/bill/{synced_bill.qb_id}/pay",
        {"amount": "600.00", "pay_type": "Check", "account": checking["Id"]},
        follow=True,
    )
    assert page.status_code == 200
    assert qbo.get("Bill", synced_bill.qb_id)["Balance"] == 0.0

    services.flush_webhooks()  # Intuit's delivery to our webhook endpoint
    pull.webhook_events_process_pending()

    bill = Bill.objects.get(pk=synced_bill.pk)
    assert bill.status == Bill.Status.PAID
    payment = BillPayment.objects.get(company=bill.company)
    assert payment.pay_type == "Check"
    assert payment.amount == Decimal("600.00")


def test_a_bill_voided_in_quickbooks_is_voided_in_the_tms_too_on_request(qbo, synced_bill):
    session = SyncContext.for_company(synced_bill.company_id).session
    remote = session.read("Bill", synced_bill.qb_id)
    for line in remote["Line"]:
        line["Amount"] = 0
    remote["PrivateNote"] = "Voided"  # what voiding a bill in QuickBooks' screen leaves
    session.call(
        "post", f"{session.client.api_url}/company/{session.realm}/bill", json.dumps(remote)
    )
    voided_token = session.read("Bill", synced_bill.qb_id)["SyncToken"]
    pull.pull_changes(connection=QuickBooksConnection.objects.get(pk=qbo.connection.pk))
    bill = Bill.objects.get(pk=synced_bill.pk)
    assert bill.problem_reason == "voided_in_quickbooks"

    actions.record_accept_void(record=bill, user=None)

    bill.refresh_from_db()
    assert bill.status == Bill.Status.VOID
    # Its push finds QuickBooks already voided: nothing is written over it.
    assert push(bill) == "synced"
    assert qbo.get("Bill", bill.qb_id)["SyncToken"] == voided_token
