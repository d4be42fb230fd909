"""Finance → QuickBooks → Alerts in a real browser: opt in (saved, still on after a reload),
set the team webhook and send a test alert that a local receiver gets."""

import pytest
from playwright.sync_api import expect

from alerts.models import AlertSubscription
from tests.alerts.conftest import Receiver
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_it_saves_the_opt_in_and_sends_a_test_alert(
    login, live_server, finance_user, company, receiver
):
    finance_user.email = "fiona@trucking.example"
    finance_user.save(update_fields=["email"])
    page = login(finance_user)
    page.goto(live_server.url + "/finance/quickbooks/#alerts")
    card = page.get_by_test_id("alerts-card")
    expect(card).to_be_visible()

    card.get_by_test_id("alerts-digest").check()
    expect(page.get_by_test_id("alerts-notice")).to_contain_text("daily digest")
    sub = AlertSubscription.objects.get(user=finance_user, company=company)
    assert (sub.digest, sub.immediate) == (True, False)
    page.reload()
    expect(page.get_by_test_id("alerts-digest")).to_be_checked()

    page.get_by_test_id("webhook-url").fill(receiver.url)
    page.get_by_role("button", name="Save webhook").click()
    expect(page.get_by_test_id("alerts-notice")).to_contain_text("Webhook saved")
    expect(page.get_by_test_id("webhook-shown")).not_to_contain_text("s3cr3tKEY")

    page.get_by_test_id("alerts-test").click()
    expect(page.get_by_test_id("alerts-notice")).to_contain_text("webhook: ok (HTTP 200)")
    # Why: what the browser started reached the team's endpoint as Slack-compatible JSON.
    assert "test alert" in receiver.bodies[-1]["text"]
    screenshot(page, "alerts-settings")
