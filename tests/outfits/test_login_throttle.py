"""Brute force against passwords: failed logins counted per username and per client address in
the cache (Redis here, as in production), through the real admin login page and HTTP Basic on
the import API; one rule for both."""

import base64
import os
import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from outfits.login_throttle import client_address

LOGIN = "/admin/login/?next=/admin/"
WRONG = "Please enter the correct username and password"
LOCKED = "Too many failed logins for this username or from this address"


@pytest.fixture(autouse=True)
def own_counts(settings):
    """A cache key prefix of this test's own: counts and lockouts never reach another test
    (or another test process on the same Redis)."""
    caches = {name: dict(config) for name, config in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"login-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    settings.CACHES = caches
    settings.OUTFITS_LOGIN_FAILURES_PER_USERNAME = 3
    settings.OUTFITS_LOGIN_FAILURES_PER_ADDRESS = 5
    settings.OUTFITS_LOGIN_LOCKOUT_SECONDS = 900
    # Many logins: a fast hasher (what is tested is the counting, not the hashing).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users(db):
    make = get_user_model().objects.create_superuser
    return {name: make(name, f"{name}@example.com", f"{name}-password") for name in "abcdef"}


def admin_login(username: str, password: str, address: str = "10.0.0.1") -> str:
    """The admin login page's answer to a fresh browser: 'in' when it let the user in."""
    browser = Client(REMOTE_ADDR=address)
    response = browser.post(LOGIN, {"username": username, "password": password})
    if response.status_code == 302 and "_auth_user_id" in browser.session:
        return "in"
    return response.content.decode()


def basic_auth(username: str, password: str, address: str = "10.0.0.1"):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    # No such job: past authentication, the answer is 404.
    return Client(REMOTE_ADDR=address).get(
        "/api/v1/imports/999999/", HTTP_AUTHORIZATION=f"Basic {token}"
    )


def test_the_admin_login_locks_a_username_out_and_says_for_how_long(users):
    assert WRONG in admin_login("a", "guess-1")
    assert WRONG in admin_login("a", "guess-2", address="10.0.0.2")  # any address counts
    page = admin_login("a", "guess-3")  # the last one allowed: said at once
    assert LOCKED in page and "try again in 15 minutes" in page
    assert LOCKED in admin_login("a", "a-password")  # even the right password, meanwhile
    assert admin_login("b", "b-password") == "in"  # the address is not locked: 3 < 5


def test_a_lockout_ends_when_its_time_is_up(users, settings):
    settings.OUTFITS_LOGIN_LOCKOUT_SECONDS = 2
    for attempt in range(3):
        admin_login("a", f"guess-{attempt}")
    page = admin_login("a", "a-password")
    assert LOCKED in page and "try again in 1 minute." in page
    time.sleep(2.2)
    assert admin_login("a", "a-password") == "in"


def test_the_admin_login_locks_an_address_out_whatever_the_username(users):
    for username in ["a", "b", "c", "d"]:
        assert WRONG in admin_login(username, "guess")
    assert LOCKED in admin_login("e", "guess")  # the fifth failure from 10.0.0.1
    assert LOCKED in admin_login("f", "f-password")
    assert admin_login("f", "f-password", address="10.0.0.9") == "in"


def test_a_successful_login_clears_only_its_own_username_count(users, settings):
    settings.OUTFITS_LOGIN_FAILURES_PER_ADDRESS = 6
    for username in ["a", "a", "b", "b"]:
        assert WRONG in admin_login(username, "guess")
    assert admin_login("c", "c-password") == "in"  # c's success: a's and b's counts stay,
    assert LOCKED in admin_login("a", "guess")  # a's third failure locks a
    assert admin_login("b", "b-password") == "in"  # b's own success clears b's count:
    assert WRONG in admin_login("b", "guess", address="10.0.0.2")
    assert WRONG in admin_login("b", "guess", address="10.0.0.2")  # 2 < 3
    # No success cleared the address's count (c's, b's): its sixth failure locks it.
    assert LOCKED in admin_login("d", "guess")
    assert LOCKED in admin_login("e", "e-password")


def test_http_basic_answers_429_in_the_error_shape_and_shares_the_rule(users):
    response = basic_auth("a", "guess")
    assert response.status_code in {401, 403}  # 403: session authentication comes first
    assert response.json()["error"]["code"] == "authentication_failed"
    assert WRONG in admin_login("a", "guess")  # a failure on the admin page counts here too
    response = basic_auth("a", "guess")
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "login_locked_out"
    assert LOCKED in error["message"] and "try again in 15 minutes" in error["message"]
    assert 890 <= int(response["Retry-After"]) <= 900
    assert basic_auth("a", "a-password").status_code == 429  # the right password too
    assert LOCKED in admin_login("a", "a-password")  # and the admin page
    assert basic_auth("b", "b-password").status_code == 404


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw(settings, rf):
    spoofed = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="10.1.1.1")
    assert client_address(spoofed) == "10.1.1.1"  # no proxy trusted: the header is ignored
    settings.OUTFITS_TRUSTED_PROXIES = 1
    assert client_address(spoofed) == "203.0.113.7"  # not what the client wrote before it
    settings.OUTFITS_TRUSTED_PROXIES = 2
    assert client_address(spoofed) == "6.6.6.6"
    no_header = rf.get("/", REMOTE_ADDR="10.1.1.1")
    assert client_address(no_header) == "10.1.1.1"
