"""Shared fixtures: a TMS company, users per role, and (in tests/sync) the live emulator."""

import threading
import traceback

import pytest
import requests
from django.contrib.auth.models import Group, Permission, User
from django.core.servers import basehttp
from django.db import connections

from finance.services import company_get_default
from sync.roles import ensure_roles

_cleanup_headers = basehttp.ServerHandler.cleanup_headers


def _echo_connection_close(self):
    # python-quickbooks uploads with "Connection: close". Django's live server closes after the
    # answer without saying so (gunicorn, which serves `make demo`, and Intuit do say it), and
    # requests then reuses the dead socket for the next call now and then: RemoteDisconnected.
    asked_to_close = self.request_handler.close_connection
    _cleanup_headers(self)
    if asked_to_close:
        self.headers["Connection"] = "close"
        self.request_handler.close_connection = True


basehttp.ServerHandler.cleanup_headers = _echo_connection_close


@pytest.fixture
def company(db):
    return company_get_default()


def _user(username, *groups, **flags):
    # Transactional tests flush the tables, including the groups the migration created.
    ensure_roles(Group, Permission)
    user = User.objects.create_user(username=username, password="pw-" + username, **flags)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


@pytest.fixture
def finance_user(db):
    return _user("fiona", "Finance")


@pytest.fixture
def support_user(db):
    return _user("sam", "Support", is_staff=True)


@pytest.fixture
def outsider(db):
    return _user("olly")


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.com", "pw-root")


def _open_transactions() -> list[str]:
    """Database aliases this thread holds a transaction on (the test case's own excepted)."""
    return [
        conn.alias
        for conn in connections.all(initialized_only=True)
        if any(not block._from_testcase for block in conn.atomic_blocks)
    ]


@pytest.fixture(autouse=True)
def no_network_inside_transactions(monkeypatch):
    """Every HTTP call (python-quickbooks, intuit-oauth, webhooks, the emulator's deliveries)
    must happen outside a database transaction: on SQLite an open write transaction locks the
    whole file for the call's duration (the emulator answering it included), on PostgreSQL it
    keeps row locks across the network. Recorded, not only raised: callers may catch it."""
    violations: list[str] = []
    original = requests.Session.send

    def guarded_send(session, request, **kwargs):
        held = _open_transactions()
        if held:
            stack = "".join(traceback.format_stack(limit=14)[:-1])
            violations.append(
                f"{request.method} {request.url} inside a transaction on {held} "
                f"(thread {threading.current_thread().name}):\n{stack}"
            )
            raise AssertionError(violations[-1])
        return original(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", guarded_send)
    yield violations
    assert not violations, "network call inside a database transaction:\n" + violations[0]
