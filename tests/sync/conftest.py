"""Engine fixtures: the emulator on a live server, a connected company, a real Celery worker."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from finance.services import company_get_default, finance_settings_get
from portpro_qb.celery import app as celery_app
from sync.selectors import connection_for_company
from sync.services.connection import connect_with_tokens

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "var" / "test-logs"
LOG_DIR.mkdir(parents=True, exist_ok=True)


@dataclass
class Emulator:
    """The emulator company our TMS company is connected to, read directly for assertions."""

    company: object  # qbo_sandbox SandboxCompany
    app: object
    base_url: str
    connection: object

    @property
    def realm(self) -> str:
        return self.company.realm_id

    def objects(self, entity: str, include_deleted: bool = False) -> list[dict]:
        from qbo_sandbox import services

        return services.entity_list(
            company=self.company, entity_type=entity, include_deleted=include_deleted
        )

    def get(self, entity: str, qb_id) -> dict | None:
        from qbo_sandbox import services

        return services.entity_get(company=self.company, entity_type=entity, qbo_id=qb_id)

    def faults(self, **fields):
        from qbo_sandbox import services

        self.company = services.faults_set(company=self.company, **fields)
        return self.company

    def clear_faults(self):
        from qbo_sandbox import services

        self.company = services.faults_clear(company=self.company)


@pytest.fixture
def qbo(live_server, settings, transactional_db):
    """A TMS company connected (tokens, no browser) to a fresh emulator company."""
    from qbo_sandbox import services

    base = live_server.url + "/qbo-sandbox"
    settings.QBO_ENVIRONMENT = "local"
    settings.QBO_LOCAL_BASE_URL = base
    settings.QBO_REDIRECT_URI = live_server.url + "/quickbooks/callback/"
    settings.QBO_SANDBOX_THROTTLE_ENABLED = False
    settings.QBO_REQUEST_TIMEOUT = 5
    sandbox_company = services.company_create(name="Emulated Books")
    app = services.app_create(
        redirect_uris=[settings.QBO_REDIRECT_URI],
        webhook_url=live_server.url + "/quickbooks/webhook/",
        client_id=settings.QBO_CLIENT_ID,
        client_secret=settings.QBO_CLIENT_SECRET,
        verifier_token=settings.QBO_WEBHOOK_VERIFIER_TOKEN,
    )
    tokens = services.tokens_issue(app=app, company=sandbox_company)
    company = company_get_default()
    finance_settings_get(company=company)
    connection = connect_with_tokens(
        connection=connection_for_company(company=company),
        realm_id=tokens["realm_id"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        expires_in=tokens["expires_in"],
        company_name="Emulated Books",
    )
    yield Emulator(sandbox_company, app, base, connection)
    from qbo_sandbox import webhooks

    webhooks.stop()  # its delivery thread must not outlive the test database


# Settings a test may change that the worker process must see as well.
WORKER_SETTINGS = [
    "QBO_ENVIRONMENT", "QBO_LOCAL_BASE_URL", "QBO_REDIRECT_URI", "QBO_REQUEST_TIMEOUT",
    "QBO_THROTTLE_BACKOFF_SECONDS", "QBO_RATE_LIMIT_ENABLED", "QBO_RATE_PER_MINUTE",
    "QBO_RATE_PER_SECOND", "QBO_BATCH_RATE_PER_MINUTE", "SYNC_LEASE_SECONDS",
    "SYNC_MAX_ATTEMPTS", "SYNC_BATCH_SIZE", "SYNC_RETRY_BASE_SECONDS",
]  # fmt: skip


def worker_env(settings) -> dict:
    """The environment of a process that must see this test's database, broker and settings."""
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portpro_qb.settings_test",
            "TEST_DATABASE_URL": f"sqlite:///{db['NAME']}"
            if connection.vendor == "sqlite"
            else f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "TEST_REDIS_URL": settings.REDIS_URL,
            "TEST_BROKER_URL": settings.CELERY_BROKER_URL,
        }
    )
    for name in WORKER_SETTINGS:
        value = getattr(settings, name)
        env[name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return env


def start_worker_process(settings, *, concurrency: int = 3, log_name: str = "worker"):
    """`celery worker` as its own process on the test database and the test broker."""
    env = worker_env(settings)
    log = open(LOG_DIR / f"{log_name}-{os.getpid()}.log", "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portpro_qb", "worker", "-P", "prefork",
         "-c", str(concurrency), "-l", "INFO", "--without-mingle", "--without-gossip",
         "--without-heartbeat", "-n", f"{log_name}-{os.getpid()}@%h"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    process.log = log
    return process


def stop_worker_process(process, *, kill: bool = False):
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.log.close()


@pytest.fixture
def celery_worker(qbo, settings):
    """A real Celery worker process consuming the test broker on Redis."""
    celery_app.control.purge()
    process = start_worker_process(settings)
    yield process
    stop_worker_process(process)
    celery_app.control.purge()


@pytest.fixture
def beat(celery_worker):
    """Celery beat's sweep, on a compressed schedule (every 0.3 s instead of 15 s)."""
    import threading

    from sync.tasks import sweep_due

    stop = threading.Event()

    def tick():
        while not stop.wait(0.3):
            sweep_due.delay()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


def sync_states() -> dict:
    """Counts per type and status, for failure messages."""
    from django.db.models import Count

    from finance.registry import SYNCED_MODELS

    return {
        name: {
            (row["sync_status"], row["last_error_code"]): row["n"]
            for row in model.objects.values("sync_status", "last_error_code").annotate(
                n=Count("id")
            )
        }
        for name, model in SYNCED_MODELS.items()
    }


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, message: str = ""):
    """Poll until predicate() is truthy; the engine works asynchronously in the worker."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{message or 'condition not met'} within {timeout}s; sync states: {sync_states()}"
            )
        time.sleep(interval)


@pytest.fixture
def synced_invoice(qbo):
    """An invoice (and its item and customer) already in the emulator."""
    from finance.syncstate import SyncStatus
    from sync.services import engine
    from tests.finance.factories import ChargeCodeFactory
    from tests.sync.helpers import invoice_with

    code = ChargeCodeFactory()
    type(code).objects.filter(pk=code.pk).update(sync_status=SyncStatus.PENDING)
    engine.push_record(sync_type="item", pk=code.pk)
    invoice = invoice_with(code, lines=2)
    assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"
    invoice.refresh_from_db()
    invoice.customer.refresh_from_db()
    return invoice
