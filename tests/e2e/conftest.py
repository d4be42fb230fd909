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


@pytest.fixture(autouse=True)
def roles(transactional_db):
    """live_server flushes the tables between tests, data migrations included: put the role
    groups back (same grants as sync/migrations/0002_roles.py)."""
    from django.contrib.auth.models import Group, Permission

    roles_migration = importlib.import_module("sync.migrations.0002_roles")
    for name, grants in (
        ("Finance", roles_migration.FINANCE),
        ("Support", roles_migration.SUPPORT),
    ):
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codenames in grants.items():
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label, codename__in=codenames
                )
            )


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
    if docs_name:
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / docs_name)
    return path
