"""/healthz: what compose and operators probe (database and broker reachable)."""

import socket

import pytest

from portpro_qb.celery import app

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_port():
    # A port nothing listens on: bind, read the number, close.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_is_ok_with_the_configured_database_and_broker(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_fails_when_the_broker_is_down(client, closed_port):
    # The celery app read its config at import; point both broker URLs elsewhere for a moment.
    keys = ("broker_url", "broker_write_url", "CELERY_BROKER_TRANSPORT")
    original = {key: app.conf.get(key) for key in keys}
    # The embedded default names its own transport: point everything at a dead Redis.
    app.conf.update(
        broker_url=f"redis://127.0.0.1:{closed_port}/0",
        broker_write_url=f"redis://127.0.0.1:{closed_port}/0",
        CELERY_BROKER_TRANSPORT="redis",
    )
    try:
        response = client.get("/healthz")
    finally:
        app.conf.update(original)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["broker"].startswith("error")
    assert body["database"] == "ok"


def test_healthz_needs_no_login(client):
    # Why: compose's healthcheck has no session.
    assert client.get("/healthz").status_code == 200
