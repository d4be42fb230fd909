"""A finance clerk fixes the payables' problems with the page's own buttons: a bill whose pay
code has no QuickBooks account (mapped on the pay-code card, the bill follows by itself), and a
carrier whose name a QuickBooks customer holds (Send with suffix)."""

from datetime import date
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from finance import payables
from finance.services import customer_create
from finance.syncstate import SyncStatus
from tests.e2e.conftest import wait_for
from tests.e2e.test_finance_walk import answering, problem, problem_row, status_of
from tests.sync.conftest import beat  # noqa: F401 - fixture (retries come back with the sweep)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.mark.usefixtures("beat")
def test_an_unmapped_pay_code_is_mapped_on_its_card_and_the_bill_follows(
    login, live_server, finance_user, qbo, celery_worker
):
    company = qbo.connection.company
    code = payables.pay_code_create(company=company, code="LH", name="Line haul pay")
    carrier = payables.vendor_create(
        company=company, display_name="Pacific Gateway Trucking", email="ap@pg.example"
    )
    bill = payables.bill_create(
        company=company,
        vendor=carrier,
        doc_number="CB-00042",
        bill_date=date(2026, 11, 20),
        lines=[payables.BillLineSpec(pay_code=code, rate=Decimal("375.00"))],
    )
    bill = problem(bill, "missing_account_mapping")
    subcontractors = next(a for a in qbo.objects("Account") if a["Name"] == "Subcontractors")

    page = login(finance_user)
    row = problem_row(page, live_server, bill)
    expect(row).to_contain_text("A pay code has no QuickBooks account")
    row.get_by_role("link", name="Map pay codes →").click()
    page.wait_for_url("**/finance/quickbooks/#pay-codes")
    card = page.locator(f"#mapping-account-{code.pk}")
    card.get_by_label("QuickBooks account for LH").select_option(label="Subcontractors")
    card.get_by_role("button", name="Save").click()
    expect(page.locator(".toast")).to_contain_text(
        f"LH now maps to QuickBooks account {subcontractors['Id']}"
    )

    bill = wait_for(lambda: status_of(bill, SyncStatus.SYNCED), message="the bill did not follow")
    remote = qbo.get("Bill", bill.qb_id)
    assert (
        remote["Line"][0]["AccountBasedExpenseLineDetail"]["AccountRef"]["value"]
        == (subcontractors["Id"])
    )
    assert "Line haul pay" not in {a["Name"] for a in qbo.objects("Account")}  # mapped, not made


@pytest.mark.usefixtures("beat")
def test_a_carrier_named_like_a_customer_is_sent_with_the_suffix_from_its_row(
    login, live_server, finance_user, qbo, celery_worker
):
    company = qbo.connection.company
    customer = customer_create(company=company, display_name="Keystone Container Lines")
    wait_for(lambda: status_of(customer, SyncStatus.SYNCED), message="the customer never synced")
    carrier = payables.vendor_create(company=company, display_name="Keystone Container Lines")
    carrier = problem(carrier, "vendor_name_taken")

    page = login(finance_user)
    row = problem_row(page, live_server, carrier)
    expect(row).to_contain_text("A customer or employee in QuickBooks has this vendor's name")
    asked = answering(page)
    row.get_by_role("button", name="Send with suffix").click()
    expect(page.locator(".toast")).to_contain_text("queued under its name with the suffix")
    assert "plus the suffix of Finance settings" in asked[0]

    carrier = wait_for(
        lambda: status_of(carrier, SyncStatus.SYNCED), message="the vendor never synced"
    )
    assert qbo.get("Vendor", carrier.qb_id)["DisplayName"] == "Keystone Container Lines (Vendor)"
