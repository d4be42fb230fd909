"""Reliability fixtures: fast engine settings, worker processes we can kill, a sweep thread,
and a results file per test (var/reliability/, git-ignored) that docs/reliability.md quotes."""

import io
import json
import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import close_old_connections, connections

from finance.models import Customer
from finance.services import finance_settings_get
from portpro_qb.celery import app as celery_app
from tests.sync.conftest import (  # noqa: F401 - fixtures shared with tests/sync
    beat,
    celery_worker,
    qbo,
    start_worker_process,
    stop_worker_process,
)

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "var" / "reliability"


def record_results(name: str, figures: dict) -> dict:
    """Write the figures of one run where docs/reliability.md can quote them, and print them."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    figures = {"test": name, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), **figures}
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
    print(f"\nRELIABILITY {name}: {json.dumps(figures, default=str)}")
    return figures


def fast_engine(settings, **overrides):
    """Engine settings for a compressed run: short leases and back-offs, no client limiter
    (the emulator's own limits are what a test turns on when it wants 429s)."""
    values = {
        "SYNC_LEASE_SECONDS": 5,
        "SYNC_RETRY_BASE_SECONDS": 1,
        "QBO_THROTTLE_BACKOFF_SECONDS": 1,
        "QBO_RATE_LIMIT_ENABLED": False,
        "QBO_REQUEST_TIMEOUT": 10,
    }
    values.update(overrides)
    for name, value in values.items():
        setattr(settings, name, value)


def schedule_only(company):
    """Pushes come from the sweep only, so a test decides when work starts."""
    fs = finance_settings_get(company=company)
    fs.push_on_change = False
    fs.save()


def customers_bulk(company, n: int, prefix: str) -> list[int]:
    """n PENDING customers in one INSERT (the factory's per-row service is too slow for 1,000)."""
    rows = [
        Customer(
            company=company,
            display_name=f"{prefix} {i:05d} Drayage LLC",
            billing_email=f"ap{i}@{prefix.lower().replace(' ', '-')}.example",
        )
        for i in range(n)
    ]
    Customer.objects.bulk_create(rows, batch_size=500)
    return list(
        Customer.objects.filter(display_name__startswith=prefix).values_list("pk", flat=True)
    )


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return found


def kill_worker_tree(process) -> int:
    """SIGKILL a worker and its prefork children by pid: a machine losing the worker outright."""
    pids = _children(process.pid)
    for pid in [process.pid, *pids]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    stop_worker_process(process, kill=True)
    return 1 + len(pids)


class Workers:
    """Worker processes started by one test, always stopped (children included) at the end."""

    def __init__(self, settings):
        self.settings = settings
        self.processes: list = []

    def start(self, *, concurrency: int = 2, name: str = "rel-worker"):
        process = start_worker_process(self.settings, concurrency=concurrency, log_name=name)
        self.processes.append(process)
        return process

    def kill(self, process) -> None:
        kill_worker_tree(process)
        self.processes.remove(process)

    def stop_all(self) -> None:
        for process in list(self.processes):
            children = _children(process.pid)
            stop_worker_process(process)
            for pid in children:  # a child the parent's SIGTERM did not reap in time
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.processes.clear()


@pytest.fixture
def workers(request, settings):
    """Start worker processes yourself (after changing settings): workers.start()."""
    request.getfixturevalue("qbo")
    celery_app.control.purge()
    pool = Workers(settings)
    yield pool
    pool.stop_all()
    celery_app.control.purge()


class Sweeper:
    """Celery beat's job in a thread of the test: dispatch_due every `every` seconds.
    It runs here rather than in a worker so a killed worker never takes the schedule with it."""

    def __init__(self, every: float = 0.5):
        self.every = every
        self.stop_event = threading.Event()
        self.runs = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        from sync.services.sweep import dispatch_due

        try:
            while not self.stop_event.wait(self.every):
                try:
                    dispatch_due()
                    self.runs += 1
                except Exception as exc:  # noqa: BLE001 - a broker restart: try next tick
                    self.errors.append(f"{exc.__class__.__name__}: {exc}")
                    close_old_connections()
        finally:
            connections.close_all()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=30)


@pytest.fixture
def sweeper(request):
    request.getfixturevalue("qbo")
    sweeps = Sweeper()
    yield sweeps
    sweeps.stop()


@contextmanager
def console_log():
    """What the configured log handlers print (after their redaction filter), as a StringIO."""
    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    old = [h.setStream(buffer) for h in handlers]
    try:
        yield buffer
    finally:
        for handler, stream in zip(handlers, old, strict=True):
            handler.setStream(stream)


@pytest.fixture
def roles(db):
    """Finance and Support groups (transactional flushes drop the ones the migration made)."""
    from django.contrib.auth.models import Group, Permission

    from sync.roles import ensure_roles

    ensure_roles(Group, Permission)
