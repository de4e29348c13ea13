"""Signed rec_ids: an answer's receipt that events are checked against, with no storage.

`<model version id>[~<experiment id><arm>].<issued, unix seconds in base36>.<shown
products>.<MAC>` (the experiment and arm when an A/B test's arm answered: `12~3B`): the shown
products are the sorted primary keys of every product the answer showed, delta-varint encoded
in base64url; the MAC is a truncated HMAC-SHA256 (keyed from SECRET_KEY) of the rest. An event
counts only for a rec_id whose MAC holds, that is not too old, and for products it lists, so
nobody can forge impressions or clicks, nor learn through the events endpoint which SKUs exist.
"""

import base64
import binascii
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "outfits.rec_id"
MAC_BYTES = 16
# Longest rec_id accepted back (and stored with events): 50 matches in each of 150 rows at
# 2 bytes a product, far beyond any answer the API gives (limit ≤ 50 per category).
MAX_LENGTH = 20_000
# A rec_id stamped this far ahead of our clock is still ours (servers' clocks drift a little).
CLOCK_SKEW_SECONDS = 300
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class RecIdRefused(ValueError):
    """A rec_id that does not prove an answer of ours; the message says why."""


@dataclass(frozen=True)
class IssuedAnswer:
    """What a verified rec_id says about the answer that issued it."""

    model_version_id: int | None  # None: no model was active
    issued_at: int  # unix seconds
    product_pks: frozenset[int]  # every product the answer showed
    experiment_id: int | None = None  # the A/B test whose arm answered, if any
    arm: str = ""  # "A" or "B" within it


def encode_pks(pks: Iterable[int]) -> str:
    """Sorted, de-duplicated primary keys as base64url of their delta varints (LEB128): a row of
    nearby ids costs one or two bytes each. Computed once per answer."""
    out = bytearray()
    previous = 0
    for pk in sorted(set(pks)):
        delta, previous = pk - previous, pk
        while delta >= 0x80:
            out.append(delta & 0x7F | 0x80)
            delta >>= 7
        out.append(delta)
    return base64.urlsafe_b64encode(bytes(out)).rstrip(b"=").decode()


def decode_pks(encoded: str) -> frozenset[int]:
    data = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    pks, value, shift, previous = [], 0, 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            previous += value
            pks.append(previous)
            value, shift = 0, 0
    if shift:
        raise ValueError("truncated varint")
    return frozenset(pks)


def to_base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = BASE36[digit] + digits
        if not number:
            return digits


def mac(payload: str, secret: str | bytes | None = None) -> str:
    digest = salted_hmac(SALT, payload, secret=secret, algorithm="sha256").digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


ARMS = ("A", "B")


def issue_rec_id(
    model_version_id: int | None,
    encoded_pks: str,
    now: float | None = None,
    arm: tuple[int, str] | None = None,
) -> str:
    """The rec_id of an answer that showed the products of `encoded_pks` (encode_pks), served
    by (experiment id, arm) if an A/B test's arm answered: per request only a timestamp and
    one HMAC."""
    issued = to_base36(int(time.time() if now is None else now))
    served = f"{model_version_id or 0}" + (f"~{arm[0]}{arm[1]}" if arm else "")
    payload = f"{served}.{issued}.{encoded_pks}"
    return f"{payload}.{mac(payload)}"


def version_part(rec_id: str) -> str:
    """The model version id (and arm) as the rec_id spells it (unverified: for ETags of our own
    answers: each arm's differ)."""
    return rec_id.partition(".")[0]


def verify_rec_id(rec_id: str, now: float | None = None) -> IssuedAnswer:
    """What the answer with `rec_id` showed, if this API issued it (its MAC checks, under the
    current SECRET_KEY or a fallback) within OUTFITS_REC_ID_MAX_AGE_DAYS; else RecIdRefused."""
    not_ours = RecIdRefused(
        "rec_id is not one this API gave out (or it was altered): send back the rec_id of the "
        "answer that showed the products, unchanged."
    )
    parts = rec_id.split(".")
    if len(rec_id) > MAX_LENGTH or len(parts) != 4:
        raise not_ours
    version, issued, encoded, signature = parts
    payload = rec_id[: -len(signature) - 1]
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(constant_time_compare(signature, mac(payload, key)) for key in keys):
        raise not_ours
    try:  # ours, so well formed; checked anyway rather than trusted
        version, _, served_arm = version.partition("~")
        version_id, issued_at, pks = int(version), int(issued, 36), decode_pks(encoded)
        experiment_id, arm = (int(served_arm[:-1]), served_arm[-1]) if served_arm else (None, "")
        if served_arm and arm not in ARMS:
            raise ValueError(arm)
    except (ValueError, binascii.Error):
        raise not_ours from None
    now = time.time() if now is None else now
    max_age_days = settings.OUTFITS_REC_ID_MAX_AGE_DAYS
    if now - issued_at > max_age_days * 86_400:
        raise RecIdRefused(
            f"rec_id expired: its answer is more than {max_age_days} days old "
            "(OUTFITS_REC_ID_MAX_AGE_DAYS); events count only for recent answers."
        )
    if issued_at - now > CLOCK_SKEW_SECONDS:
        raise not_ours
    return IssuedAnswer(version_id or None, issued_at, pks, experiment_id, arm)
