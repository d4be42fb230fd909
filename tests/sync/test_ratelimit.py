"""The shared budget per realm: one across processes without Redis, and never a sleeping task."""

import multiprocessing
import uuid

import pytest
from django.utils import timezone

from finance.models import Customer
from finance.syncstate import SyncStatus
from sync.models import SyncAttempt
from sync.services import engine, ratelimit
from sync.tasks import push_record
from tests.finance.factories import CustomerFactory
from tests.sync.conftest import wait_for


def _take_many(count, results):
    results.put(sum(1 for _ in range(count) if ratelimit.try_acquire("realm-x") == 0))


def test_without_redis_processes_share_one_budget(settings, tmp_path):
    # Without Redis every process used to have its own limiter: two workers sent 2 × 10/s.
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    settings.QBO_RATE_PER_SECOND = 10
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=_take_many, args=(8, results)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=30)

    granted = sum(results.get(timeout=5) for _ in processes)

    # 24 asked for within one second: the realm's 10 less the one kept as a margin for arrival
    # jitter (Intuit counts when a request arrives) given.
    assert granted == 9


def test_a_pause_after_429_is_seen_by_every_process(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    ratelimit.pause_realm("realm-y", 30)

    assert 29 < ratelimit.try_acquire("realm-y") <= 30
    assert 29 < ratelimit.paused_for("realm-y") <= 30
    assert ratelimit.try_acquire("realm-z") == 0  # other realms go on


@pytest.mark.parametrize("redis", [True, False], ids=["redis", "file"])
def test_a_429_pauses_briefly_only_when_our_minute_is_far_from_spent(settings, tmp_path, redis):
    # Sent one bunch too close (arrival jitter), a realm used to stop for the full backoff (60 s)
    # though the minute had room: 90 429s cost the bench 40 % of its throughput.
    if not redis:
        settings.REDIS_URL = ""
        settings.VAR_DIR = tmp_path
    settings.QBO_THROTTLE_BACKOFF_SECONDS = 60
    settings.QBO_RATE_PER_MINUTE = 20
    realm = f"realm-429-{uuid.uuid4().hex}"

    assert ratelimit.pause_after_throttle(realm, None) == ratelimit.SECOND_WINDOW_PAUSE_SECONDS
    assert 0 < ratelimit.paused_for(realm) <= ratelimit.SECOND_WINDOW_PAUSE_SECONDS
    # A second one soon after is no accident: the full backoff.
    assert ratelimit.pause_after_throttle(realm, None) == 60
    assert ratelimit.pause_after_throttle(realm, 7.0) == 7.0  # Intuit's Retry-After wins

    spent = f"{realm}-spent"
    settings.QBO_RATE_PER_SECOND = 100
    while ratelimit.try_acquire(spent) == 0:  # the minute's 20 sent
        pass
    assert ratelimit.pause_after_throttle(spent, None) == 60


@pytest.mark.django_db(transaction=True)
def test_a_spent_budget_reschedules_the_record_instead_of_waiting(qbo, settings):
    ratelimit.pause_realm(qbo.realm, 120)
    customer = CustomerFactory()

    outcome = engine.push_record(sync_type="customer", pk=customer.pk)

    customer.refresh_from_db()
    assert outcome == "retry" and customer.sync_status == SyncStatus.RETRY_WAIT
    assert 100 < (customer.next_retry_at - timezone.now()).total_seconds() <= 121
    assert customer.attempts == 0  # waiting for the budget is not a failed attempt
    assert not SyncAttempt.objects.filter(record_id=customer.pk).exists()  # nothing was sent


@pytest.mark.django_db(transaction=True)
def test_a_paused_realm_does_not_hold_the_worker(qbo, settings, celery_worker):
    # Before, each task slept in the limiter until the pause ended: with 3 worker processes,
    # 6 pushes kept the worker silent for the whole pause (no sweeps, no webhooks).
    ratelimit.pause_realm(qbo.realm, 120)
    customers = [CustomerFactory() for _ in range(6)]

    for customer in customers:
        push_record.delay("customer", customer.pk)

    wait_for(
        lambda: Customer.objects.filter(sync_status=SyncStatus.RETRY_WAIT).count() == 6,
        timeout=20,
        message="pushes did not come back from the paused realm",
    )
