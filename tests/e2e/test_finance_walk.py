"""A finance clerk's walk through Problem Sync: each kind of problem, fixed with the page's own
buttons and links (never admin), ending in what QuickBooks and the TMS really hold.

Signed in as the Finance role only. Changes made "in QuickBooks" go through the emulator's API
as another QuickBooks user would make them; a change is brought in by the CDC pull (beat's
fallback when no webhook arrives)."""

import json
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from finance.models import ChargeCode, Customer, Invoice, Payment
from finance.services import finance_settings_get, invoice_update, payment_create
from finance.syncstate import SyncStatus
from sync.models import QuickBooksConnection
from sync.services.engine import SyncContext
from tests.e2e.conftest import taken_in, wait_for
from tests.e2e.test_engine_flow import sandbox_sign_in, sandbox_user_of, synced_customer
from tests.finance.factories import ChargeCodeFactory, CustomerFactory
from tests.sync.conftest import beat  # noqa: F401 - fixture
from tests.sync.helpers import invoice_with
from tests.sync.uifactories import park

# serialized_rollback: live_server flushes tables; this puts back the migrations' rows (roles,
# beat schedule) for the tests that run after these.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


# --- set-up helpers (what happened before the clerk looks) --------------------------------


def qbo_user(qbo):
    """Another QuickBooks user acting on the same company, through the API."""
    return SyncContext.for_company(qbo.connection.company_id).session


def status_of(record, status):
    """The record, re-read, once it has this sync status (else None: for wait_for)."""
    return type(record).objects.filter(pk=record.pk, sync_status=status).first()


def mapped_code(code="DRAY", name="Drayage"):
    """A charge code the worker sent to QuickBooks as an item."""
    charge_code = ChargeCodeFactory(code=code, name=name)
    ChargeCode.objects.filter(pk=charge_code.pk).update(sync_status=SyncStatus.PENDING)
    from sync.services import engine

    assert engine.push_record(sync_type="item", pk=charge_code.pk) == "synced"
    charge_code.refresh_from_db()
    return charge_code


def synced_invoice(customer=None):
    """An invoice the worker pushed (its item and customer already in QuickBooks)."""
    invoice = invoice_with(mapped_code(), customer=customer or synced_customer())
    return wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the invoice never synced"
    )


def problem(record, reason, *, timeout=30):
    return wait_for(
        lambda: (
            type(record)
            .objects.filter(pk=record.pk, sync_status=SyncStatus.PROBLEM, problem_reason=reason)
            .first()
        ),
        timeout=timeout,
        message=f"{record} never became a {reason} problem",
    )


def in_quickbooks(qbo, entity, qb_id, *, operation):
    """Delete or void `entity` in QuickBooks as its user would (with its current SyncToken)."""
    session = qbo_user(qbo)
    remote = qbo.get(entity, qb_id)
    session.call(
        "post",
        f"{session.client.api_url}/company/{session.realm}/{entity.lower()}",
        json.dumps({"Id": remote["Id"], "SyncToken": remote["SyncToken"]}),
        params={"operation": operation},
    )


def pulled(record, reason):
    """The change made in QuickBooks reaches the TMS (its webhook, then the change pull)."""
    taken_in(lambda: problem_now(record, reason), timeout=40, message=f"{record} not {reason}")
    return problem_now(record, reason)


def problem_now(record, reason):
    return (
        type(record)
        .objects.filter(pk=record.pk, sync_status=SyncStatus.PROBLEM, problem_reason=reason)
        .first()
    )


def answering(page, answer=True):
    """Answer the next confirm dialog; returns the list its message lands in."""
    asked = []

    def handle(dialog):
        asked.append(dialog.message)
        dialog.accept() if answer else dialog.dismiss()

    page.once("dialog", handle)
    return asked


def problem_row(page, live_server, record):
    page.goto(f"{live_server.url}/sync/problems/?type={record.sync_type}")
    return page.locator(f"#row-{record.sync_type}-{record.pk}")


def sales_lines(remote):
    return [line for line in remote["Line"] if line.get("DetailType") == "SalesItemLineDetail"]


# --- 1. a charge code with no QuickBooks item ----------------------------------------------


def test_an_unmapped_charge_code_is_mapped_to_an_existing_item_and_the_invoice_follows(
    login, live_server, finance_user, qbo, celery_worker
):
    code = ChargeCodeFactory(code="CHAS", name="Chassis rental")  # unmapped
    invoice = invoice_with(code, customer=synced_customer())
    problem(invoice, "missing_item_mapping")
    # QuickBooks already has an item for it, under its own name.
    ctx = SyncContext.for_company(qbo.connection.company_id)
    item = ctx.session.create(
        "Item",
        {
            "Name": "Chassis (daily)",
            "Type": "Service",
            "IncomeAccountRef": {"value": ctx.ensure_income_account()},
        },
        request_id="e2e-walk-item-chassis",
    )

    page = login(finance_user)
    row = problem_row(page, live_server, invoice)
    expect(row).to_contain_text("A charge code has no QuickBooks item")
    row.get_by_role("link", name="Map charge codes →").click()
    page.wait_for_url("**/finance/quickbooks/#mapping")
    mapping = page.locator(f"#mapping-item-{code.pk}")
    mapping.get_by_label("QuickBooks item for CHAS").select_option(label="Chassis (daily)")
    mapping.get_by_role("button", name="Save").click()
    expect(page.locator(".toast")).to_contain_text(f"CHAS now maps to QuickBooks item {item['Id']}")
    expect(page.locator(f"#mapping-item-{code.pk}")).to_contain_text(
        f"Chassis (daily) (Id {item['Id']})"
    )

    # No Re-sync: the invoice waited on that item and goes by itself.
    invoice = wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the invoice did not follow"
    )
    remote = qbo.get("Invoice", invoice.qb_id)
    assert {line["SalesItemLineDetail"]["ItemRef"]["value"] for line in sales_lines(remote)} == {
        item["Id"]
    }
    assert "Chassis rental" not in {i["Name"] for i in qbo.objects("Item")}  # mapped, not made
    expect(problem_row(page, live_server, invoice)).to_have_count(0)


# --- 2. a customer whose name QuickBooks already uses, and its waiting invoice -------------


def customer_conflict_with_invoice(qbo, *, name, email, theirs_entity, theirs_body):
    """Theirs in QuickBooks, ours refused (6240), then an invoice parked on our customer."""
    theirs = qbo_user(qbo).create(
        theirs_entity, {"DisplayName": name, **theirs_body}, request_id=f"e2e-walk-{name[:20]}"
    )
    customer = CustomerFactory(display_name=name, billing_email=email)
    wait_for(
        lambda: Customer.objects.filter(pk=customer.pk, sync_status=SyncStatus.PROBLEM).exists(),
        message="the name conflict never reached Problem Sync",
    )
    invoice = invoice_with(mapped_code(), customer=customer)
    problem(invoice, "customer_not_synced")
    customer.refresh_from_db()
    return theirs, customer, invoice


def open_match_screen_from_the_invoice(page, live_server, invoice, customer, reason_title):
    """Invoice row → the customer's problem → the matching screen."""
    row = problem_row(page, live_server, invoice)
    expect(row).to_contain_text("The customer is not in QuickBooks yet")
    row.get_by_role("link", name="See the customer's problem →").click()
    customer_row = page.locator(f"#row-customer-{customer.pk}")
    expect(customer_row).to_contain_text(reason_title)
    customer_row.get_by_role("link", name="Compare with QuickBooks →").click()
    page.wait_for_url(f"**/sync/customers/{customer.pk}/match/")
    expect(page.get_by_test_id("tms-customer")).to_contain_text(customer.display_name)


def test_a_name_a_vendor_holds_is_sent_under_another_name_and_the_invoice_follows(
    login, live_server, finance_user, qbo, celery_worker
):
    _, customer, invoice = customer_conflict_with_invoice(
        qbo,
        name="Harbor Freight Lines",
        email="ap@harborfreight.example",
        theirs_entity="Vendor",
        theirs_body={},
    )
    assert customer.problem_reason == "duplicate_name"

    page = login(finance_user)
    open_match_screen_from_the_invoice(
        page, live_server, invoice, customer, "The name is already used in QuickBooks"
    )
    expect(page.get_by_test_id("match-table")).to_contain_text("a vendor or an employee does")
    page.get_by_label("Create under another name").fill("Harbor Freight Lines (Drayage)")
    page.get_by_role("button", name="Create under this name").click()
    page.wait_for_url("**/sync/problems/?type=customer")
    expect(page.locator(".toast")).to_contain_text("being sent to QuickBooks under its new name")
    expect(page.locator(f"#row-customer-{customer.pk}")).to_have_count(0)

    customer = wait_for(
        lambda: status_of(customer, SyncStatus.SYNCED), message="the renamed customer never synced"
    )
    assert qbo.get("Customer", customer.qb_id)["DisplayName"] == "Harbor Freight Lines (Drayage)"
    invoice = wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the invoice did not follow"
    )
    assert qbo.get("Invoice", invoice.qb_id)["CustomerRef"]["value"] == customer.qb_id
    assert [v["DisplayName"] for v in qbo.objects("Vendor")] == ["Harbor Freight Lines"]


def test_a_customer_linked_with_our_email_sent_over_theirs_and_the_invoice_follows(
    login, live_server, finance_user, qbo, celery_worker
):
    theirs, customer, invoice = customer_conflict_with_invoice(
        qbo,
        name="Bayside Drayage",
        email="ops@ours.example",
        theirs_entity="Customer",
        theirs_body={"PrimaryEmailAddr": {"Address": "ap@bayside.example"}},
    )
    assert customer.problem_reason == "customer_email_mismatch"

    page = login(finance_user)
    open_match_screen_from_the_invoice(
        page,
        live_server,
        invoice,
        customer,
        "A different customer with this name already exists in QuickBooks",
    )
    candidate = page.locator(f"[data-qb-id='{theirs['Id']}']")
    expect(candidate).to_contain_text("ap@bayside.example")
    asked = answering(page)
    candidate.get_by_role("button", name="Link and update QuickBooks' email").click()
    page.wait_for_url("**/sync/problems/?type=customer")
    assert "ops@ours.example" in asked[0] and "ap@bayside.example" in asked[0]
    expect(page.locator(f"#row-customer-{customer.pk}")).to_have_count(0)

    customer = wait_for(
        lambda: status_of(customer, SyncStatus.SYNCED), message="the linked customer never synced"
    )
    assert customer.qb_id == theirs["Id"]
    [remote] = qbo.objects("Customer")  # linked: no second customer
    assert remote["PrimaryEmailAddr"]["Address"] == "ops@ours.example"
    invoice = wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the invoice did not follow"
    )
    assert qbo.get("Invoice", invoice.qb_id)["CustomerRef"]["value"] == theirs["Id"]


# --- 3. deleted in QuickBooks --------------------------------------------------------------


def test_an_invoice_deleted_in_quickbooks_is_sent_again_as_new(
    login, live_server, finance_user, qbo, celery_worker
):
    invoice = synced_invoice()
    old_id = invoice.qb_id
    in_quickbooks(qbo, "Invoice", old_id, operation="delete")
    pulled(invoice, "deleted_in_quickbooks")

    page = login(finance_user)
    row = problem_row(page, live_server, invoice)
    expect(row).to_contain_text("Deleted in QuickBooks")
    expect(row.get_by_role("button", name="Re-sync")).to_have_count(0)
    asked = answering(page)
    row.get_by_role("button", name="Send again as new").click()
    expect(row).to_have_count(0)
    assert "Create it there again as a new object?" in asked[0]

    invoice = wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the invoice was not sent again"
    )
    assert invoice.qb_id and invoice.qb_id != old_id
    remote = qbo.get("Invoice", invoice.qb_id)
    assert remote["DocNumber"] == invoice.doc_number
    assert Decimal(str(remote["TotalAmt"])) == invoice.total
    assert [i["Id"] for i in qbo.objects("Invoice")] == [invoice.qb_id]


def test_a_payment_deleted_in_quickbooks_is_cleared_then_the_clear_undone(
    login, live_server, finance_user, qbo, celery_worker
):
    invoice = synced_invoice()
    payment = payment_create(
        company=invoice.company,
        customer=invoice.customer,
        amount=Decimal("100.00"),
        payment_date="2026-01-15",
        applications=[(invoice, Decimal("100.00"))],
        reference_number="CHK-4471",
    )
    payment = wait_for(
        lambda: status_of(payment, SyncStatus.SYNCED), message="the payment never synced"
    )
    in_quickbooks(qbo, "Payment", payment.qb_id, operation="delete")
    pulled(payment, "deleted_in_quickbooks")

    page = login(finance_user)
    row = problem_row(page, live_server, payment)
    expect(row).to_contain_text("Deleted in QuickBooks")
    asked = answering(page)
    row.get_by_role("button", name="Clear without sync").click()
    expect(row).to_have_count(0)
    assert "without sending it to QuickBooks" in asked[0]
    assert Payment.objects.get(pk=payment.pk).sync_status == SyncStatus.CLEARED

    page.goto(f"{live_server.url}/sync/resolved/?type=payment")
    resolved = page.locator(f"#cleared-payment-{payment.pk}")
    expect(resolved).to_contain_text("Cleared")
    expect(resolved).to_contain_text("Deleted in QuickBooks")  # the reason it had
    resolved.get_by_role("button", name="Undo clear").click()
    expect(resolved).to_have_count(0)
    expect(page.locator(".toast")).to_contain_text("put back on the problem list")

    payment.refresh_from_db()
    assert (payment.sync_status, payment.problem_reason) == (
        SyncStatus.PROBLEM,
        "deleted_in_quickbooks",
    )
    expect(problem_row(page, live_server, payment)).to_contain_text("Deleted in QuickBooks")
    assert qbo.objects("Payment") == []  # nothing was sent


# --- 4. voided in QuickBooks: overwrite ----------------------------------------------------


def test_a_void_made_in_quickbooks_is_overwritten_with_the_tms_invoice(
    login, live_server, finance_user, qbo, celery_worker
):
    invoice = synced_invoice()
    in_quickbooks(qbo, "Invoice", invoice.qb_id, operation="void")
    pulled(invoice, "voided_in_quickbooks")
    assert float(qbo.get("Invoice", invoice.qb_id)["TotalAmt"]) == 0

    page = login(finance_user)
    row = problem_row(page, live_server, invoice)
    expect(row).to_contain_text("Voided in QuickBooks")
    asked = answering(page)
    row.get_by_role("button", name="Overwrite QuickBooks").click()
    expect(row).to_have_count(0)
    assert "un-voids it in QuickBooks" in asked[0]

    invoice = wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the overwrite never synced"
    )
    remote = qbo.get("Invoice", invoice.qb_id)
    assert invoice.status != Invoice.Status.VOID
    assert Decimal(str(remote["TotalAmt"])) == invoice.total > 0
    assert remote.get("PrivateNote") != "Voided"
    assert [Decimal(str(line["Amount"])) for line in sales_lines(remote)] == [
        Decimal("125.50"),
        Decimal("125.50"),
    ]
    assert invoice.qb_sync_token == str(remote["SyncToken"])


# --- 5. changed in QuickBooks: overwrite ---------------------------------------------------


def test_an_amount_changed_in_quickbooks_is_shown_then_overwritten(
    login, live_server, finance_user, qbo, celery_worker
):
    invoice = synced_invoice()
    remote = qbo.get("Invoice", invoice.qb_id)
    lines = sales_lines(remote)
    lines[0] = {
        **lines[0],
        "Amount": 999.0,
        "SalesItemLineDetail": {**lines[0]["SalesItemLineDetail"], "UnitPrice": 999.0, "Qty": 1},
    }
    qbo_user(qbo).update(
        "Invoice",
        {"Id": remote["Id"], "SyncToken": remote["SyncToken"], "sparse": True, "Line": lines},
        request_id="e2e-walk-change-amount",
    )
    # The TMS invoice changes too: its push finds QuickBooks' version newer than ours.
    invoice_update(invoice=invoice, memo="Detention billed separately")
    problem(invoice, "changed_in_quickbooks")

    page = login(finance_user)
    row = problem_row(page, live_server, invoice)
    expect(row).to_contain_text("Changed in QuickBooks since the last sync")
    expect(row.get_by_role("button", name="Re-sync")).to_have_count(0)
    row.get_by_test_id("details").click()
    drawer = page.get_by_test_id("detail-drawer")
    drift = drawer.get_by_test_id("drift")
    expect(drift).to_contain_text("Line 1 Amount")
    expect(drift).to_contain_text("999")
    drawer.get_by_role("button", name="Close details").click()
    expect(drawer).to_be_hidden()
    asked = answering(page)
    row.get_by_role("button", name="Overwrite QuickBooks").click()
    expect(row).to_have_count(0)
    assert "Line 1 Amount (QuickBooks now 999" in asked[0]

    invoice = wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the overwrite never synced"
    )
    remote = qbo.get("Invoice", invoice.qb_id)
    assert [Decimal(str(line["Amount"])) for line in sales_lines(remote)] == [
        Decimal("125.50"),
        Decimal("125.50"),
    ]
    assert Decimal(str(remote["TotalAmt"])) == invoice.total
    assert remote["PrivateNote"] == "Detention billed separately"


def test_an_amount_changed_in_quickbooks_is_taken_into_the_tms(
    login, live_server, finance_user, qbo, celery_worker
):
    invoice = synced_invoice()
    remote = qbo.get("Invoice", invoice.qb_id)
    lines = sales_lines(remote)
    lines[1] = {
        **lines[1],
        "Amount": 80.0,
        "SalesItemLineDetail": {**lines[1]["SalesItemLineDetail"], "UnitPrice": 80.0, "Qty": 1},
    }
    qbo_user(qbo).update(
        "Invoice",
        {"Id": remote["Id"], "SyncToken": remote["SyncToken"], "sparse": True, "Line": lines},
        request_id="e2e-walk-change-to-take",
    )
    invoice_update(invoice=invoice, memo="Second move discounted")  # ours, meanwhile
    problem(invoice, "changed_in_quickbooks")

    page = login(finance_user)
    row = problem_row(page, live_server, invoice)
    asked = answering(page)
    row.get_by_role("button", name="Use QuickBooks' version").click()
    expect(row).to_have_count(0)
    assert "Line 2 Amount (QuickBooks now 80" in asked[0] and "send nothing" in asked[0]

    invoice = wait_for(lambda: status_of(invoice, SyncStatus.SYNCED), message="never synced")
    assert invoice.total == Decimal("205.50")  # 125.50 + QuickBooks' 80
    remote = qbo.get("Invoice", invoice.qb_id)
    assert Decimal(str(remote["TotalAmt"])) == invoice.total
    assert remote["PrivateNote"] == "Second move discounted"  # our own edit went too


def test_a_document_number_quickbooks_holds_is_sent_under_another_number(
    login, live_server, finance_user, qbo, celery_worker
):
    code = mapped_code()
    customer = synced_customer()
    customer.refresh_from_db()
    qbo_user(qbo).create(
        "Invoice",
        {
            "DocNumber": "INV-4242",
            "CustomerRef": {"value": customer.qb_id},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": 60,
                    "SalesItemLineDetail": {"ItemRef": {"value": code.qb_id}},
                }
            ],
        },  # fmt: skip
        request_id="e2e-walk-theirs-4242",
    )
    invoice = invoice_with(code, customer=customer, doc_number="INV-4242")
    problem(invoice, "duplicate_doc_number")

    page = login(finance_user)
    row = problem_row(page, live_server, invoice)
    expect(row).to_contain_text("This document number is already used in QuickBooks")
    row.get_by_role("link", name="Compare with QuickBooks →").click()
    expect(page.get_by_test_id("holder")).to_contain_text("60")
    page.get_by_label("Send under another number").fill("INV-4242-B")
    page.get_by_role("button", name="Send under this number").click()
    page.wait_for_url("**/sync/problems/?type=invoice")

    invoice = wait_for(lambda: status_of(invoice, SyncStatus.SYNCED), message="never synced")
    assert invoice.doc_number == "INV-4242-B"
    assert sorted(o["DocNumber"] for o in qbo.objects("Invoice")) == ["INV-4242", "INV-4242-B"]


def test_an_item_made_inactive_in_quickbooks_is_found_reactivated_and_the_invoice_follows(
    login, live_server, finance_user, qbo, celery_worker
):
    invoice = synced_invoice()
    code = ChargeCode.objects.get(pk=invoice.charge_sets.first().lines.first().charge_code_id)
    remote = qbo.get("Item", code.qb_id)
    qbo_user(qbo).update(
        "Item",
        {"Id": remote["Id"], "SyncToken": remote["SyncToken"], "sparse": True, "Active": False},
        request_id="e2e-walk-item-inactive",
    )
    invoice_update(invoice=invoice, memo="Re-billed")
    problem(invoice, "inactive_reference")

    page = login(finance_user)
    row = problem_row(page, live_server, invoice)
    row.get_by_role("button", name="Find what QuickBooks refuses").click()
    expect(row.get_by_test_id("what-to-fix")).to_contain_text(f"Charge code {code.code}")
    item_row = problem_row(page, live_server, code)
    expect(item_row).to_contain_text("Changed in QuickBooks since the last sync")
    answering(page)
    item_row.get_by_role("button", name="Overwrite QuickBooks").click()
    expect(item_row).to_have_count(0)

    wait_for(lambda: status_of(invoice, SyncStatus.SYNCED), message="the invoice never followed")
    assert qbo.get("Item", code.qb_id)["Active"] is True
    assert qbo.get("Invoice", invoice.qb_id)["PrivateNote"] == "Re-billed"


# --- 6. QuickBooks needs reconnecting ------------------------------------------------------


def needs_reconnect(qbo):
    return wait_for(
        lambda: QuickBooksConnection.objects.filter(
            pk=qbo.connection.pk, status=QuickBooksConnection.Status.NEEDS_RECONNECT
        ).exists(),
        message="the revoked authorization was never noticed",
    )


def reconnect_from_the_banner(page, live_server, qbo, waiting):
    """Waiting lists what is held; the banner's Reconnect → the card → Intuit's consent."""
    page.goto(f"{live_server.url}/sync/waiting/?type=customer")
    for customer in waiting:
        expect(page.locator(f"#waiting-customer-{customer.pk}")).to_be_visible()
    banner = page.get_by_test_id("reconnect-banner")
    expect(banner).to_contain_text("QuickBooks needs reconnecting")
    banner.get_by_role("link", name="Reconnect").click()
    page.wait_for_url("**/finance/quickbooks/#connection")
    expect(page.get_by_test_id("connection-status")).to_have_text("Needs reconnecting")
    page.get_by_test_id("connection-card").get_by_role("button", name="Reconnect").click()
    sandbox_sign_in(page)
    page.locator(f"button[data-realm='{qbo.realm}']").click()
    page.wait_for_url("**/finance/quickbooks/**")
    expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    expect(page.get_by_test_id("reconnect-banner")).to_have_count(0)


def test_records_waiting_on_a_revoked_connection_sync_after_reconnecting(
    request, login, live_server, finance_user, qbo, celery_worker
):
    sandbox_user_of(qbo.realm)
    qbo.faults(expire_tokens=True, revoke_refresh_tokens=True)  # revoked at Intuit
    first = CustomerFactory(display_name="Pier 9 Logistics")  # its push finds out
    needs_reconnect(qbo)
    # Beat's sweep (compressed) from here on: after a reconnect it is what sends the records
    # that waited (nothing else kicks the queue).
    request.getfixturevalue("beat")
    later = CustomerFactory(display_name="Dockside Cartage")  # entered while disconnected
    for customer in (first, later):
        customer.refresh_from_db()
        assert customer.sync_status == SyncStatus.PENDING and not customer.problem_reason

    page = login(finance_user)
    reconnect_from_the_banner(page, live_server, qbo, [first, later])

    # Nothing to press: the records that waited go by themselves.
    for customer in (first, later):
        customer = wait_for(
            lambda c=customer: status_of(c, SyncStatus.SYNCED), message=f"{customer} never synced"
        )
        assert qbo.get("Customer", customer.qb_id)["DisplayName"] == customer.display_name


def test_a_record_dispatched_as_the_authorization_lapsed_syncs_after_reconnecting(
    request, login, live_server, finance_user, qbo
):
    from sync.services import engine
    from sync.services.sweep import dispatch_due

    sandbox_user_of(qbo.realm)
    dispatched = CustomerFactory(display_name="Gateway Chassis Pool")
    # The sweep hands it to a worker (no worker has taken the task yet)...
    assert dispatch_due() == {"customer": 1}
    # ...as QuickBooks revokes the authorization and another push finds out...
    qbo.faults(expire_tokens=True, revoke_refresh_tokens=True)
    other = CustomerFactory(display_name="Eastside Intermodal")
    assert engine.push_record(sync_type="customer", pk=other.pk) == "waiting"
    needs_reconnect(qbo)
    # ...then the worker runs the dispatched task: nothing can be sent, it waits.
    assert engine.push_record(sync_type="customer", pk=dispatched.pk) == "waiting"
    request.getfixturevalue("beat")  # the worker and beat's sweep from here on

    page = login(finance_user)
    reconnect_from_the_banner(page, live_server, qbo, [dispatched, other])

    wait_for(lambda: status_of(other, SyncStatus.SYNCED), message="the other never synced")
    wait_for(
        lambda: status_of(dispatched, SyncStatus.SYNCED),
        timeout=15,
        message="the record dispatched as the authorization lapsed never synced",
    )


# --- 7. a line description too long --------------------------------------------------------


def test_a_description_too_long_is_shortened_in_finance_settings_then_resynced(
    login, live_server, finance_user, qbo, celery_worker, company
):
    code = mapped_code()
    customer = synced_customer()
    settings_row = finance_settings_get(company=company)
    # Held back while the set-up parks it as QuickBooks' refusal would (push_on_change off).
    type(settings_row).objects.filter(pk=settings_row.pk).update(push_on_change=False)
    invoice = invoice_with(code, customer=customer, lines=1)
    invoice.charge_sets.get().lines.update(note="Waiting time at the terminal. " * 16)
    park(
        invoice,
        reason="description_too_long",
        last_error_code="6000",
        last_error_message="Business Validation Error: String length is either shorter or "
        "longer than supported by specification. Description:Max=4000",
    )
    type(settings_row).objects.filter(pk=settings_row.pk).update(push_on_change=True)

    page = login(finance_user)
    row = problem_row(page, live_server, invoice)
    expect(row).to_contain_text("A line description is longer than QuickBooks allows")
    row.get_by_role("link", name="Open Finance settings →").click()
    page.wait_for_url("**/finance/quickbooks/#descriptions")
    form = page.get_by_test_id("description-form")
    form.get_by_label("Charge note", exact=True).uncheck()
    expect(page.get_by_test_id("preview-line").first).not_to_contain_text("Waiting time")
    form.get_by_role("button", name="Save description mapping").click()
    expect(page.locator(".toast")).to_contain_text("saved")
    assert "charge_note" not in finance_settings_get(company=company).description_fields

    row = problem_row(page, live_server, invoice)
    row.get_by_role("button", name="Re-sync").click()
    expect(row).to_have_count(0)
    invoice = wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the re-sync never synced"
    )
    [line] = sales_lines(qbo.get("Invoice", invoice.qb_id))
    assert "Waiting time" not in line["Description"]
    assert len(line["Description"]) < 200


# --- 8. not syncing (skipped) --------------------------------------------------------------


def set_invoices_toggle(page, live_server, on: bool):
    page.goto(f"{live_server.url}/finance/quickbooks/#options")
    options = page.get_by_test_id("options-form")
    options.get_by_label("Invoices", exact=True).set_checked(on)
    options.get_by_role("button", name="Save options").click()
    expect(page.locator(".toast")).to_contain_text("QuickBooks settings saved")


def test_invoices_switched_off_wait_on_not_syncing_until_switched_on(
    login, live_server, finance_user, qbo, celery_worker, company
):
    code = mapped_code()
    customer = synced_customer()
    page = login(finance_user)
    set_invoices_toggle(page, live_server, on=False)
    assert finance_settings_get(company=company).sync_invoices is False

    invoice = invoice_with(code, customer=customer)
    wait_for(lambda: status_of(invoice, SyncStatus.SKIPPED), message="the invoice was not skipped")
    page.goto(f"{live_server.url}/sync/not-syncing/?type=invoice")
    row = page.locator(f"#skipped-invoice-{invoice.pk}")
    expect(row).to_contain_text("switched off in Finance settings")
    # Sync now says what stands in the way instead of sending it.
    row.get_by_role("button", name="Sync now").click()
    expect(page.locator(".toast").last).to_contain_text(
        "Invoices are switched off in Finance settings"
    )
    expect(row).to_be_visible()
    assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.SKIPPED

    set_invoices_toggle(page, live_server, on=True)
    invoice = wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the invoice did not resume"
    )
    assert qbo.get("Invoice", invoice.qb_id)["DocNumber"] == invoice.doc_number
    page.goto(f"{live_server.url}/sync/not-syncing/?type=invoice")
    expect(page.locator(f"#skipped-invoice-{invoice.pk}")).to_have_count(0)


def test_sync_now_sends_an_unmapped_charge_code_and_its_invoice_follows(
    login, live_server, finance_user, qbo, celery_worker
):
    code = ChargeCodeFactory(code="PREPULL", name="Pre-pull")  # starts unmapped: skipped
    invoice = invoice_with(code, customer=synced_customer())
    problem(invoice, "missing_item_mapping")

    page = login(finance_user)
    page.goto(f"{live_server.url}/sync/not-syncing/?type=item")
    row = page.locator(f"#skipped-item-{code.pk}")
    expect(row).to_contain_text("PREPULL")
    row.get_by_role("button", name="Sync now").click()
    expect(row).to_have_count(0)
    expect(page.locator(".toast").last).to_contain_text("queued to be sent to QuickBooks")

    code = wait_for(lambda: status_of(code, SyncStatus.SYNCED), message="the item never synced")
    assert qbo.get("Item", code.qb_id)["Name"] == "Pre-pull"
    invoice = wait_for(
        lambda: status_of(invoice, SyncStatus.SYNCED), message="the invoice did not follow"
    )
    [item_ref] = {
        line["SalesItemLineDetail"]["ItemRef"]["value"]
        for line in sales_lines(qbo.get("Invoice", invoice.qb_id))
    }
    assert item_ref == code.qb_id


# 9. "Mark paid without sync" is walked in tests/e2e/test_problem_sync.py
# (test_it_marks_an_invoice_paid_after_confirmation).
