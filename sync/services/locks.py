"""Shared Redis connection and cross-process locks (Redis when configured, a file lock else)."""

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=2)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def get_redis() -> redis.Redis | None:
    """The shared Redis, or None in the demo when REDIS_URL is unset."""
    return _client(settings.REDIS_URL) if settings.REDIS_URL else None


class LockTimeout(Exception):
    pass


@contextmanager
def single_flight(name: str, *, timeout: float = 60, wait: float = 45) -> Iterator[None]:
    """Only one holder across every worker process; others wait (up to `wait` seconds)."""
    client = get_redis()
    if client is not None:
        lock = client.lock(f"portpro-qb:lock:{name}", timeout=timeout, blocking_timeout=wait)
        if not lock.acquire():
            raise LockTimeout(f"could not acquire {name} within {wait}s")
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                pass  # expired while we worked; the next holder already proceeds
        return
    path = settings.VAR_DIR / "locks"
    path.mkdir(parents=True, exist_ok=True)
    with open(path / f"{name.replace(':', '_')}.lock", "w") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"could not acquire {name} within {wait}s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
