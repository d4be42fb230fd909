"""Each QuickBooks fault ends in the right state with the right reason (DESIGN.md table)."""

import time
from decimal import Decimal

import pytest
from django.utils import timezone

from finance.models import Customer
from finance.services import customer_update, invoice_update
from finance.syncstate import SyncStatus
from sync.models import QuickBooksConnection, SyncAttempt
from sync.services import engine, ratelimit
from sync.services.engine import SyncContext
from tests.finance.factories import ChargeCodeFactory, CustomerFactory
from tests.sync.helpers import invoice_with

pytestmark = pytest.mark.django_db(transaction=True)


def push(record):
    record.refresh_from_db()
    outcome = engine.push_record(sync_type=record.sync_type, pk=record.pk)
    record.refresh_from_db()
    return outcome


def as_qbo_user(qbo):
    """Another QuickBooks user acting on the same company (through python-quickbooks)."""
    return SyncContext.for_company(qbo.connection.company_id).session


def mapped_code(qbo):
    code = ChargeCodeFactory()
    type(code).objects.filter(pk=code.pk).update(sync_status=SyncStatus.PENDING)
    assert push(code) == "synced"
    return code


def test_6240_links_the_existing_customer_when_the_email_matches(qbo):
    existing = as_qbo_user(qbo).create(
        "Customer",
        {
            "DisplayName": "Harbor Logistics LLC",
            "PrimaryEmailAddr": {"Address": "ap@harbor.example"},
        },
        request_id="test-existing-harbor",
    )
    customer = CustomerFactory(
        display_name="Harbor Logistics LLC", billing_email="AP@harbor.example"
    )

    assert push(customer) == "linked"

    assert customer.qb_id == existing["Id"]
    assert customer.sync_status == SyncStatus.SYNCED
    assert len(qbo.objects("Customer")) == 1


def test_6240_with_another_email_is_a_problem_that_offers_linking(qbo):
    as_qbo_user(qbo).create(
        "Customer",
        {
            "DisplayName": "Harbor Logistics LLC",
            "PrimaryEmailAddr": {"Address": "ap@harbor.example"},
        },
        request_id="test-existing-harbor-2",
    )
    customer = CustomerFactory(
        display_name="Harbor Logistics LLC", billing_email="billing@other.example"
    )

    assert push(customer) == "problem"

    assert customer.problem_reason == "customer_email_mismatch"
    assert customer.last_error_code == "6240"
    assert "ap@harbor.example" in customer.last_error_message
    assert customer.qb_id == ""


def test_6140_names_the_existing_invoice(qbo):
    code = mapped_code(qbo)
    stranger = CustomerFactory(display_name="Someone Else Inc")
    push(stranger)
    theirs = as_qbo_user(qbo).create(
        "Invoice",
        {
            "DocNumber": "INV-777",
            "CustomerRef": {"value": stranger.qb_id},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": 10,
                    "SalesItemLineDetail": {"ItemRef": {"value": code.qb_id}},
                }
            ],
        },  # fmt: skip
        request_id="test-theirs-777",
    )
    invoice = invoice_with(code, doc_number="INV-777")

    assert push(invoice) == "problem"

    assert invoice.problem_reason == "duplicate_doc_number"
    assert invoice.last_error_code == "6140"
    assert f"Id {theirs['Id']}" in invoice.last_error_message


def test_5010_rereads_and_applies_the_tms_version(qbo):
    customer = CustomerFactory(display_name="Stale Co")
    push(customer)
    qbo_user = as_qbo_user(qbo)
    remote = qbo_user.read("Customer", customer.qb_id)
    qbo_user.update(
        "Customer",
        {"Id": remote["Id"], "SyncToken": remote["SyncToken"], "sparse": True, "Notes": "edited"},
        request_id="test-edit-stale",
    )
    customer = customer_update(customer=customer, billing_email="fresh@stale.example")

    assert push(customer) == "synced"

    remote = qbo.get("Customer", customer.qb_id)
    assert remote["PrimaryEmailAddr"]["Address"] == "fresh@stale.example"
    assert remote["SyncToken"] == "2"
    assert SyncAttempt.objects.filter(record_id=customer.pk, fault_code="5010").exists()


@pytest.mark.parametrize(
    "ignore_requestid,timeout_mode",
    [(False, "504"), (True, "504"), (True, "sleep")],
    ids=["replay-504", "no-replay-504", "no-replay-client-timeout"],
)
def test_commit_then_timeout_never_duplicates(qbo, settings, ignore_requestid, timeout_mode):
    # "sleep": the answer comes after our client gave up (a real read timeout).
    settings.QBO_REQUEST_TIMEOUT = 1
    qbo.faults(
        commit_then_timeout_rate=1.0,
        timeout_mode=timeout_mode,
        timeout_sleep_seconds=2,
        ignore_requestid=ignore_requestid,
    )
    customer = CustomerFactory(display_name="Lost Answer Freight")

    assert push(customer) == "retry"
    assert customer.create_uncertain and customer.next_retry_at is not None
    assert len(qbo.objects("Customer")) == 1  # the write did happen

    qbo.clear_faults()
    qbo.faults(ignore_requestid=ignore_requestid)
    Customer.objects.filter(pk=customer.pk).update(next_retry_at=timezone.now())

    assert push(customer) in {"synced", "linked"}
    assert len(qbo.objects("Customer")) == 1
    assert customer.qb_id == qbo.objects("Customer")[0]["Id"]
    assert not customer.create_uncertain


def test_5xx_waits_with_backoff_then_succeeds(qbo):
    qbo.faults(error_rate=1.0, error_style="gateway")
    customer = CustomerFactory()

    assert push(customer) == "retry"
    assert customer.sync_status == SyncStatus.RETRY_WAIT
    assert customer.attempts == 1 and customer.last_error_code == "500"

    qbo.clear_faults()
    Customer.objects.filter(pk=customer.pk).update(next_retry_at=timezone.now())
    assert push(customer) in {"synced", "linked"}
    assert len(qbo.objects("Customer")) == 1


def test_429_does_not_count_as_an_attempt_and_pauses_the_realm(qbo, settings):
    settings.QBO_THROTTLE_BACKOFF_SECONDS = 30
    qbo.faults(throttle_burst=2)
    customer = CustomerFactory()

    assert push(customer) == "retry"

    assert customer.attempts == 0
    assert customer.last_error_code == "3001"
    # The minute far from spent: the per-second window's accident, a short wait.
    wait = (customer.next_retry_at - customer.last_attempt_at).total_seconds()
    assert 1.5 <= wait <= 3
    assert 1 < ratelimit.paused_for(qbo.realm) <= 2

    time.sleep(ratelimit.paused_for(qbo.realm))
    assert push(customer) == "retry"  # again within the minute: the full backoff
    wait = (customer.next_retry_at - customer.last_attempt_at).total_seconds()
    assert 29 <= wait <= 31 and customer.attempts == 0


def test_an_expired_access_token_is_refreshed_once(qbo):
    customer = CustomerFactory()
    generation = qbo.connection.token_generation
    qbo.faults(expire_tokens=True)

    assert push(customer) == "synced"

    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    assert connection.token_generation == generation + 1
    assert connection.status == QuickBooksConnection.Status.CONNECTED


def test_invalid_grant_pauses_without_making_problems(qbo):
    customer = CustomerFactory()
    qbo.faults(expire_tokens=True, revoke_refresh_tokens=True)

    assert push(customer) == "waiting"

    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    assert connection.status == QuickBooksConnection.Status.NEEDS_RECONNECT
    assert customer.sync_status == SyncStatus.PENDING
    assert customer.attempts == 0 and customer.problem_reason == ""


def test_an_inactive_customer_in_quickbooks_is_a_plain_problem(qbo):
    code = mapped_code(qbo)
    invoice = invoice_with(code)
    invoice.customer.refresh_from_db()
    push(invoice.customer)
    invoice.customer.refresh_from_db()
    qbo_user = as_qbo_user(qbo)
    remote = qbo_user.read("Customer", invoice.customer.qb_id)
    qbo_user.update(
        "Customer",
        {"Id": remote["Id"], "SyncToken": remote["SyncToken"], "sparse": True, "Active": False},
        request_id="test-deactivate",
    )

    assert push(invoice) == "problem"

    assert invoice.problem_reason == "inactive_reference"
    assert invoice.last_error_code == "610"


def test_an_invoice_deleted_in_quickbooks_is_reported_on_update(qbo):
    code = mapped_code(qbo)
    invoice = invoice_with(code)
    push(invoice)
    remote = qbo.get("Invoice", invoice.qb_id)
    session = as_qbo_user(qbo)
    url = f"{session.client.api_url}/company/{session.realm}/invoice"
    import json

    session.call(
        "post",
        url,
        json.dumps({"Id": remote["Id"], "SyncToken": remote["SyncToken"]}),
        params={"operation": "delete"},
    )
    invoice = invoice_update(invoice=invoice, memo="changed after deletion")

    assert push(invoice) == "problem"

    assert invoice.problem_reason == "deleted_in_quickbooks"
    assert Decimal(invoice.total) > 0


def test_transient_failures_become_a_problem_after_the_attempt_budget(qbo, settings):
    settings.SYNC_MAX_ATTEMPTS = 2
    qbo.faults(error_rate=1.0, error_style="systemfault")
    customer = CustomerFactory()

    assert push(customer) == "retry"
    Customer.objects.filter(pk=customer.pk).update(next_retry_at=timezone.now())
    assert push(customer) == "problem"

    assert customer.problem_reason == "too_many_attempts"
    assert customer.last_error_code == "10000"
