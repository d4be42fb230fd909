"""Tenants share the workers fairly: a backfill holds only its tenant's share of the queue, a
finished batch refills that share at once, and a tenant whose QuickBooks budget is spent is
handed nothing (and its records already queued are given back without being claimed)."""

import uuid

import pytest

from finance.models import Customer
from finance.services import tenant_ensure
from finance.syncstate import SyncStatus, move
from sync.models import SyncAttempt
from sync.selectors import connection_for_company
from sync.services import batch, enqueue, ratelimit, sweep
from sync.services.connection import connect_with_tokens
from tests.finance.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The tasks handed to the broker, in order: (task name, sync type, pks)."""
    tasks: list[tuple] = []
    monkeypatch.setattr(enqueue, "_send", lambda *args, **kw: tasks.append(args) or True)
    return tasks


@pytest.fixture
def two_tenants(company, settings, sent):
    settings.SYNC_REALM_QUEUE_LIMIT = 60
    settings.SYNC_BATCH_SIZE = 30
    other, _ = tenant_ensure(name="Bayou Drayage LLC")
    for tenant in (company, other):
        connect_with_tokens(
            connection=connection_for_company(company=tenant),
            realm_id=f"9{uuid.uuid4().int % 10**12}",  # its own fresh rate-limit budget
            access_token="a",
            refresh_token="r",
        )
    backfill = [CustomerFactory(company=company).pk for _ in range(100)]
    sent.clear()
    return company, other, backfill


def queued_pks(sent, task="push_batch") -> list[int]:
    return [pk for name, _type, pks in (t for t in sent if t[0] == task) for pk in pks]


def test_a_backfill_holds_only_its_share_and_another_tenants_record_goes_at_once(two_tenants, sent):
    company, other, backfill = two_tenants

    assert sweep.dispatch_due() == {"customer": 60}
    assert len(queued_pks(sent)) == 60 and set(queued_pks(sent)) <= set(backfill)
    assert sweep.queued_count(company) == 60

    newcomer = CustomerFactory(company=other)
    sent.clear()
    assert sweep.dispatch_due() == {"customer": 1}  # the backfill's share is full; B's goes
    assert sent == [("push_record", "customer", newcomer.pk)]


def test_a_finished_batch_refills_its_tenants_share_without_waiting_for_the_beat(two_tenants, sent):
    company, _, backfill = two_tenants
    sweep.dispatch_due()
    first = queued_pks(sent)[:30]
    move(Customer.objects.filter(pk__in=first), SyncStatus.IN_FLIGHT, how="test")
    move(Customer.objects.filter(pk__in=first), SyncStatus.SYNCED, how="test")
    sent.clear()

    sweep.after_batch(sync_type="customer", pks=first, outcomes={"synced": 30})

    refilled = queued_pks(sent)
    assert len(refilled) == 30 and not set(refilled) & set(first)
    assert sweep.queued_count(company) == 60


def test_a_spent_budget_hands_its_tenant_nothing_and_costs_no_claims(two_tenants, sent, settings):
    company, other, backfill = two_tenants
    sweep.dispatch_due()
    realm = connection_for_company(company=company).realm_id
    settings.QBO_BATCH_RATE_PER_MINUTE, settings.QBO_RATE_PER_MINUTE = 1, 2
    assert ratelimit.try_acquire(realm, "batch") == 0 and ratelimit.try_acquire(realm) == 0
    assert ratelimit.write_wait(realm) > 50  # both budgets spent for about a minute

    queued = queued_pks(sent)[:30]
    outcomes = batch.push_batch(sync_type="customer", pks=queued)

    assert outcomes == {"deferred": 30}
    assert SyncAttempt.objects.filter(record_id__in=queued).count() == 0  # nothing sent
    deferred = Customer.objects.filter(pk__in=queued)
    assert {c.sync_status for c in deferred} == {SyncStatus.PENDING}
    assert all(c.attempts == 0 for c in deferred)
    newcomer = CustomerFactory(company=other)
    sent.clear()
    assert sweep.dispatch_due() == {"customer": 1}  # the spent tenant is handed nothing
    assert sent == [("push_record", "customer", newcomer.pk)]


def test_idle_tenants_cost_the_sweep_no_questions(company, settings, sent):
    """At a thousand tenants, most have nothing due at any sweep: asking each for its connection,
    settings, share and five types of due records would be the sweep's whole cost."""
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    from finance.services import finance_settings_get, finance_settings_update

    def connected_tenant(name):
        tenant, _ = tenant_ensure(name=name)
        connect_with_tokens(
            connection=connection_for_company(company=tenant),
            realm_id=f"9{uuid.uuid4().int % 10**12}",
            access_token="a",
            refresh_token="r",
        )
        return tenant

    def sweep_queries():
        with CaptureQueriesContext(db) as queries:
            dispatched = sweep.dispatch_due()
        return len(queries), dispatched

    busy = connected_tenant("Busy Drayage")
    CustomerFactory(company=busy)
    for n in range(3):
        connected_tenant(f"Idle Carrier {n}")
    few_idle, dispatched = sweep_queries()
    assert dispatched == {"customer": 1}
    CustomerFactory(company=busy)
    for n in range(3, 12):
        connected_tenant(f"Idle Carrier {n}")
    many_idle, dispatched = sweep_queries()
    assert dispatched == {"customer": 1} and many_idle == few_idle

    # A tenant syncing on a schedule is visited anyway: its clock ticks with nothing due.
    scheduled = connected_tenant("Scheduled Cartage")
    finance_settings_update(
        settings_row=finance_settings_get(company=scheduled),
        fields={"push_on_change": False},
        user=None,
    )
    assert scheduled in sweep.tenants_to_visit()
    assert busy not in sweep.tenants_to_visit()  # its customers are queued, none due
    sweep.dispatch_due()
    assert connection_for_company(company=scheduled).last_scheduled_at is not None
