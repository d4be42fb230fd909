"""A clerk at month-end: the reconciliation report read from QuickBooks, a difference found,
the period narrowed to one customer, the CSV downloaded, the difference acknowledged and
reopened; the nightly run's problem row on Problem Sync offers QuickBooks' version or the TMS's."""

import csv
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from finance.models import Membership
from sync.services import reconcile
from tests.sync.test_quickbooks_changes import edit_first_line_in_quickbooks, synced_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def unpaced(settings):
    settings.QBO_RATE_LIMIT_ENABLED = False


def test_the_report_finds_a_changed_amount_filters_and_exports(
    page, live_server, login, qbo, finance_user, settings
):
    changed, other = synced_invoice(qbo), synced_invoice(qbo)
    edit_first_line_in_quickbooks(qbo, changed, 61.0)
    Membership.objects.get_or_create(user=finance_user, company=changed.company)
    login(finance_user)
    start = (date.today() - timedelta(days=300)).isoformat()
    end = date.today().isoformat()

    page.goto(f"{live_server.url}/sync/reconciliation/?start={start}&end={end}")
    expect(page.get_by_test_id("reconcile-source")).to_contain_text("has not been read")
    page.get_by_test_id("reconcile-refresh").click()
    expect(page.locator("#toasts")).to_contain_text("metered read")

    differences = page.get_by_test_id("reconcile-differences")
    row = differences.locator(f"tr[data-number='{changed.doc_number}']")
    expect(row).to_contain_text("Amount differs")
    expect(row).to_contain_text("61.00")
    expect(page.get_by_test_id("difference-count")).to_have_text("1")
    expect(page.get_by_test_id("reconcile-totals")).to_contain_text("Open receivables")

    # One customer only: the other invoice's customer is not in the report.
    page.fill("#id_party", changed.customer.display_name)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("reconcile-agreeing")).to_contain_text("0 documents agree")
    with page.expect_download() as download:
        page.get_by_test_id("reconcile-csv").click()
    rows = list(csv.reader(open(download.value.path(), encoding="utf-8")))
    assert rows[0][0] == "difference"
    assert [r[2] for r in rows[1:] if r[0] != "Total"] == [changed.doc_number]

    # Acknowledged with a note, the difference is listed apart; reopened, it is open again.
    row.get_by_placeholder("Why (optional)").fill("agreed with the customer")
    row.get_by_test_id("acknowledge").click()
    expect(page.locator("#toasts")).to_contain_text("Acknowledged")
    expect(page.get_by_test_id("difference-count")).to_have_text("0")
    accepted = page.get_by_test_id("reconcile-acknowledged")
    expect(accepted).to_contain_text(f"{finance_user.username}, ")
    expect(accepted).to_contain_text("agreed with the customer")
    accepted.get_by_test_id("reopen").click()
    expect(page.locator("#toasts")).to_contain_text("open again")
    expect(page.get_by_test_id("difference-count")).to_have_text("1")
    expect(page.get_by_test_id("reconcile-acknowledged")).to_have_count(0)

    # A period that ends before it starts is refused in words.
    page.fill("#id_start", end)
    page.fill("#id_end", start)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("reconcile-errors")).to_contain_text("ends before it starts")

    # The nightly run turns the difference into a Problem Sync row with its own reason.
    settings.RECONCILE_HOUR = 0
    reconcile.run_nightly(run_id=reconcile.reconcile_due()[0])
    page.goto(f"{live_server.url}/sync/problems/?type=invoice")
    problem = page.locator(f"#row-invoice-{changed.pk}")
    expect(problem).to_contain_text("Reconciliation: amount differs in QuickBooks")
    expect(problem.get_by_role("button", name="Use QuickBooks' version")).to_be_visible()
    expect(problem.get_by_role("button", name="Overwrite QuickBooks")).to_be_visible()
    assert other.doc_number not in problem.inner_text()
