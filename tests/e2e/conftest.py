"""Browser tests: Playwright (sync API) driving Debian chromium against pytest-django's live_server.

Playwright's sync API runs an event loop in this thread, so Django's async-safety check must be
relaxed for the ORM calls the tests make while a page is open.
"""

import importlib
import os
import shutil
import threading
from pathlib import Path

import pytest

from sync.roles import ensure_roles

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


# The data migrations that add beat jobs (each has a JOBS list of (name, task, seconds)).
BEAT_MIGRATIONS = (
    "sync.migrations.0003_beat_schedule",
    "sync.migrations.0011_reconciliation",
    "alerts.migrations.0002_beat_schedule",
)


def restore_migration_rows():
    """Rows the data migrations wrote (role groups, beat schedule), which a live_server flush
    removes: the same grants as sync/migrations/0002_roles.py and jobs as BEAT_MIGRATIONS."""
    from django.contrib.auth.models import Group, Permission
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    ensure_roles(Group, Permission)
    for module in BEAT_MIGRATIONS:
        for name, task, seconds in importlib.import_module(module).JOBS:
            every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
            PeriodicTask.objects.get_or_create(
                name=name, defaults={"task": task, "interval": every, "enabled": True}
            )


@pytest.fixture(autouse=True)
def roles(transactional_db):
    restore_migration_rows()


@pytest.fixture(autouse=True, scope="session")
def restore_after_flushes(django_db_setup, django_db_blocker):
    """Leave a reused test database as migrations made it (`--reuse-db` runs after this one)."""
    yield
    with django_db_blocker.unblock():
        from django.db import connection

        # Reliability tests terminate database connections on purpose: start from a fresh one.
        connection.close()
        restore_migration_rows()


@pytest.fixture
def bulk_in_thread(monkeypatch):
    """Run bulk jobs in a background thread of this process, as a worker would."""
    from django.db import connection

    from sync.services import actions
    from sync.tasks import run_bulk_job

    threads = []

    def run(job_id):
        try:
            actions.bulk_run(job_id=job_id)
        finally:
            connection.close()

    def delay(job_id):
        thread = threading.Thread(target=run, args=(job_id,), daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(run_bulk_job, "delay", delay)
    yield
    for thread in threads:
        thread.join(timeout=10)


@pytest.fixture
def login(page, live_server):
    def do(user):
        page.goto(live_server.url + "/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "pw-" + user.username)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login" not in url)
        return page

    return do


def screenshot(page, name: str, *, docs_name: str | None = None) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    # The README's copies under docs/ are refreshed only on request, so `make test` leaves the
    # tree clean: UPDATE_DOCS_SCREENSHOTS=1 pytest tests/e2e
    if docs_name and (os.environ.get("UPDATE_DOCS_SCREENSHOTS") or not (DOCS / docs_name).exists()):
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / docs_name)
    return path


# The engine fixtures (emulator on the live server, a connected company, a real Celery worker)
# are the sync tests' own; re-exported here for the end-to-end flows.
from tests.sync.conftest import celery_worker, qbo, wait_for  # noqa: E402, F401


@pytest.fixture
def sandbox_app(live_server, settings, transactional_db):
    """An emulator company and an app registered for our callback, not connected yet."""
    from qbo_sandbox import services

    settings.QBO_ENVIRONMENT = "local"
    settings.QBO_LOCAL_BASE_URL = live_server.url + "/qbo-sandbox"
    settings.QBO_REDIRECT_URI = live_server.url + "/quickbooks/callback/"
    settings.QBO_SANDBOX_THROTTLE_ENABLED = False
    sandbox_company = services.company_create(name="Consent Books")
    services.app_create(
        redirect_uris=[settings.QBO_REDIRECT_URI],
        webhook_url=live_server.url + "/quickbooks/webhook/",
        client_id=settings.QBO_CLIENT_ID,
        client_secret=settings.QBO_CLIENT_SECRET,
        verifier_token=settings.QBO_WEBHOOK_VERIFIER_TOKEN,
    )
    return sandbox_company


def taken_in(predicate, *, timeout: float = 40, message: str = ""):
    """Wait until a change made in QuickBooks has reached the TMS the way it does in the
    product: the emulator's webhook is stored, and beat's webhook pass (here every second)
    decides it and runs the change pull it asks for."""
    import time

    from sync.tasks import process_webhooks

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process_webhooks.delay()
        if wait_for_quietly(predicate, 1.0):
            return
    raise AssertionError(message or "the change made in QuickBooks never reached the TMS")


def wait_for_quietly(predicate, seconds: float) -> bool:
    import time

    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if predicate():
            return True
        time.sleep(0.1)
    return False
