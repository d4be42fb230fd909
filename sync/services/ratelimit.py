"""Pace every worker from one shared budget per realm, so that Intuit's 429 is rare.

Sliding-window logs in Redis (one sorted set per window), checked and taken atomically by a
Lua script using Redis' own clock, so workers on several machines agree. Limits (qbo-api.md):
500 requests/min and 10/s per realm, 40 batch requests/min per realm and app. A 429 from
QuickBooks pauses the whole realm (Retry-After, else QBO_THROTTLE_BACKOFF_SECONDS).
"""

import threading
import time
import uuid
from collections import deque

from django.conf import settings

from sync.services.locks import get_redis

# Clock skew between us and Intuit: count a request as living slightly longer than its window.
WINDOW_MARGIN_MS = 250

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


class _LocalWindows:
    """Same rule inside one process, for the demo without Redis."""

    def __init__(self):
        self.lock = threading.Lock()
        self.logs: dict[str, deque] = {}
        self.paused_until: dict[str, float] = {}

    def try_take(self, realm: str, kind: str) -> float:
        now = time.monotonic()
        with self.lock:
            pause = self.paused_until.get(realm, 0) - now
            if pause > 0:
                return pause
            wait = 0.0
            windows = _windows(kind)
            for name, limit, window_ms in windows:
                log = self.logs.setdefault(f"{realm}:{name}", deque())
                while log and log[0] <= now - window_ms / 1000:
                    log.popleft()
                if len(log) >= limit:
                    wait = max(wait, log[len(log) - limit] + window_ms / 1000 - now)
            if wait > 0:
                return wait
            for name, _, _ in windows:
                self.logs[f"{realm}:{name}"].append(now)
            return 0.0

    def pause(self, realm: str, seconds: float) -> None:
        with self.lock:
            self.paused_until[realm] = max(
                self.paused_until.get(realm, 0), time.monotonic() + seconds
            )


_local = _LocalWindows()


def _keys(realm: str, kind: str) -> tuple[list[str], list]:
    keys = [f"portpro-qb:rl:{realm}:pause"]
    args: list = [uuid.uuid4().hex]
    for name, limit, window_ms in _windows(kind):
        keys.append(f"portpro-qb:rl:{realm}:{name}")
        args.extend([limit, window_ms])
    return keys, args


def try_acquire(realm: str, kind: str = "request") -> float:
    """Take one request of this kind now if the budget allows (0), else the seconds to wait."""
    if not settings.QBO_RATE_LIMIT_ENABLED:
        return 0.0
    client = get_redis()
    if client is not None:
        keys, args = _keys(realm, kind)
        return client.eval(_ACQUIRE, len(keys), *keys, *args) / 1000
    return _local.try_take(realm, kind)


def acquire(realm: str, kind: str = "request", *, max_wait: float = 600) -> float:
    """Block until this realm may send one more request; returns the seconds waited."""
    if not settings.QBO_RATE_LIMIT_ENABLED:
        return 0.0
    waited = 0.0
    while True:
        wait = try_acquire(realm, kind)
        if wait <= 0:
            return waited
        if waited + wait > max_wait:
            raise TimeoutError(f"rate limiter for realm {realm} would wait over {max_wait}s")
        time.sleep(min(wait, 5.0))
        waited += min(wait, 5.0)


def pause_realm(realm: str, seconds: float) -> None:
    """Intuit said 429: every worker stops sending to this realm for a while."""
    client = get_redis()
    if client is not None:
        key = f"portpro-qb:rl:{realm}:pause"
        current = client.pttl(key)
        if current < seconds * 1000:
            client.set(key, "1", px=int(seconds * 1000))
    else:
        _local.pause(realm, seconds)


def paused_for(realm: str) -> float:
    client = get_redis()
    if client is None:
        return max(0.0, _local.paused_until.get(realm, 0) - time.monotonic())
    return max(0, client.pttl(f"portpro-qb:rl:{realm}:pause")) / 1000
