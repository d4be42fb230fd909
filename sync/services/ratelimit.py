"""Pace every worker from one shared budget per realm, so that Intuit's 429 is rare.

Sliding-window logs in Redis (one sorted set per window), checked and taken atomically by a
Lua script using Redis' own clock, so workers on several machines agree. Limits (qbo-api.md):
500 requests/min and 10/s per realm, 40 batch requests/min per realm and app. A 429 from
QuickBooks pauses the whole realm (Retry-After, else QBO_THROTTLE_BACKOFF_SECONDS).
Without Redis the same windows live in a file per realm (shared by every local process).
A caller told to wait longer than SHORT_WAIT_SECONDS reschedules its work (RateLimited) rather
than hold a worker; a shorter wait (the per-second window) is slept off.

Intuit counts a request when it arrives, we when we send it; the time between varies (network,
a busy machine), and requests sent 1.2 s apart can arrive within one second. So the per-second
window keeps a margin in both time and count: one request fewer than Intuit's limit per
1.25 s. A 429 is then an accident, and one that our own log shows cannot be the minute's
(the minute far from spent) pauses the realm briefly instead of for the full backoff.
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
# A 429 while our log shows the minute less than this full was the per-second window's.
MINUTE_HEADROOM = 0.9
# The pause after such a 429; a second one within ACCIDENT_MEMORY_SECONDS is no accident and
# gets the full QBO_THROTTLE_BACKOFF_SECONDS.
SECOND_WINDOW_PAUSE_SECONDS = 2.0
ACCIDENT_MEMORY_SECONDS = 60

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
        ("second", max(1, settings.QBO_RATE_PER_SECOND - 1), 1000 + WINDOW_MARGIN_MS),
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

    def first_accident(self, realm: str) -> bool:
        """True (and remembered) unless a 429 was forgiven as an accident in the last while."""
        now = time.time()
        with self._state(realm) as state:
            if state.get("accident_until", 0) > now:
                return False
            state["accident_until"] = now + ACCIDENT_MEMORY_SECONDS
            return True

    def minute_used(self, realm: str) -> int:
        now = time.time()
        with self._state(realm) as state:
            window = (60_000 + WINDOW_MARGIN_MS) / 1000
            return sum(1 for t in state.get("logs", {}).get("minute", []) if t > now - window)

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


def pause_after_throttle(realm: str, retry_after: float | None) -> float:
    """Intuit said 429: pause the realm for Retry-After when given; else briefly if our own log
    shows the minute far from spent (the per-second window refused an unlucky bunch) and that
    has not happened lately; else for QBO_THROTTLE_BACKOFF_SECONDS. Returns the pause."""
    if retry_after:
        seconds = retry_after
    elif _minute_used(realm) < MINUTE_HEADROOM * settings.QBO_RATE_PER_MINUTE and _first_accident(
        realm
    ):
        seconds = SECOND_WINDOW_PAUSE_SECONDS
    else:
        seconds = float(settings.QBO_THROTTLE_BACKOFF_SECONDS)
    pause_realm(realm, seconds)
    return seconds


def _minute_used(realm: str) -> int:
    client = get_redis()
    if client is None:
        return _shared_file().minute_used(realm)
    key = f"portpro-qb:rl:{realm}:minute"
    newest = cast(list, client.zrange(key, -1, -1, withscores=True))
    if not newest:
        return 0
    # Scores are Redis' clock in ms (the script's); count back from the newest entry.
    since = newest[0][1] - 60_000 - WINDOW_MARGIN_MS
    return cast(int, client.zcount(key, since, "+inf"))


def _first_accident(realm: str) -> bool:
    client = get_redis()
    if client is None:
        return _shared_file().first_accident(realm)
    key = f"portpro-qb:rl:{realm}:accident"
    return bool(client.set(key, "1", nx=True, ex=ACCIDENT_MEMORY_SECONDS))


def paused_for(realm: str) -> float:
    """Seconds left of this realm's pause after a 429 (0 when not paused)."""
    client = get_redis()
    if client is None:
        return _shared_file().paused_for(realm)
    return max(0, cast(int, client.pttl(f"portpro-qb:rl:{realm}:pause"))) / 1000
