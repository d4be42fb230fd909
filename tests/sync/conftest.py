"""Engine fixtures: the emulator on a live server, a connected company, a real Celery worker."""

import time
from dataclasses import dataclass

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings

from finance.services import company_get_default, finance_settings_get
from portpro_qb.celery import app as celery_app
from sync.selectors import connection_for_company
from sync.services.connection import connect_with_tokens


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
    return Emulator(sandbox_company, app, base, connection)


@pytest.fixture
def celery_worker(qbo):
    """A real Celery worker (threads) consuming the test broker on Redis."""
    celery_app.control.purge()
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        shutdown_timeout=30,
        loglevel="WARNING",
    ) as worker:
        yield worker


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, message: str = ""):
    """Poll until predicate() is truthy; the engine works asynchronously in the worker."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


assert django_settings  # imported for fixtures that patch settings in place
