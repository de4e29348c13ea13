"""Requests per minute per API key, counted in the shared cache (Redis in production), so every
web process and server counts against the same budget.

The count is a GCRA ("generic cell rate algorithm"): one timestamp per key, updated by a tiny
Lua script in one Redis round trip. A key may spend its whole minute's budget at once, then
gets one request per 60/limit seconds; Retry-After says exactly when the next one is allowed.
(DRF's default throttle keeps and pickles every request's timestamp: at 600/min that is a
600-float list read and written on every request.)

When Redis fails (down, frozen past its short timeout), each process counts on its own with the
same algorithm until Redis answers again (outfits/shared_cache.py): a key then gets its budget
from each process, rather than every request failing."""

import math
import threading
import time
from weakref import WeakKeyDictionary

from django.conf import settings
from django.core.cache import cache
from redis import Redis
from redis.commands.core import Script
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from outfits import metrics
from outfits.models import ApiKey
from outfits.shared_cache import in_redis_or_memory

PERIOD = 60.0  # seconds

# KEYS[1]: the key's theoretical arrival time; ARGV: now, interval, period (seconds).
# Returns "" when the request is allowed, else the seconds until the next one is.
GCRA_SCRIPT = """
local now, interval, period = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > period then return tostring(next_tat - period - now) end
local expire_ms = math.max(1, math.ceil((next_tat - now) * 1000))
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', expire_ms)
return ''
"""


def gcra_wait(tat: float | None, now: float, interval: float) -> tuple[float | None, float]:
    """The same algorithm in Python: (the new arrival time or None if refused, the wait)."""
    next_tat = max(tat or now, now) + interval
    if next_tat - now > PERIOD:
        return None, next_tat - PERIOD - now
    return next_tat, 0.0


class InProcessCounter:
    """For a cache that is not Redis (development), or Redis failing: each process counts on
    its own."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()

    def wait(self, key: str, now: float, interval: float) -> float:
        with self.lock:
            tat, wait = gcra_wait(self.arrivals.get(key), now, interval)
            if tat is not None:
                self.arrivals[key] = tat
            return wait


_in_process = InProcessCounter()
_gcra: Script | None = None  # the registered GCRA script, called with each request's client
# Django's RedisCache makes a new redis-py client (on its shared pool) per call, a third of the
# throttle's time in a profile: one per cache backend (Django keeps one per thread) instead.
_clients: "WeakKeyDictionary[object, Redis]" = WeakKeyDictionary()


def seconds_to_wait(key: str, requests_per_minute: int) -> float:
    """0 if one more request with `key` is within its budget (and counts it), else how long
    until it would be."""
    now, interval = time.time(), PERIOD / requests_per_minute
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        return _in_process.wait(key, now, interval)
    return in_redis_or_memory(
        "api_throttle",
        lambda: _redis_wait(key, now, interval),
        lambda: _in_process.wait(key, now, interval),
    )


def _redis_wait(key: str, now: float, interval: float) -> float:
    global _gcra
    backend = cache._cache
    client = _clients.get(backend)
    if client is None:
        client = _clients[backend] = backend.get_client(key, write=True)
    if _gcra is None:  # EVALSHA: the script is sent once, then named by its hash
        _gcra = client.register_script(GCRA_SCRIPT)
    answer = _gcra(keys=[key], args=[now, interval, PERIOD], client=client)
    return float(answer) if answer else 0.0


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: APIView) -> bool:
        key = request.user
        if not isinstance(key, ApiKey):
            return True
        limit = key.requests_per_minute or settings.OUTFITS_API_REQUESTS_PER_MINUTE
        self.waiting = seconds_to_wait(f"outfits:throttle:api-key:{key.prefix}", limit)
        metrics.THROTTLE_DECISIONS.labels("allowed" if self.waiting == 0 else "throttled").inc()
        return self.waiting == 0

    def wait(self) -> float:
        return max(1, math.ceil(self.waiting))
