"""When the shared cache (Redis) is down or frozen, what counts in it (API rate limits, failed
logins) counts in this process's memory instead, and the request goes on.

Redis is asked with short timeouts (OUTFITS_REDIS_TIMEOUT_MS), and a circuit breaker keeps a
failed Redis from costing every request that timeout: after a failure, Redis is skipped for
OUTFITS_REDIS_RETRY_SECONDS; then one request tries it again (the others keep skipping it
meanwhile), and the first answer closes the breaker. Each change of state is logged once;
failures and fallbacks are counted in /metrics (outfits.metrics)."""

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from redis.exceptions import RedisError

from outfits import metrics

log = logging.getLogger(__name__)
T = TypeVar("T")


class CircuitBreaker:
    """Closed (Redis is asked) or open until a time (Redis is skipped)."""

    def __init__(self) -> None:
        self.open_until = 0.0  # time.monotonic(); 0: closed
        self.lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self.open_until != 0.0

    def allow(self) -> bool:
        """Whether to ask Redis now. Once an open breaker's time is up, the caller this answers
        True tries Redis, and the skipping goes on for the others until it knows."""
        if not self.is_open:
            return True
        with self.lock:
            now = time.monotonic()
            if not self.is_open:
                return True
            if now < self.open_until:
                return False
            self.open_until = now + settings.OUTFITS_REDIS_RETRY_SECONDS
            return True

    def failed(self, error: Exception) -> None:
        metrics.REDIS_FAILURES.inc()
        with self.lock:
            was_closed = not self.is_open
            self.open_until = time.monotonic() + settings.OUTFITS_REDIS_RETRY_SECONDS
        if was_closed:
            log.warning(
                "Redis (the shared cache) failed (%s: %s): rate limits and failed logins count in "
                "each process's memory; Redis is tried again every %g s.",
                type(error).__name__,
                error,
                settings.OUTFITS_REDIS_RETRY_SECONDS,
            )

    def succeeded(self) -> None:
        if not self.is_open:
            return
        with self.lock:
            was_open, self.open_until = self.is_open, 0.0
        if was_open:
            log.info("Redis (the shared cache) answers again: counting in it again.")


breaker = CircuitBreaker()


def in_redis_or_memory(what: str, shared: Callable[[], T], local: Callable[[], T]) -> T:
    """shared() (which asks Redis) while Redis answers; else local() (counted as a fallback
    of `what`)."""
    if breaker.allow():
        try:
            result = shared()
        except RedisError as error:
            breaker.failed(error)
        else:
            breaker.succeeded()
            return result
    metrics.SHARED_CACHE_FALLBACKS.labels(what).inc()
    return local()
