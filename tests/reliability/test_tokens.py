"""Token rotation race: 8 concurrent workers, access tokens dying every 3 seconds, refresh
tokens rotating on each refresh → single-flight refresh, zero invalid_grant, no disconnect."""

import time

import pytest

from finance.models import Customer
from finance.syncstate import SyncStatus
from sync.models import QuickBooksConnection, SyncAttempt
from sync.tasks import push_record
from tests.reliability.conftest import customers_bulk, fast_engine, record_results, schedule_only
from tests.reliability.test_security import all_tokens

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

RECORDS = 400


def test_it_refreshes_without_invalid_grant_under_8_concurrent_workers(qbo, settings, workers):
    fast_engine(settings)
    schedule_only(qbo.connection.company)
    pks = customers_bulk(qbo.connection.company, RECORDS, "Token")
    generation = QuickBooksConnection.objects.get(pk=qbo.connection.pk).token_generation
    qbo.faults(expire_tokens_every_seconds=3)
    worker = workers.start(concurrency=8, name="tokens")
    started = time.monotonic()

    for pk in pks:  # single pushes: many requests, each one may meet a dead access token
        push_record.delay("customer", pk)
    deadline = started + 90
    synced = lambda: Customer.objects.filter(sync_status=SyncStatus.SYNCED).count()  # noqa: E731
    while synced() < RECORDS and time.monotonic() < deadline:
        time.sleep(0.5)
    duration = time.monotonic() - started

    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    worker.log.flush()
    worker_log = open(worker.log.name, encoding="utf-8", errors="replace").read()  # noqa: SIM115
    leaked = [t for t in all_tokens(qbo) if t in worker_log]
    figures = record_results(
        "tokens",
        {
            "records": RECORDS,
            "concurrency": 8,
            "refreshes": connection.token_generation - generation,
            "faults_401": SyncAttempt.objects.filter(http_status=401).count(),
            "waiting_attempts": SyncAttempt.objects.filter(outcome="waiting").count(),
            "status": connection.status,
            "synced": synced(),
            "duplicates": RECORDS
            - len({c["DisplayName"] for c in qbo.objects("Customer")})
            + len(qbo.objects("Customer"))
            - RECORDS,
            "tokens_issued": len(all_tokens(qbo)),
            "tokens_in_worker_log": len(leaked),
            "duration_s": round(duration, 1),
        },
    )
    assert figures["refreshes"] >= 2, figures  # tokens really did die during the run
    assert connection.status == QuickBooksConnection.Status.CONNECTED, connection.last_error
    assert figures["waiting_attempts"] == 0, figures  # never an invalid_grant pause
    assert figures["synced"] == RECORDS, figures
    assert not leaked  # the worker's log (INFO, every refresh in it) shows no token
