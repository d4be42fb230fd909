"""Problem Sync in a real browser: rows, row actions without reload, bulk progress."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from finance.models import Invoice
from finance.syncstate import SyncStatus
from tests.e2e.conftest import screenshot
from tests.finance.factories import InvoiceFactory
from tests.sync.uifactories import park, problem_invoices

# serialized_rollback: live_server flushes tables; this puts back the migrations' rows (roles,
# beat schedule) for the tests that run after these.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def seed_trend(invoice):
    """Two weeks of opened/resolved events so the header chart has something to draw."""
    from sync.models import ProblemEvent

    now = timezone.now()
    for day, (opened, resolved) in enumerate([(3, 1), (5, 4), (2, 2), (6, 3), (1, 4), (4, 2)]):
        for kind, count in (("opened", opened), ("resolved", resolved)):
            for _ in range(count):
                event = ProblemEvent.objects.create(
                    company_id=invoice.company_id,
                    record_type="invoice",
                    record_id=invoice.pk,
                    kind=kind,
                    how="synced",
                )
                ProblemEvent.objects.filter(pk=event.pk).update(
                    at=now - timedelta(days=2 * day + 1)
                )


def test_it_shows_a_problem_invoice_with_its_reason(login, live_server, finance_user, company):
    [invoice] = problem_invoices(1)
    seed_trend(invoice)
    park(InvoiceFactory(loads=2), reason="duplicate_doc_number", days=3)
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/")
    row = page.locator(f"#row-invoice-{invoice.pk}")
    expect(row).to_contain_text("A charge code has no QuickBooks item")
    expect(row.get_by_role("link", name=re.compile("Map charge codes"))).to_be_visible()
    expect(page.get_by_test_id("count-invoice")).to_have_text("2")
    screenshot(page, "problem-sync", docs_name="problem-sync.png")


def test_it_clears_a_row_and_undoes_it(login, live_server, finance_user, company):
    [invoice] = problem_invoices(1)
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/")
    row = page.locator(f"#row-invoice-{invoice.pk}")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    row.get_by_role("button", name="Clear without sync").click()
    expect(row).to_be_visible()  # "no" leaves it on the list
    assert "without sending it to QuickBooks" in asked[0]
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PROBLEM
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Clear without sync").click()
    expect(row).to_have_count(0)
    expect(page.get_by_test_id("count-invoice")).to_have_text("0")
    resolved = page.locator(f"#resolved-invoice-{invoice.pk}")
    expect(resolved).to_contain_text("Cleared without sync")
    resolved.get_by_role("button", name="Undo").click()
    expect(page.locator(f"#row-invoice-{invoice.pk}")).to_be_visible()
    expect(page.get_by_test_id("count-invoice")).to_have_text("1")
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PROBLEM


def test_it_marks_an_invoice_paid_after_confirmation(login, live_server, finance_user, company):
    [invoice] = problem_invoices(1)
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/")
    messages = []

    def accept(dialog):
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.locator(f"#row-invoice-{invoice.pk}").get_by_role(
        "button", name="Mark paid without sync"
    ).click()
    expect(page.locator(f"#row-invoice-{invoice.pk}")).to_have_count(0)
    assert "made directly in QuickBooks" in messages[0]
    invoice.refresh_from_db()
    assert (invoice.sync_status, invoice.status) == ("paid_outside", Invoice.Status.PAID)


def test_it_bulk_clears_with_a_progress_bar(
    login, live_server, finance_user, company, bulk_in_thread
):
    invoices = problem_invoices(4)
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/")
    page.locator("#select-all").check()
    expect(page.locator("#selected-count")).to_have_text("4 selected")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_test_id("bulk-clear").click()
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=15_000)
    expect(page.get_by_test_id("bulk-progress")).to_contain_text("4 done")
    assert "Clear the selected records" in asked[0]
    # The finished bar reloads the table: the cleared rows are gone.
    expect(page.locator("[data-testid=problem-row]")).to_have_count(0)
    screenshot(page, "problem-sync-bulk")
    assert {i.sync_status for i in Invoice.objects.filter(pk__in=[i.pk for i in invoices])} == {
        "cleared"
    }


def test_it_opens_the_detail_drawer(login, live_server, finance_user, company):
    [invoice] = problem_invoices(1)
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/")
    page.locator(f"#row-invoice-{invoice.pk}").get_by_test_id("details").click()
    drawer = page.get_by_test_id("detail-drawer")
    expect(drawer).to_contain_text("Attempt history")
    expect(drawer.get_by_test_id("payload-preview")).to_be_visible()
    screenshot(page, "problem-sync-drawer")


def test_it_selects_every_matching_record_across_pages_then_clears_them(
    login, live_server, finance_user, company, bulk_in_thread
):
    invoices = problem_invoices(55)
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/")
    expect(page.locator("[data-testid=problem-row]")).to_have_count(50)  # one page
    page.get_by_test_id("select-matching").click()
    expect(page.locator("#selected-count")).to_have_text("All 55 matching selected")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("bulk-clear").click()
    expect(page.get_by_test_id("bulk-progress")).to_contain_text("55 done", timeout=20_000)
    expect(page.locator("[data-testid=problem-row]")).to_have_count(0)
    assert set(
        Invoice.objects.filter(pk__in=[i.pk for i in invoices]).values_list(
            "sync_status", flat=True
        )
    ) == {"cleared"}


def test_it_exports_the_filtered_view_as_csv(login, live_server, finance_user, company):
    kept = park(InvoiceFactory(lines=1), reason="validation")
    park(InvoiceFactory(lines=1), reason="duplicate_doc_number")
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/?type=invoice&reason=validation")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    text = open(download.value.path(), encoding="utf-8").read()
    lines = text.strip().splitlines()
    assert lines[0].startswith("Record,Customer,Amount,Reason")
    assert len(lines) == 2 and lines[1].endswith(f",{kept.pk}")
