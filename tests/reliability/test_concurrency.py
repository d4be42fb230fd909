"""Concurrent humans: one record re-synced from two requests at once, and re-sync racing the
beat sweep → exactly one QuickBooks write per record."""

import threading

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from finance.models import Customer
from finance.syncstate import SyncStatus
from sync.models import SyncAttempt
from tests.reliability.conftest import customers_bulk, record_results, schedule_only
from tests.sync.conftest import wait_for

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def as_problems(pks):
    Customer.objects.filter(pk__in=pks).update(
        sync_status=SyncStatus.PROBLEM,
        problem_reason="internal",
        problem_since=timezone.now(),
        attempts=8,
    )


def resync_at_once(user, pks, copies: int = 2) -> list[int]:
    """`copies` browsers press Re-sync on each record at the same moment."""
    barrier = threading.Barrier(copies)
    codes: list[int] = []

    def browser():
        client = Client()
        client.force_login(user)
        try:
            for pk in pks:
                url = reverse("sync:record_action", args=["customer", pk, "resync"])
                barrier.wait(timeout=10)
                codes.append(client.post(url).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=browser) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def one_write_each(qbo, pks) -> dict:
    writes = {
        pk: SyncAttempt.objects.filter(record_id=pk, record_type="customer", outcome="ok").count()
        for pk in pks
    }
    remote = [o for o in qbo.objects("Customer") if o["DisplayName"].startswith("Twice")]
    return {
        "records": len(pks),
        "max_writes_per_record": max(writes.values()),
        "min_writes_per_record": min(writes.values()),
        "qbo_objects": len(remote),
    }


def test_it_writes_once_when_two_browsers_resync_the_same_record(qbo, celery_worker, finance_user):
    schedule_only(qbo.connection.company)
    pks = customers_bulk(qbo.connection.company, 10, "Twice A")
    as_problems(pks)

    codes = resync_at_once(finance_user, pks)

    assert set(codes) == {302}  # both requests were accepted (PENDING → PENDING is allowed)
    wait_for(lambda: Customer.objects.filter(sync_status=SyncStatus.SYNCED).count() == 10)
    figures = record_results("concurrency-two-browsers", one_write_each(qbo, pks))
    # The conditional claim lets one push through; the other finds nothing to claim.
    assert figures["max_writes_per_record"] == 1 and figures["qbo_objects"] == 10, figures


def test_it_writes_once_when_a_resync_races_the_sweep(qbo, beat, finance_user):
    schedule_only(qbo.connection.company)
    pks = customers_bulk(qbo.connection.company, 10, "Twice B")
    as_problems(pks)

    codes = resync_at_once(finance_user, pks)  # while beat sweeps every 0.3 s

    assert set(codes) == {302}
    wait_for(lambda: Customer.objects.filter(sync_status=SyncStatus.SYNCED).count() == 10)
    figures = record_results("concurrency-resync-vs-sweep", one_write_each(qbo, pks))
    assert figures["max_writes_per_record"] == 1 and figures["qbo_objects"] == 10, figures
