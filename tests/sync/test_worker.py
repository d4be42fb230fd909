"""With a real Celery worker on Redis: push on change, sweeps in batches, no double pushes."""

import threading
from collections import Counter

import pytest

from finance.models import ChargeCode, Customer, Invoice
from finance.services import customer_create, finance_settings_get
from finance.syncstate import SyncStatus
from sync.models import QuickBooksConnection, SyncAttempt
from sync.services import batch, engine
from sync.tasks import push_record, sweep_due
from tests.finance.factories import ChargeCodeFactory, CustomerFactory
from tests.sync.conftest import wait_for
from tests.sync.helpers import invoice_with

pytestmark = pytest.mark.django_db(transaction=True)


def all_synced(model, n):
    return lambda: model.objects.filter(sync_status=SyncStatus.SYNCED).count() == n


def mapped_codes(n):
    codes = [ChargeCodeFactory() for _ in range(n)]
    ChargeCode.objects.update(sync_status=SyncStatus.PENDING)
    batch.push_batch(sync_type="item", pks=[c.pk for c in codes])
    return list(ChargeCode.objects.all())


def test_a_new_customer_is_pushed_on_commit(qbo, celery_worker):
    customer = customer_create(company=qbo.connection.company, display_name="Push On Change Co")

    wait_for(all_synced(Customer, 1), message="the worker did not push the new customer")

    customer.refresh_from_db()
    assert qbo.get("Customer", customer.qb_id)["DisplayName"] == "Push On Change Co"


def test_push_on_change_off_leaves_it_to_the_schedule(qbo, celery_worker):
    fs = finance_settings_get(company=qbo.connection.company)
    fs.push_on_change = False
    fs.save()
    customer = customer_create(company=qbo.connection.company, display_name="Scheduled Only")

    sweep_due.delay()

    wait_for(all_synced(Customer, 1))
    assert SyncAttempt.objects.filter(record_id=customer.pk, outcome="ok").count() == 1


def test_the_sweep_pushes_invoices_in_batches_after_their_customers(qbo, celery_worker):
    fs = finance_settings_get(company=qbo.connection.company)
    fs.push_on_change = False
    fs.save()
    codes = mapped_codes(3)
    customers = [CustomerFactory() for _ in range(4)]
    invoices = [invoice_with(codes[i % 3], customer=customers[i % 4]) for i in range(64)]

    sweep_due.delay()

    wait_for(all_synced(Invoice, len(invoices)), timeout=60, message="invoices not all synced")
    remote = qbo.objects("Invoice")
    doc_numbers = Counter(obj["DocNumber"] for obj in remote)
    assert len(remote) == 64 and max(doc_numbers.values()) == 1  # none duplicated
    batched = SyncAttempt.objects.filter(record_type="invoice", outcome="ok", operation="create")
    assert batched.count() == 64
    assert len(qbo.objects("Customer")) == 4


def test_a_batch_records_each_accepted_write_before_the_record_shows_synced(qbo, monkeypatch):
    # Someone watching (the page, a test, a crash between two steps) never sees a record synced
    # by a batch whose QuickBooks write has no audit row.
    codes = mapped_codes(2)
    invoices = [invoice_with(codes[i % 2], customer=CustomerFactory()) for i in range(3)]
    for invoice in invoices:  # their customers first: the batch below holds invoices only
        engine.push_record(sync_type="customer", pk=invoice.customer_id)
    audited_at_settle = []
    real_settle_ok = batch.settle_ok

    def settle_ok(claim, obj, **kwargs):
        audited_at_settle.append(
            SyncAttempt.objects.filter(
                record_type="invoice", record_id=claim.record.pk, outcome="ok"
            ).exists()
        )
        return real_settle_ok(claim, obj, **kwargs)

    monkeypatch.setattr(batch, "settle_ok", settle_ok)

    outcomes = batch.push_batch(sync_type="invoice", pks=[i.pk for i in invoices])

    assert outcomes["synced"] == 3
    assert audited_at_settle == [True, True, True]


def test_two_workers_never_push_one_record(qbo, celery_worker):
    fs = finance_settings_get(company=qbo.connection.company)
    fs.push_on_change = False
    fs.save()
    customer = CustomerFactory(display_name="Contended Cargo")
    outcomes = []

    def push():
        outcomes.append(engine.push_record(sync_type="customer", pk=customer.pk))

    threads = [threading.Thread(target=push) for _ in range(6)]
    for _ in range(4):
        push_record.delay("customer", customer.pk)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(all_synced(Customer, 1))

    assert len(qbo.objects("Customer")) == 1
    assert SyncAttempt.objects.filter(record_id=customer.pk, outcome="ok").count() == 1


def test_429_bursts_end_with_everything_synced(qbo, settings, request):
    settings.QBO_THROTTLE_BACKOFF_SECONDS = 1
    request.getfixturevalue("beat")  # the worker starts with the setting above
    fs = finance_settings_get(company=qbo.connection.company)
    fs.push_on_change = False
    fs.save()
    qbo.faults(throttle_burst=4)
    for _ in range(40):
        CustomerFactory()

    sweep_due.delay()

    wait_for(all_synced(Customer, 40), timeout=60)
    assert Customer.objects.filter(sync_status=SyncStatus.PROBLEM).count() == 0
    assert SyncAttempt.objects.filter(fault_code="3001").exists()
    assert len(qbo.objects("Customer")) == 40


def test_token_expiry_mid_run_refreshes_once(qbo, celery_worker, beat):
    # 30 pushes at once overrun the 10/s budget: the limiter reschedules the rest (no worker
    # sleeps on it) and the sweep brings them back, as beat does in production.
    fs = finance_settings_get(company=qbo.connection.company)
    fs.push_on_change = False
    fs.save()
    for _ in range(30):
        CustomerFactory()
    generation = QuickBooksConnection.objects.get(pk=qbo.connection.pk).token_generation
    qbo.faults(expire_tokens=True)

    for pk in Customer.objects.values_list("pk", flat=True):
        push_record.delay("customer", pk)

    wait_for(all_synced(Customer, 30), timeout=60)
    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    assert connection.token_generation == generation + 1
    assert connection.status == QuickBooksConnection.Status.CONNECTED
