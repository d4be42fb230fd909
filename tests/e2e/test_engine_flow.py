"""The whole loop in a browser: connect through the consent page, fix a problem and see the
invoice follow into the emulator, a payment received in the sandbox UI marking the TMS invoice
paid, and a void made in QuickBooks chosen, not overwritten."""

import pytest
from playwright.sync_api import expect

from finance.models import Customer, Invoice
from finance.syncstate import SyncStatus
from sync.models import QuickBooksConnection
from sync.services import engine
from tests.e2e.conftest import screenshot, taken_in, wait_for
from tests.finance.factories import ChargeCodeFactory, CustomerFactory
from tests.qbo_sandbox.helpers import SANDBOX_EMAIL, SANDBOX_PASSWORD
from tests.sync.helpers import invoice_with

# serialized_rollback: live_server flushes tables; this puts back the migrations' rows (roles,
# beat schedule) for the tests that run after these.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def synced_customer():
    """A customer already in QuickBooks, so the invoice does not wait on its dependency."""
    customer = CustomerFactory()
    wait_for(
        lambda: Customer.objects.filter(pk=customer.pk, sync_status=SyncStatus.SYNCED).exists(),
        message="the worker did not sync the customer",
    )
    return customer


def synced_invoice():
    """An invoice the worker pushed, its item and customer already in QuickBooks."""
    code = ChargeCodeFactory(code="DRAY", name="Drayage")
    code.sync_status = SyncStatus.PENDING
    code.save(update_fields=["sync_status"])
    assert engine.push_record(sync_type="item", pk=code.pk) == "synced"
    invoice = invoice_with(code, customer=synced_customer())
    return wait_for(
        lambda: Invoice.objects.filter(pk=invoice.pk, sync_status=SyncStatus.SYNCED).first(),
        message="the worker did not sync the invoice",
    )


def sandbox_user_of(realm: str):
    """The emulator's QuickBooks user of this company (it signs in before consent and the UI)."""
    from qbo_sandbox import services

    return services.user_ensure(email=SANDBOX_EMAIL, password=SANDBOX_PASSWORD, realm_ids=[realm])


def sandbox_sign_in(page):
    """Fill the emulator's sign-in form the page was sent to; it comes back where it was."""
    expect(page.get_by_role("heading", name="Sign in to QuickBooks")).to_be_visible()
    page.fill("#id_email", SANDBOX_EMAIL)
    page.fill("#id_password", SANDBOX_PASSWORD)
    page.click("#signin button[type=submit]")
    page.wait_for_url(lambda url: "/qbo-sandbox/signin" not in url)


def test_it_connects_through_the_consent_page(login, live_server, finance_user, sandbox_app):
    sandbox_user_of(sandbox_app.realm_id)
    page = login(finance_user)
    page.goto(live_server.url + "/finance/quickbooks/")
    page.get_by_role("button", name="Connect to QuickBooks").click()
    # Intuit asks for its own user first: the TMS login does not count in QuickBooks.
    sandbox_sign_in(page)
    page.locator(f"button[data-realm='{sandbox_app.realm_id}']").click()
    page.wait_for_url("**/finance/quickbooks/**")
    expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    expect(page.get_by_test_id("connection-card")).to_contain_text(sandbox_app.realm_id)
    connection = QuickBooksConnection.objects.get()
    assert (connection.status, connection.realm_id) == ("connected", sandbox_app.realm_id)


def test_a_fixed_invoice_follows_its_mapped_item_into_quickbooks(
    login, live_server, finance_user, qbo, celery_worker
):
    code = ChargeCodeFactory(code="CHAS", name="Chassis rental")  # unmapped: no QBO item yet
    invoice = invoice_with(code, customer=synced_customer())
    # Push on change: the worker sends it and QuickBooks-side checks park it as a problem.
    wait_for(
        lambda: Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.PROBLEM,
        message="the invoice never became a problem",
    )
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/")
    row = page.locator(f"#row-invoice-{invoice.pk}")
    expect(row).to_contain_text("A charge code has no QuickBooks item")
    # Fix the cause where the row points: the charge-code mapping.
    row.get_by_role("link", name="Map charge codes →").click()
    page.get_by_role("button", name="Create missing items").click()
    expect(page.locator("#item-mapping")).to_contain_text("CHAS")
    code.refresh_from_db()
    assert code.qb_id
    # The invoice waited on that item: it goes back in the queue by itself, no Re-sync needed.
    page.goto(live_server.url + "/sync/problems/")
    expect(page.locator(f"#row-invoice-{invoice.pk}")).to_have_count(0)
    wait_for(
        lambda: Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.SYNCED,
        message="the worker did not sync the invoice",
    )
    docs = [i["DocNumber"] for i in qbo.objects("Invoice")]
    assert docs == [invoice.doc_number]


def test_it_marks_the_invoice_paid_when_paid_in_the_sandbox(
    login, live_server, finance_user, superuser, qbo, celery_worker
):
    invoice = synced_invoice()
    sandbox_user_of(qbo.realm)
    page = login(superuser)
    page.goto(f"{qbo.base_url}/company/{qbo.realm}/invoice/{invoice.qb_id}/")
    sandbox_sign_in(page)  # the sandbox UI is a QuickBooks user's, as in QuickBooks itself
    page.locator("#receive-payment button[type=submit]").click()
    expect(page.locator("#invoice-balance")).to_have_text("0.0")
    taken_in(
        lambda: Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID,
        timeout=40,
        message="the payment applied in the sandbox never reached the TMS invoice",
    )
    screenshot(page, "sandbox-payment")


def test_a_void_made_in_quickbooks_is_chosen_not_overwritten(
    login, live_server, finance_user, superuser, qbo, celery_worker
):
    invoice = synced_invoice()
    sandbox_user_of(qbo.realm)
    page = login(superuser)
    page.goto(f"{qbo.base_url}/company/{qbo.realm}/invoice/{invoice.qb_id}/")
    sandbox_sign_in(page)
    page.locator("#void-invoice button[type=submit]").click()
    taken_in(
        lambda: Invoice.objects.get(pk=invoice.pk).problem_reason == "voided_in_quickbooks",
        timeout=40,
        message="the void made in QuickBooks never reached Problem Sync",
    )

    page.context.clear_cookies()  # the QuickBooks user leaves; the finance clerk signs in
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/")
    row = page.locator(f"#row-invoice-{invoice.pk}")
    expect(row).to_contain_text("Voided in QuickBooks")
    expect(row.get_by_role("button", name="Re-sync")).to_have_count(0)  # it would un-void it
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    row.get_by_role("button", name="Overwrite QuickBooks").click()
    expect(row).to_be_visible()
    assert "un-voids it in QuickBooks" in asked[0]
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Void in the TMS too").click()
    expect(row).to_have_count(0)
    invoice = wait_for(
        lambda: Invoice.objects.filter(pk=invoice.pk, sync_status=SyncStatus.SYNCED).first(),
        message="the invoice voided in the TMS too did not end synced",
    )
    remote = qbo.get("Invoice", invoice.qb_id)
    assert invoice.status == Invoice.Status.VOID
    assert remote["PrivateNote"] == "Voided" and float(remote["TotalAmt"]) == 0
    assert invoice.qb_sync_token == str(remote["SyncToken"])


def test_finance_matches_a_customer_quickbooks_already_has(
    login, live_server, finance_user, qbo, celery_worker
):
    from sync.services.engine import SyncContext

    theirs = SyncContext.for_company(qbo.connection.company_id).session.create(
        "Customer",
        {"DisplayName": "Bayside Drayage", "PrimaryEmailAddr": {"Address": "ap@bayside.example"}},
        request_id="e2e-theirs-bayside",
    )
    customer = CustomerFactory(display_name="Bayside Drayage", billing_email="ops@ours.example")
    customer = wait_for(
        lambda: Customer.objects.filter(pk=customer.pk, sync_status=SyncStatus.PROBLEM).first(),
        message="the name conflict never reached Problem Sync",
    )
    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/?type=customer")
    row = page.locator(f"#row-customer-{customer.pk}")
    expect(row).to_contain_text("A different customer with this name already exists")
    row.get_by_role("link", name="Compare with QuickBooks →").click()
    candidate = page.locator(f"[data-qb-id='{theirs['Id']}']")
    expect(candidate).to_contain_text("ap@bayside.example")
    expect(page.get_by_test_id("tms-customer")).to_contain_text("ops@ours.example")
    page.once("dialog", lambda dialog: dialog.accept())
    candidate.get_by_role("button", name="Link to this QuickBooks customer").click()
    page.wait_for_url("**/sync/problems/?type=customer")
    expect(page.locator(f"#row-customer-{customer.pk}")).to_have_count(0)
    customer.refresh_from_db()
    assert (customer.sync_status, customer.qb_id) == (SyncStatus.SYNCED, theirs["Id"])
    assert len(qbo.objects("Customer")) == 1
