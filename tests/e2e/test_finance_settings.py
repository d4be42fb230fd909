"""Finance → QuickBooks in a real browser: the description preview follows the field order."""

import pytest
from playwright.sync_api import expect

from finance.services import finance_settings_get
from tests.e2e.conftest import screenshot
from tests.finance.factories import InvoiceFactory

# serialized_rollback: live_server flushes tables; this puts back the migrations' rows (roles,
# beat schedule) for the tests that run after these.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_it_updates_the_preview_as_fields_are_reordered(login, live_server, finance_user, company):
    finance_settings_get(company=company)  # container · po · charge_note
    InvoiceFactory(loads=2, lines=2)
    page = login(finance_user)
    page.goto(live_server.url + "/finance/quickbooks/")
    first_line = page.get_by_test_id("preview-line").first.locator(".desc-text")
    expect(first_line).to_contain_text("Container")
    before = first_line.inner_text()
    assert before.index("Container") < before.index("PO")
    page.get_by_role("button", name="Move PO # up").click()
    # The preview is re-rendered by the server with PO first.
    page.wait_for_function(
        """() => {
            const t = document.querySelector('[data-testid=preview-line] .desc-text').innerText;
            return t.indexOf('PO') > -1 && t.indexOf('PO') < t.indexOf('Container');
        }"""
    )
    screenshot(page, "finance-settings", docs_name="finance-settings.png")
    page.get_by_role("button", name="Save description mapping").click()
    expect(page.locator(".toast")).to_contain_text("saved")
    assert finance_settings_get(company=company).description_fields[:2] == ["po", "container"]
