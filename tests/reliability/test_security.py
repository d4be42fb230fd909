"""Security: who may open what, CSRF on every POST, tokens never shown and encrypted at rest,
security headers, and `check --deploy` clean with production settings."""

import json
import logging
import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.db import connection as db
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from finance.models import Customer, Invoice
from finance.syncstate import SyncStatus
from sync.models import BulkJob, QuickBooksConnection, SyncAttempt
from sync.services import engine
from tests.finance.factories import ChargeCodeFactory, CustomerFactory
from tests.reliability.conftest import ROOT, console_log
from tests.sync.helpers import invoice_with

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

LOGIN = "login"
DENIED = "denied"
OK = "ok"


@pytest.fixture
def records(qbo):
    customer = CustomerFactory(display_name="Matrix Customer")
    code = ChargeCodeFactory()
    invoice = invoice_with(code, customer=customer)
    for model in (Customer, Invoice):
        model.objects.update(
            sync_status=SyncStatus.PROBLEM, problem_reason="internal", problem_since=timezone.now()
        )
    job = BulkJob.objects.create(action="resync", record_type="customer", total=0)
    return {"customer": customer, "invoice": invoice, "code": code, "job": job}


def routes(records) -> list[tuple[str, str, str, dict, str]]:
    """(label, method, url, data, who may use it): every URL name of sync/ and finance/.
    Disconnect comes last: it ends the session with QuickBooks the others use."""
    c, i, job = records["customer"], records["invoice"], records["job"]
    bulk = {"action": "resync", "type": "customer", "ids": [c.pk]}
    rows = [
        (f"action {a} {t}", "post", reverse("sync:record_action", args=[t, r.pk, a]), {}, "resolve")
        for t, r in (("customer", c), ("invoice", i))
        for a in (
            "resync",
            "clear",
            "undo-clear",
            "mark-paid",
            "sync-now",
            "overwrite",
            "accept-void",
            "accept",
            "check",
            "send-new",
        )
    ]
    return [
        ("problems", "get", reverse("sync:problems"), {}, "viewer"),
        ("waiting", "get", reverse("sync:waiting"), {}, "viewer"),
        ("not_syncing", "get", reverse("sync:not_syncing"), {}, "viewer"),
        ("resolved", "get", reverse("sync:resolved"), {}, "viewer"),
        ("reconciliation", "get", reverse("sync:reconciliation"), {}, "viewer"),
        ("reconciliation_refresh", "post", reverse("sync:reconciliation_refresh"), {}, "resolve"),
        ("reconciliation_acknowledge", "post", reverse("sync:reconciliation_acknowledge"),
         {"key": "only_in_quickbooks:payment:q1"}, "resolve"),
        ("customer_match", "get", reverse("sync:customer_match", args=[c.pk]), {}, "viewer"),
        ("customer_match choose", "post", reverse("sync:customer_match", args=[c.pk]),
         {"choice": "rename", "display_name": ""}, "resolve"),
        ("doc_number_match", "get", reverse("sync:doc_number_match", args=["invoice", i.pk]),
         {}, "viewer"),
        ("doc_number_match choose", "post",
         reverse("sync:doc_number_match", args=["invoice", i.pk]),
         {"choice": "renumber", "doc_number": ""}, "resolve"),
        ("resend_descriptions", "post", reverse("sync:resend_descriptions"), {}, "resolve"),
        ("detail", "get", reverse("sync:detail", args=["customer", c.pk]), {}, "viewer"),
        ("bulk_progress", "get", reverse("sync:bulk_progress", args=[job.pk]), {}, "viewer"),
        ("bulk", "post", reverse("sync:bulk"), bulk, "resolve"),
        *rows,
        ("connection", "get", reverse("sync:connection"), {}, "manage"),
        ("callback", "get", reverse("sync:callback"), {}, "manage"),
        ("reconnect", "get", reverse("sync:reconnect"), {}, "manage"),
        ("connect", "post", reverse("sync:connect"), {}, "manage"),
        ("connection_card", "get", reverse("sync:connection_card"), {}, "settings"),
        ("item_mapping", "get", reverse("sync:item_mapping"), {}, "settings"),
        ("item_map", "post", reverse("sync:item_map"), {"code": records["code"].pk,
                                                         "qb_id": "1"}, "settings"),
        ("items_create_missing", "post", reverse("sync:items_create_missing"), {}, "settings"),
        ("account_mapping", "get", reverse("sync:account_mapping"), {}, "settings"),
        ("account_map", "post", reverse("sync:account_map"), {"code": "1", "qb_id": "1"},
         "settings"),
        ("accounts_create_missing", "post", reverse("sync:accounts_create_missing"), {},
         "settings"),
        ("quickbooks", "get", reverse("finance:quickbooks"), {}, "settings"),
        ("description_preview", "post", reverse("finance:description_preview"),
         {"sample": i.pk, "desc-description_fields": ["container"]}, "settings"),
        ("home", "get", reverse("sync:home"), {}, "anyone"),
        ("tenant_switch", "post", reverse("finance:tenant_switch"), {"company": i.company_id},
         "signed in"),
        ("webhook (unsigned)", "post", reverse("sync:webhook"), {}, "signature"),
        ("disconnect", "post", reverse("sync:disconnect"), {}, "manage"),
    ]  # fmt: skip


ROLE_GRANTS = {
    "anonymous": set(),
    "outsider": set(),
    "finance": {"viewer", "resolve", "manage", "settings"},
    "support": {"viewer"},
    "superuser": {"viewer", "resolve", "manage", "settings"},
}


def expected(role: str, need: str) -> str:
    if need == "anyone":
        return OK
    if need == "signature":
        return DENIED  # no login asked, but no signature, no entry
    if role == "anonymous":
        return LOGIN
    if need == "signed in":  # a deployment of one company: everyone signed in works in it
        return OK
    return OK if need in ROLE_GRANTS[role] else DENIED


def outcome(response) -> str:
    if response.status_code == 302 and response["Location"].startswith(reverse(LOGIN)):
        return LOGIN
    if response.status_code == 403:
        return DENIED
    assert response.status_code < 500, response.content[:500]
    return OK


@pytest.mark.parametrize("role", list(ROLE_GRANTS))
def test_it_lets_each_role_reach_exactly_its_urls(
    qbo, records, role, request, finance_user, support_user, outsider, superuser
):
    client = Client()
    user = {"finance": finance_user, "support": support_user, "outsider": outsider,
            "superuser": superuser}.get(role)  # fmt: skip
    if user:
        client.force_login(user)

    got, want = {}, {}
    for label, method, url, data, need in routes(records):
        got[label] = outcome(getattr(client, method)(url, data))
        want[label] = expected(role, need)

    assert got == want


def test_it_covers_every_url_name_of_sync_and_finance(records):
    from django.urls import get_resolver

    covered = {r[2] for r in routes(records)}
    names = set()
    for ns in ("sync", "finance"):
        resolver = get_resolver().namespace_dict[ns][1]
        names |= {f"{ns}:{n}" for n in resolver.reverse_dict if isinstance(n, str)}
    resolved = {
        f"{m.namespace}:{m.url_name}" for m in (__import__("django.urls").urls.resolve(u)
                                                for u in covered)
    }  # fmt: skip
    assert names <= resolved, names - resolved  # a new URL needs a row in the matrix


def test_it_enforces_csrf_on_every_post_but_the_signed_webhook(qbo, records, superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    posts = [
        (label, url, data) for label, method, url, data, _ in routes(records) if method == "post"
    ]

    codes = {label: client.post(url, data).status_code for label, url, data in posts}

    assert codes.pop("webhook (unsigned)") == 403  # refused for its signature, not CSRF
    assert set(codes.values()) == {403}, codes
    body = b'[{"specversion":"1.0","id":"csrf-1","type":"qbo.customer.updated.v1",' \
           b'"intuitentityid":"1","intuitaccountid":"9341"}]'  # fmt: skip
    from tests.reliability.test_bad_input import signed

    signed_response = client.post(
        reverse("sync:webhook"), body, content_type="application/json",
        HTTP_INTUIT_SIGNATURE=signed(body),
    )  # fmt: skip
    assert signed_response.status_code == 200  # CSRF-exempt: Intuit has no CSRF token


def all_tokens(qbo) -> set[str]:
    """Every access and refresh token the emulator ever issued to our app, and ours now."""
    from qbo_sandbox.models import Token

    tokens = set()
    for access, refresh in Token.objects.filter(company=qbo.company).values_list(
        "access_token", "refresh_token"
    ):
        tokens |= {access, refresh}
    conn = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    return tokens | {conn.access_token, conn.refresh_token}


def test_it_never_shows_a_token_in_logs_admin_payloads_or_messages(qbo, superuser):
    qbo.faults(expire_tokens=True)  # the push below must refresh (rotate) the tokens
    customer = CustomerFactory(display_name="Secretive Freight")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)  # even debug lines, as a developer might run it
    try:
        with console_log() as log:
            assert engine.push_record(sync_type="customer", pk=customer.pk) == "synced"
    finally:
        root.setLevel(level)
    conn = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    assert conn.token_generation >= 2  # a refresh did happen
    client = Client()
    client.force_login(superuser)
    attempt = SyncAttempt.objects.first()
    pages = [
        client.get(reverse("admin:sync_quickbooksconnection_change", args=[conn.pk])),
        client.get(reverse("admin:sync_quickbooksconnection_changelist")),
        client.get(reverse("admin:sync_syncattempt_change", args=[attempt.pk])),
        client.get(reverse("finance:quickbooks")),
        client.get(reverse("sync:connection_card")),
    ]
    assert all(p.status_code == 200 for p in pages)
    haystacks = {
        "logs": log.getvalue(),
        "admin and pages": "".join(p.content.decode() for p in pages),
        "attempts": json.dumps(list(SyncAttempt.objects.values()), default=str),
        "messages": json.dumps(
            list(Customer.objects.values("last_error_message")) + [conn.last_error]
        ),
    }

    leaks = {where for where, text in haystacks.items() for t in all_tokens(qbo) if t in text}

    assert not leaks


def test_it_stores_tokens_encrypted(qbo):
    conn = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM sync_quickbooksconnection WHERE id = %s",
            [conn.pk],
        )
        raw_access, raw_refresh = cursor.fetchone()

    assert conn.access_token not in raw_access and conn.refresh_token not in raw_refresh
    key = Fernet(django_settings.FIELD_ENCRYPTION_KEY.split(",")[0].encode())
    assert key.decrypt(raw_access.encode()).decode() == conn.access_token
    assert key.decrypt(raw_refresh.encode()).decode() == conn.refresh_token


def test_it_sends_security_headers(client, finance_user):
    client.force_login(finance_user)

    response = client.get(reverse("sync:problems"))

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_it_passes_check_deploy_with_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TEST_", "QBO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portpro_qb.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(60)[:60],
            "SECURE_SSL_REDIRECT": "1",
            "SECURE_COOKIES": "1",
            "SECURE_HSTS_SECONDS": "31536000",
            "ALLOWED_HOSTS": "example.com",
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "VAR_DIR": str(tmp_path),
        }
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr and "?: (" not in result.stdout + result.stderr
