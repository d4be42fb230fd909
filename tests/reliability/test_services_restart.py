"""Redis (broker, locks, rate limiter) restarted mid-run, and PostgreSQL connections dropped
mid-run → workers recover and nothing is lost.

Redis: the test starts its own redis-server on a spare port, kills it (SIGKILL, no persistence:
every queued task is gone) and starts it again. PostgreSQL: the machine's shared server is
never touched; the test drops every connection to *its own* test database at once
(pg_terminate_backend), which is what a restart looks like from the workers' side.
"""

import socket
import subprocess
import time

import pytest
import redis
from django.db import connection as db

from finance.models import Customer
from finance.syncstate import SyncStatus
from portpro_qb.celery import app as celery_app
from tests.reliability.conftest import customers_bulk, fast_engine, record_results, schedule_only

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

RECORDS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    def __init__(self, port: int):
        self.port, self.process = port, None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(settings):
    server = PrivateRedis(free_port())
    server.start()
    old = celery_app.conf.broker_write_url
    settings.REDIS_URL = f"redis://127.0.0.1:{server.port}/0"
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{server.port}/1"

    def use(url):  # this process's producer pool follows the broker too
        celery_app.conf.broker_url = celery_app.conf.broker_write_url = url
        celery_app.conf.broker_read_url = url
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    use(settings.CELERY_BROKER_URL)
    yield server
    use(old)
    server.kill()


def wait_synced(deadline) -> int:
    while time.monotonic() < deadline:
        done = Customer.objects.filter(sync_status=SyncStatus.SYNCED).count()
        if done == RECORDS:
            return done
        time.sleep(0.3)
    return Customer.objects.filter(sync_status=SyncStatus.SYNCED).count()


def test_it_recovers_when_redis_restarts_mid_run(qbo, settings, private_redis, workers, sweeper):
    fast_engine(settings)
    schedule_only(qbo.connection.company)
    qbo.faults(latency_ms=40)  # long enough a run to restart Redis in the middle of it
    customers_bulk(qbo.connection.company, RECORDS, "Restart R")
    workers.start(concurrency=2, name="redis-restart")
    started = time.monotonic()
    sweeper.start()

    while Customer.objects.filter(sync_status=SyncStatus.SYNCED).count() < 30:
        assert time.monotonic() - started < 60, "nothing synced before the restart"
        time.sleep(0.1)
    before = Customer.objects.filter(sync_status=SyncStatus.SYNCED).count()
    private_redis.kill()  # queued tasks, locks and rate-limit buckets: all gone
    time.sleep(2)
    private_redis.start()
    done = wait_synced(started + 90)
    duration = time.monotonic() - started

    names = [o["DisplayName"] for o in qbo.objects("Customer") if "Restart R" in o["DisplayName"]]
    figures = record_results(
        "redis-restart",
        {
            "records": RECORDS,
            "synced_before_restart": before,
            "redis_down_s": 2,
            "sweeps_failed_while_down": len(sweeper.errors),
            "synced": done,
            "duplicates": len(names) - len(set(names)),
            "lost": RECORDS - len(set(names)),
            "duration_s": round(duration, 1),
        },
    )
    assert before < RECORDS  # the restart really was mid-run
    assert done == RECORDS and figures["duplicates"] == 0 and figures["lost"] == 0, figures


def test_it_recovers_when_database_connections_drop_mid_run(qbo, settings, workers, sweeper):
    fast_engine(settings)
    schedule_only(qbo.connection.company)
    qbo.faults(latency_ms=40)
    customers_bulk(qbo.connection.company, RECORDS, "Restart P")
    workers.start(concurrency=2, name="pg-drop")
    started = time.monotonic()
    sweeper.start()

    while Customer.objects.filter(sync_status=SyncStatus.SYNCED).count() < 30:
        assert time.monotonic() - started < 60, "nothing synced before the drop"
        time.sleep(0.1)
    before = Customer.objects.filter(sync_status=SyncStatus.SYNCED).count()
    dropped = 0
    for _ in range(3):  # three times, a second apart, like a restart and its aftershocks
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            dropped += cursor.fetchone()[0]
        time.sleep(1)
    done = wait_synced(started + 90)
    duration = time.monotonic() - started

    names = [o["DisplayName"] for o in qbo.objects("Customer") if "Restart P" in o["DisplayName"]]
    figures = record_results(
        "postgres-connections-dropped",
        {
            "records": RECORDS,
            "synced_before_drop": before,
            "connections_dropped": dropped,
            "synced": done,
            "duplicates": len(names) - len(set(names)),
            "lost": RECORDS - len(set(names)),
            "duration_s": round(duration, 1),
        },
    )
    assert dropped > 0 and before < RECORDS
    assert done == RECORDS and figures["duplicates"] == 0 and figures["lost"] == 0, figures


def test_postgresql_server_restart():
    pytest.skip(
        "A real PostgreSQL restart needs a private cluster (initdb + pg_ctl as the postgres "
        "user on a spare port) hosting the test database, the live server and the workers; "
        "not built in this round. Covered in part by the dropped-connections test above; "
        "see docs/reliability.md."
    )
