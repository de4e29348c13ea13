"""Brute-force protection for password logins: failures are counted per username and per client
address in the shared cache (Redis in production); after too many within
OUTFITS_LOGIN_LOCKOUT_SECONDS, that username or address is refused until the time is up.

One rule for every way in through django.contrib.auth.authenticate(): its `user_login_failed`
signal counts the failures (connected in OutfitsConfig.ready), and ThrottledModelBackend refuses
a locked-out login before any password is checked. The admin login form and HTTP Basic on the
API (ThrottledBasicAuthentication) check first too, to say so: "try again in N minutes" on the
page, 429 in the API's error shape.

With Redis failing, failures count in this process's memory until it answers again
(outfits/shared_cache.py): each process then locks out on its own count, and no login fails
for want of the cache."""

import hashlib
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import BaseCache, cache
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from drf_spectacular.authentication import BasicScheme
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication

from outfits.shared_cache import in_redis_or_memory

T = TypeVar("T")
_in_process = LocMemCache("outfits-login-failures", {"OPTIONS": {"MAX_ENTRIES": 10000}})


def _counted(operation: Callable[[BaseCache], T]) -> T:
    """operation(the shared cache), or while Redis fails, operation(this process's memory)."""
    return in_redis_or_memory(
        "login_throttle", lambda: operation(cache), lambda: operation(_in_process)
    )


class LoginLockedOut(PermissionDenied):
    """authenticate() stops at this: no backend checks the password of a locked-out login."""


def client_address(request: HttpRequest | None) -> str | None:
    """The client's IP address: REMOTE_ADDR, or with OUTFITS_TRUSTED_PROXIES = n in front, the
    n-th address from the end of X-Forwarded-For (the one the outermost trusted proxy saw;
    anything before it the client may have written itself)."""
    if request is None:
        return None
    proxies = settings.OUTFITS_TRUSTED_PROXIES
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [address for address in forwarded if address]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


def _scopes(request: HttpRequest | None, username: str | None) -> list[tuple[str, int]]:
    """(cache key stem, failures allowed) of each count this login attempt belongs to."""
    scopes = []
    if username and settings.OUTFITS_LOGIN_FAILURES_PER_USERNAME > 0:
        digest = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
        scopes.append((f"username:{digest}", settings.OUTFITS_LOGIN_FAILURES_PER_USERNAME))
    address = client_address(request)
    if address and settings.OUTFITS_LOGIN_FAILURES_PER_ADDRESS > 0:
        scopes.append((f"address:{address}", settings.OUTFITS_LOGIN_FAILURES_PER_ADDRESS))
    return scopes


def _failures_key(stem: str) -> str:
    return f"login-failures:{stem}"


def _lock_key(stem: str) -> str:
    return f"login-locked:{stem}"


def seconds_locked_out(request: HttpRequest | None, username: str | None) -> int:
    """How long this username or this client address stays locked out (0: not at all)."""
    keys = [_lock_key(stem) for stem, _ in _scopes(request, username)]
    unlock_times = _counted(lambda counts: counts.get_many(keys)).values()
    if not unlock_times:
        return 0
    return max(0, math.ceil(max(unlock_times) - time.time()))


def record_failed_login(request: HttpRequest | None, username: str | None) -> None:
    """Count a failed login against its username and its address; the one that reaches its
    limit locks that username or address out for OUTFITS_LOGIN_LOCKOUT_SECONDS. Attempts
    refused during a lockout are not counted again: they do not prolong it."""
    for stem, allowed in _scopes(request, username):
        _counted(partial(_count_failure, stem=stem, allowed=allowed))


def _count_failure(counts: BaseCache, stem: str, allowed: int) -> None:
    window = settings.OUTFITS_LOGIN_LOCKOUT_SECONDS
    if counts.get(_lock_key(stem)) is not None:
        return
    key = _failures_key(stem)
    counts.add(key, 0, timeout=window)  # the window starts at the first failure
    try:
        failures = counts.incr(key)
    except ValueError:  # expired between add and incr
        counts.set(key, 1, timeout=window)
        failures = 1
    if failures >= allowed:
        counts.set(_lock_key(stem), time.time() + window, timeout=window)
        counts.delete(key)


def forget_failed_logins(username: str) -> None:
    """After a successful login: that username's failures, and only those. The address's count
    stays: logging in to one's own account must not clear the count of guesses at others'."""
    keys = [_failures_key(stem) for stem, _ in _scopes(None, username)]
    _counted(lambda counts: counts.delete_many(keys))


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (
        "Too many failed logins for this username or from this address: try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}."
    )


def count_failed_login(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """`user_login_failed` receiver: authenticate() found no backend accepting these
    credentials (the password is already masked in them)."""
    username = credentials.get(get_user_model().USERNAME_FIELD, credentials.get("username"))
    record_failed_login(request, username)


class ThrottledModelBackend(ModelBackend):
    """Django's ModelBackend, refusing a locked-out username or address before it checks the
    password, and forgetting the username's failures once a password is right."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if seconds := seconds_locked_out(request, username):
            raise LoginLockedOut(lockout_message(seconds))
        user = super().authenticate(request, username, password, **kwargs)
        if user is not None and username:
            forget_failed_logins(username)
        return user


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin login form, saying when a login is locked out (also right at the failure
    that locks it) instead of "wrong password"."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        self.refuse_if_locked_out(username)
        try:
            return super().clean()
        except ValidationError:
            self.refuse_if_locked_out(username)
            raise

    def refuse_if_locked_out(self, username: str | None) -> None:
        seconds = seconds_locked_out(self.request, username)
        if seconds:
            raise ValidationError(lockout_message(seconds), code="locked_out")


class LoginThrottled(exceptions.Throttled):
    default_code = "login_locked_out"

    def __init__(self, seconds: int) -> None:
        super().__init__(detail=lockout_message(seconds), code=self.default_code)
        self.wait = seconds  # Retry-After


class ThrottledBasicAuthentication(BasicAuthentication):
    """HTTP Basic answering a locked-out username or address with 429 (Retry-After) rather
    than 401, from the failure that locks it on."""

    def authenticate_credentials(self, userid: str, password: str, request=None):
        if seconds := seconds_locked_out(request, userid):
            raise LoginThrottled(seconds)
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            if seconds := seconds_locked_out(request, userid):
                raise LoginThrottled(seconds) from None
            raise


class ThrottledBasicScheme(BasicScheme):
    """In the OpenAPI schema, HTTP Basic as before (`basicAuth`)."""

    target_class = "outfits.login_throttle.ThrottledBasicAuthentication"
