"""Storefront API keys: `om_<prefix>_<secret>`. The prefix finds the row, the secret is checked
against its SHA-256 (a random 32-byte secret needs no slow password hash), and only the hash
is stored, so a leaked database leaks no key."""

import hashlib
import hmac
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from .models import ApiKey
from .serving import current_snapshot

KEY_SCHEME = "om"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    name: str,
    allowed_origins: tuple[str, ...] | list[str] = (),
    requests_per_minute: int | None = None,
    created_by: AbstractBaseUser | None = None,
) -> tuple[ApiKey, str]:
    """A new key: its row and the raw key, which is never stored and shown only this once."""
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        secret_sha256=_sha256(secret),
        allowed_origins="\n".join(allowed_origins),
        requests_per_minute=requests_per_minute,
        created_by=created_by,
    )
    return key, f"{KEY_SCHEME}_{prefix}_{secret}"


def find_api_key(raw_key: str) -> ApiKey | None:
    """The live key `raw_key` belongs to, or None (malformed, unknown, wrong secret, revoked)."""
    scheme, _, rest = raw_key.strip().partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not prefix or not secret:
        return None
    key = current_snapshot().rules.api_keys.get(prefix)  # live keys, in memory
    if key is None or not hmac.compare_digest(key.secret_sha256, _sha256(secret)):
        return None
    return key


def revoke_api_key(key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
