"""The real stack for the benchmarks: own PostgreSQL database, Redis dbs 13/14, gunicorn, Celery.

Everything is configured through environment variables, exactly as in production.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / "var" / "bench-logs"

DB_NAME = os.environ.get("BENCH_DB", "pqb_bench")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
PORT = int(os.environ.get("BENCH_PORT", "8791"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "4"))
WEB_THREADS = int(os.environ.get("BENCH_WEB_THREADS", "4"))
CELERY_CONCURRENCY = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "4"))
BASE = f"http://127.0.0.1:{PORT}"


def environment() -> dict:
    """The variables every process of the benchmark runs with (this one included). The
    engine's SYNC_* settings pass through from the caller's environment, so a run can try
    another value (`SYNC_REALM_QUEUE_LIMIT=90 make bench`) in the worker too."""
    passed = {k: v for k, v in os.environ.items() if k.startswith("SYNC_")}
    return passed | {
        "DJANGO_SETTINGS_MODULE": "portpro_qb.settings",
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "DATABASE_CONN_MAX_AGE": "60",
        "REDIS_URL": f"{REDIS}/13",
        "CELERY_BROKER_URL": f"{REDIS}/14",
        "CELERY_TASK_DEFAULT_QUEUE": "pqb-bench",
        "QBO_SANDBOX_ENABLED": "1",
        "QBO_ENVIRONMENT": "local",
        "QBO_LOCAL_BASE_URL": f"{BASE}/qbo-sandbox",
        "QBO_REDIRECT_URI": f"{BASE}/quickbooks/callback/",
        "QBO_REQUEST_TIMEOUT": "60",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DEBUG": "0",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "VAR_DIR": str(ROOT / "var" / "bench"),
        "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
    }


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def fresh_database(env: dict) -> None:
    _psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    _psql(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )


def flush_redis() -> None:
    import redis

    for db in (13, 14):
        redis.Redis.from_url(f"{REDIS}/{db}").flushdb()


class Processes:
    def __init__(self, env: dict):
        self.env = env
        self.web = None
        self.worker = None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)

    def _spawn(self, name: str, args: list[str]):
        log = open(LOG_DIR / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        process.log = log
        return process

    def start_web(self) -> None:
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.web = self._spawn(
            "gunicorn",
            [gunicorn, "portpro_qb.wsgi", "-w", str(WEB_WORKERS), "--threads", str(WEB_THREADS),
             "-b", f"127.0.0.1:{PORT}", "--timeout", "180"],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{BASE}/qbo-sandbox/.well-known/openid_configuration")
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.web.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start; see var/bench-logs/gunicorn.log")
                time.sleep(0.3)

    def start_worker(self) -> None:
        self.worker = self._spawn(
            "celery",
            [sys.executable, "-m", "celery", "-A", "portpro_qb", "worker", "-P", "prefork",
             "-c", str(CELERY_CONCURRENCY), "-l", "WARNING", "--without-mingle",
             "--without-gossip", "--without-heartbeat", "-n", "bench@%h"],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(self.worker_children()) < CELERY_CONCURRENCY:
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("celery did not start; see var/bench-logs/celery.log")
            time.sleep(0.3)

    def worker_children(self) -> list[int]:
        if self.worker is None:
            return []
        path = Path(f"/proc/{self.worker.pid}/task/{self.worker.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def stop_worker(self) -> None:
        self._stop(self.worker)
        self.worker = None

    def stop(self) -> None:
        for process in (self.worker, self.web):
            self._stop(process)
        self.worker = self.web = None

    @staticmethod
    def _stop(process) -> None:
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.log.close()


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) in MB from /proc."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, amount, _ = line.split()
                values[key[:-1]] = int(amount) / 1024
    except OSError:
        return (0.0, 0.0)
    return values.get("VmHWM", 0.0), values.get("VmRSS", 0.0)
