"""Alerts fixtures: two tenants, members with e-mail, a local webhook receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts import services
from finance.models import Company, Membership
from finance.services import company_get_default
from sync.models import QuickBooksConnection
from tests.conftest import _user


@pytest.fixture
def tenant_a(db):
    return company_get_default()


@pytest.fixture
def tenant_b(db, tenant_a):
    return Company.objects.create(name="Bayou Drayage LLC")


def member(username, *companies, role=Membership.Role.FINANCE, email=True):
    user = _user(username, "Finance")
    if email:
        user.email = f"{username}@trucking.example"
        user.save(update_fields=["email"])
    for company in companies:
        Membership.objects.create(user=user, company=company, role=role)
    return user


@pytest.fixture
def both(tenant_a, tenant_b):
    """Finance in both tenants, opted in to both."""
    user = member("fiona", tenant_a, tenant_b)
    for company in (tenant_a, tenant_b):
        services.subscription_set(user=user, company=company, digest=True, immediate=True)
    return user


def connected(company, **fields):
    connection, _ = QuickBooksConnection.objects.update_or_create(
        company=company,
        defaults={
            "realm_id": f"realm-{company.pk}",
            "status": QuickBooksConnection.Status.CONNECTED,
            **fields,
        },
    )
    return connection


class Receiver:
    """A webhook endpoint on 127.0.0.1: what it was sent, and the status it answers."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status == 200 else b"invalid_token")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/s3cr3tKEY"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
