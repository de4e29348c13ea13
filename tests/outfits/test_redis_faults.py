"""Redis (the shared cache of API rate limits and failed logins) killed, frozen, and back: keyed
API calls and logins keep answering, each process counting on its own meanwhile; a frozen Redis
costs one short timeout, not one per request; counting goes back to Redis once it answers.
Against a redis-server of the test's own, configured as the site configures it from REDIS_URL."""

import base64
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from outfits import shared_cache
from outfits.api_keys import create_api_key
from tests.support import ROOT, wait_for

MATCHES = "/api/v1/products/T1/matches/"
RETRY_SECONDS = 3.0  # the breaker's: Redis skipped this long after a failure


def tally(counted: str) -> float:
    """This process's count of "redis_failures" or "fallback:<what>", as /metrics shows it."""
    if counted == "redis_failures":
        return REGISTRY.get_sample_value("outfits_redis_failures_total") or 0.0
    what = counted.removeprefix("fallback:")
    sample = REGISTRY.get_sample_value("outfits_shared_cache_fallbacks_total", {"what": what})
    return sample or 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def site_caches(**environment: str) -> dict:
    """settings.CACHES as the site makes it from these environment variables."""
    code = "import json, outfits.settings as s; print(json.dumps(s.CACHES))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


class OwnRedis:
    """A redis-server of the test's own (own port, own folder, nothing saved)."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen | None = None
        self.thaw_timer: threading.Timer | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self.answers, "redis-server to answer", timeout=20, every=0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        assert self.process
        self.process.send_signal(signal.SIGSTOP)
        # Without a socket timeout a request would wait for ever: the test fails on its time.
        self.thaw_timer = threading.Timer(5, self.thaw)
        self.thaw_timer.start()

    def thaw(self) -> None:
        if self.thaw_timer:
            self.thaw_timer.cancel()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def own_redis(settings, tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    settings.CACHES = site_caches(REDIS_URL=server.url)
    settings.OUTFITS_REDIS_RETRY_SECONDS = RETRY_SECONDS
    shared_cache.breaker.open_until = 0.0
    yield server
    server.kill()
    shared_cache.breaker.open_until = 0.0  # the next test starts with Redis asked


def test_the_site_asks_redis_with_short_timeouts_settable_in_the_environment():
    options = site_caches(REDIS_URL="redis://127.0.0.1:6379/1")["default"]["OPTIONS"]
    assert options == {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}
    options = site_caches(REDIS_URL="redis://127.0.0.1:6379/1", OUTFITS_REDIS_TIMEOUT_MS="150")
    assert options["default"]["OPTIONS"]["socket_timeout"] == 0.15


def throttle_tat(server: OwnRedis, key) -> float | None:
    """The key's GCRA arrival time as Redis keeps it (None: not counted there)."""
    value = server.client().get(f"outfits:throttle:api-key:{key.prefix}")
    return None if value is None else float(value)


def test_with_redis_killed_keyed_calls_answer_and_each_process_keeps_the_limit(
    handmade_shop, own_redis, caplog
):
    key, raw_key = create_api_key("tight", requests_per_minute=4)
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert [client.get(MATCHES).status_code for _ in range(2)] == [200, 200]
    assert throttle_tat(own_redis, key) is not None  # counted in Redis

    own_redis.kill()
    before = {name: tally(name) for name in ["fallback:api_throttle", "redis_failures"]}
    with caplog.at_level(logging.INFO, logger="outfits.shared_cache"):
        statuses = [client.get(MATCHES).status_code for _ in range(6)]
    # No error; this process counts the key's 4 a minute on its own (from 0: it cannot know
    # Redis's count), and refuses the fifth.
    assert statuses == [200] * 4 + [429] * 2
    assert tally("fallback:api_throttle") - before["fallback:api_throttle"] == 6
    # One failure opened the breaker: the next calls did not try Redis. Logged once.
    assert tally("redis_failures") - before["redis_failures"] == 1
    logged = [r for r in caplog.records if r.name == "outfits.shared_cache"]
    assert [r.levelname for r in logged] == ["WARNING"]
    assert "Redis (the shared cache) failed" in logged[0].getMessage()

    # Back (empty, as a restarted Redis without saves is): counted there again.
    own_redis.start()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="outfits.shared_cache"):
        wait_for(
            lambda: client.get(MATCHES).status_code == 200 and throttle_tat(own_redis, key),
            "the throttle to count in Redis again",
            timeout=RETRY_SECONDS + 10,
        )
    logged = [r.getMessage() for r in caplog.records if r.name == "outfits.shared_cache"]
    assert len(logged) == 1 and "answers again" in logged[0]
    fallbacks = tally("fallback:api_throttle")
    statuses = [client.get(MATCHES).status_code for _ in range(4)]
    assert statuses == [200] * 3 + [429]  # Redis's fresh budget of 4, the first spent above
    assert tally("fallback:api_throttle") == fallbacks


def test_with_redis_frozen_a_call_waits_one_short_timeout_then_redis_is_skipped(
    handmade_shop, own_redis
):
    key, raw_key = create_api_key("frozen", requests_per_minute=100)
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert client.get(MATCHES).status_code == 200
    counted = throttle_tat(own_redis, key)
    assert counted is not None

    def timed_call() -> float:
        start = time.monotonic()
        assert client.get(MATCHES).status_code == 200
        return time.monotonic() - start

    own_redis.freeze()
    failures = tally("redis_failures")
    # A correctness bound, far below redis-py's wait (for ever without a socket timeout).
    seconds = [timed_call() for _ in range(5)]
    assert max(seconds) < 1.0, seconds
    assert tally("redis_failures") == failures + 1  # then skipped
    assert shared_cache.breaker.is_open

    time.sleep(RETRY_SECONDS)  # time to try again: one call does, and waits its timeout
    assert timed_call() < 1.0
    assert tally("redis_failures") == failures + 2
    assert shared_cache.breaker.is_open

    own_redis.thaw()
    wait_for(
        lambda: client.get(MATCHES).status_code == 200 and not shared_cache.breaker.is_open,
        "the breaker to close",
        timeout=RETRY_SECONDS + 10,
    )
    resumed = throttle_tat(own_redis, key)
    assert resumed is not None and resumed > counted  # counted in Redis again
    assert client.get(MATCHES).status_code == 200
    assert throttle_tat(own_redis, key) > resumed


def test_with_redis_killed_logins_answer_and_lock_out_per_process(db, own_redis, settings):
    settings.OUTFITS_LOGIN_FAILURES_PER_USERNAME = 3
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # A name of its own: no count another test left in this process's memory reaches it.
    username, address = f"admin-{uuid.uuid4().hex[:8]}", "10.9.{}.{}".format(*os.urandom(2))
    get_user_model().objects.create_superuser(username, "admin@example.com", "right-password")

    def admin_login(password: str) -> str:
        browser = Client(REMOTE_ADDR=address)
        response = browser.post("/admin/login/", {"username": username, "password": password})
        if response.status_code == 302 and "_auth_user_id" in browser.session:
            return "in"
        assert response.status_code == 200
        return response.content.decode()

    def basic_auth(password: str) -> int:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return (
            Client(REMOTE_ADDR=address)
            .get("/api/v1/imports/999999/", HTTP_AUTHORIZATION=f"Basic {token}")
            .status_code
        )

    assert "Please enter the correct username" in admin_login("guess-1")
    assert own_redis.client().keys("*login-failures:*")  # counted in Redis

    own_redis.kill()
    assert admin_login("right-password") == "in"
    assert basic_auth("right-password") == 404  # past authentication: no such job
    assert "Please enter the correct username" in admin_login("guess-2")
    assert basic_auth("guess-3") in {401, 403}
    # The third failure this process saw locks the username out (Redis's one is not known).
    assert "Too many failed logins" in admin_login("guess-4")
    assert basic_auth("right-password") == 429
    assert tally("fallback:login_throttle") > 0
