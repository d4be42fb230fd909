"""Finance → QuickBooks in a real browser: which load documents go with invoices."""

import pytest
from playwright.sync_api import expect

from finance.services import finance_settings_get

# serialized_rollback: live_server flushes tables; this puts back the migrations' rows.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_document_kind_ticked_on_the_settings_page_is_saved(
    login, live_server, finance_user, company
):
    assert finance_settings_get(company=company).attach_document_kinds == ["pod", "bol"]
    page = login(finance_user)
    page.goto(live_server.url + "/finance/quickbooks/")
    kinds = page.get_by_test_id("document-kinds")
    expect(kinds.get_by_label("Proof of delivery (POD)")).to_be_checked()
    expect(kinds.get_by_label("Scale ticket")).not_to_be_checked()
    kinds.get_by_label("Scale ticket").check()
    kinds.get_by_label("Bill of lading (BOL)").uncheck()
    kinds.get_by_label("Include the attachments when QuickBooks emails the invoice").check()
    page.get_by_role("button", name="Save options").click()
    expect(page.locator(".toast")).to_contain_text("saved")
    row = finance_settings_get(company=company)
    assert row.attach_document_kinds == ["pod", "scale_ticket"]
    assert row.attachments_on_send is True
    # The page shows what was saved.
    page.goto(live_server.url + "/finance/quickbooks/")
    expect(page.get_by_test_id("document-kinds").get_by_label("Scale ticket")).to_be_checked()
    expect(
        page.get_by_test_id("document-kinds").get_by_label("Bill of lading (BOL)")
    ).not_to_be_checked()
