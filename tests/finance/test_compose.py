"""docker-compose.yml cannot run here: check it stays consistent with the settings instead."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def settings_vars():
    text = (ROOT / "portpro_qb" / "settings.py").read_text()
    return set(re.findall(r"""\benv(?:_bool|_int|_float)?\(\s*["']([A-Z0-9_]+)["']""", text))


def _command(service) -> str:
    command = service["command"]
    return " ".join(command) if isinstance(command, list) else command


def test_all_services_exist(compose):
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(compose["services"])


@pytest.mark.parametrize("name", ["web", "worker", "postgres", "redis"])
def test_long_running_services_have_a_healthcheck(compose, name):
    assert compose["services"][name]["healthcheck"]["test"]


def test_postgres_and_redis_healthchecks_use_their_own_probes(compose):
    services = compose["services"]
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli" in str(services["redis"]["healthcheck"]["test"])


def test_web_probes_healthz(compose):
    assert "/healthz" in str(compose["services"]["web"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_variable_is_read_by_settings(compose, settings_vars, name):
    env = compose["services"][name]["environment"]
    # Why: a variable settings never reads is a silent misconfiguration in production.
    assert set(env) - settings_vars == set()


def test_every_substituted_variable_is_read_by_settings(settings_vars):
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert used and used - settings_vars == set()


@pytest.mark.parametrize(
    "name",
    [
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "REDIS_URL",
        "SECRET_KEY",
        "DEBUG",
        "ALLOWED_HOSTS",
        "FIELD_ENCRYPTION_KEY",
        "QBO_ENVIRONMENT",
        "QBO_LOCAL_BASE_URL",
        "QBO_CLIENT_ID",
        "QBO_CLIENT_SECRET",
        "QBO_REDIRECT_URI",
        "QBO_WEBHOOK_VERIFIER_TOKEN",
        "QBO_SANDBOX_ENABLED",
    ],
)
def test_the_design_variables_reach_every_app_service(compose, name):
    for service in APP_SERVICES:
        assert name in compose["services"][service]["environment"], service


def test_app_services_point_at_the_compose_postgres_and_redis(compose):
    env = compose["services"]["web"]["environment"]
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["CELERY_BROKER_URL"].startswith("${CELERY_BROKER_URL:-redis://redis:6379/")


def test_web_migrates_then_runs_gunicorn(compose):
    command = _command(compose["services"]["web"])
    assert command.index("migrate") < command.index("gunicorn portpro_qb.wsgi")


def test_worker_runs_a_celery_worker(compose):
    assert "celery -A portpro_qb worker" in _command(compose["services"]["worker"])


def test_beat_uses_the_database_scheduler(compose):
    command = _command(compose["services"]["beat"])
    assert "celery -A portpro_qb beat" in command
    assert "django_celery_beat.schedulers:DatabaseScheduler" in command


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_dependencies(compose, name):
    depends = compose["services"][name]["depends_on"]
    assert all(dep["condition"] == "service_healthy" for dep in depends.values())


def test_dockerfile_installs_requirements_and_collects_static():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("FROM python:3.11-slim")
    assert "pip install -r requirements.txt" in text and "collectstatic" in text


def test_worker_and_beat_reach_the_emulator_on_web_loopback(compose):
    # Plain-HTTP OAuth is only allowed to a loopback emulator (settings.py).
    for name in ("worker", "beat"):
        assert compose["services"][name]["network_mode"] == "service:web"
