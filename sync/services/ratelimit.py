"""Pace every worker from one shared budget per realm, so that Intuit's 429 is rare.

Sliding-window logs in Redis (one sorted set per window), checked and taken atomically by a
Lua script using Redis' own clock, so workers on several machines agree. Limits (qbo-api.md):
500 requests/min and 10/s per realm, 40 batch requests/min per realm and app. A 429 from
QuickBooks pauses the whole realm (Retry-After, else QBO_THROTTLE_BACKOFF_SECONDS).
Without Redis the same windows live in a file per realm (shared by every local process).
A caller told to wait longer than SHORT_WAIT_SECONDS reschedules its work (RateLimited) rather
than hold a worker; a shorter wait (the per-second window) is slept off.
"""

import fcntl
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from django.conf import settings

from sync.services.locks import get_redis

# Clock skew between us and Intuit: count a request as living slightly longer than its window.
WINDOW_MARGIN_MS = 250
# A wait this short (the per-second window) is slept off: giving the records back to the sweep
# for it would cost a claim, a plan and a sweep round trip each time, and leave the realm idle.
SHORT_WAIT_SECONDS = 1.5

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pause = redis.call('PTTL', KEYS[1])
if pause > 0 then return pause end
local wait = 0
for i = 2, #KEYS do
  local limit = tonumber(ARGV[(i - 1) * 2])
  local window = tonumber(ARGV[(i - 1) * 2 + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
if ARGV[1] == '' then return 0 end
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[(i - 1) * 2 + 1]) + 1000)
end
return 0
"""


def _windows(kind: str) -> list[tuple[str, int, int]]:
    windows = [
        ("second", settings.QBO_RATE_PER_SECOND, 1000 + WINDOW_MARGIN_MS),
        ("minute", settings.QBO_RATE_PER_MINUTE, 60_000 + WINDOW_MARGIN_MS),
    ]
    if kind == "batch":
        windows.append(("batch", settings.QBO_BATCH_RATE_PER_MINUTE, 60_000 + WINDOW_MARGIN_MS))
    elif kind == "single":
        # Single writes sent while the batch budget is spent: they may use the minute's
        # requests that batches cannot, never the ones the batches need.
        spare = max(1, settings.QBO_RATE_PER_MINUTE - settings.QBO_BATCH_RATE_PER_MINUTE)
        windows.append(("single", spare, 60_000 + WINDOW_MARGIN_MS))
    return windows


class _SharedFileWindows:
    """The same rule without Redis (the embedded default): one small state file per realm under
    VAR_DIR, read and rewritten under an exclusive file lock, so web, every worker process and
    beat on this machine share one budget (a limiter per process would let two workers send
    twice Intuit's rate)."""

    def __init__(self, folder: Path):
        self.folder = folder

    @contextmanager
    def _state(self, realm: str) -> Iterator[dict[str, Any]]:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_-]", "_", realm) or "_"
        path = self.folder / f"{name}.json"
        with open(self.folder / f"{name}.lock", "w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                state = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                state = {}
            yield state
            staging = path.with_suffix(f".{os.getpid()}.tmp")
            staging.write_text(json.dumps(state))
            os.replace(staging, path)

    def try_take(self, realm: str, kind: str, *, take: bool = True) -> float:
        now = time.time()
        with self._state(realm) as state:
            pause = state.get("paused_until", 0) - now
            if pause > 0:
                return pause
            logs = state.setdefault("logs", {})
            wait = 0.0
            windows = _windows(kind)
            for name, limit, window_ms in windows:
                log = [t for t in logs.get(name, []) if t > now - window_ms / 1000]
                logs[name] = log
                if len(log) >= limit:
                    wait = max(wait, log[len(log) - limit] + window_ms / 1000 - now)
            if wait > 0 or not take:
                return wait
            for name, _, _ in windows:
                logs[name].append(now)
            return 0.0

    def pause(self, realm: str, seconds: float) -> None:
        with self._state(realm) as state:
            state["paused_until"] = max(state.get("paused_until", 0), time.time() + seconds)

    def paused_for(self, realm: str) -> float:
        with self._state(realm) as state:
            return max(0.0, state.get("paused_until", 0) - time.time())


def _shared_file() -> _SharedFileWindows:
    return _SharedFileWindows(Path(settings.VAR_DIR) / "ratelimit")


def _keys(realm: str, kind: str, *, take: bool = True) -> tuple[list[str], list]:
    keys = [f"portpro-qb:rl:{realm}:pause"]
    args: list = [uuid.uuid4().hex if take else ""]
    for name, limit, window_ms in _windows(kind):
        keys.append(f"portpro-qb:rl:{realm}:{name}")
        args.extend([limit, window_ms])
    return keys, args


class RateLimited(Exception):
    """This realm's budget is spent (or it is paused after a 429): try again in `wait` s.

    Raised instead of a long sleep: a task never holds a worker process for long;
    its record is rescheduled and the worker goes on with other work (webhooks, other realms).
    """

    def __init__(self, realm: str, wait: float):
        super().__init__(f"realm {realm} may send again in {wait:.1f}s")
        self.realm = realm
        self.wait = wait


def try_acquire(realm: str, kind: str = "request", *, take: bool = True) -> float:
    """Take one request of this kind now if the budget allows (0), else the seconds to wait.
    With take=False only look: nothing is counted."""
    if not settings.QBO_RATE_LIMIT_ENABLED:
        return 0.0
    client = get_redis()
    if client is not None:
        keys, args = _keys(realm, kind, take=take)
        # redis-py types an answer as "awaitable or value" (one signature for its sync and
        # asyncio clients); this sync client answers the script's integer. Same for pttl below.
        wait_ms = cast(int, client.eval(_ACQUIRE, len(keys), *keys, *args))
        return wait_ms / 1000
    return _shared_file().try_take(realm, kind, take=take)


def write_wait(realm: str) -> float:
    """Seconds until this realm may send a write, batch or single (0: now); counts nothing.
    The sweep asks before handing a realm more work, so that a spent budget costs no claims."""
    batch = try_acquire(realm, "batch", take=False)
    return 0.0 if batch <= 0 else min(batch, try_acquire(realm, "single", take=False))


def take(realm: str, kind: str = "request") -> None:
    """Take one request now (after a short wait, slept), or raise RateLimited with the wait."""
    wait = try_acquire(realm, kind)
    while 0 < wait <= SHORT_WAIT_SECONDS:
        time.sleep(wait)
        wait = try_acquire(realm, kind)
    if wait > 0:
        raise RateLimited(realm, wait)


def write_wait_long(realm: str) -> float:
    """write_wait when it is longer than a short wait, else 0."""
    wait = write_wait(realm)
    return wait if wait > SHORT_WAIT_SECONDS else 0.0


def pause_realm(realm: str, seconds: float) -> None:
    """Intuit said 429: every worker stops sending to this realm for a while."""
    client = get_redis()
    if client is not None:
        key = f"portpro-qb:rl:{realm}:pause"
        current = cast(int, client.pttl(key))
        if current < seconds * 1000:
            client.set(key, "1", px=int(seconds * 1000))
    else:
        _shared_file().pause(realm, seconds)


def paused_for(realm: str) -> float:
    """Seconds left of this realm's pause after a 429 (0 when not paused)."""
    client = get_redis()
    if client is None:
        return _shared_file().paused_for(realm)
    return max(0, cast(int, client.pttl(f"portpro-qb:rl:{realm}:pause"))) / 1000
