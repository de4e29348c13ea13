"""The API's JSON renderer (orjson) writes what DRF's JSONRenderer writes."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from outfits.api.renderers import FastJSONRenderer

PAYLOAD = {
    "sku": "TOP-1",
    "title": "Blouse en soie — écrue, 丝绸",
    "note": "line\u2028separator\u2029paragraph",  # valid JSON, not valid JavaScript
    "price": Decimal("59.90"),
    "in_stock": True,
    "pending": None,
    "count": 12,
    "scores": [0.8123, 0.5, 12.0, -0.0031],
    "score32": np.float32(0.25),
    "updated_at": datetime(2026, 12, 5, 9, 30, 1, 123456, tzinfo=UTC),
    "day": date(2026, 12, 5),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "label": gettext_lazy("Tops"),
    "groups": [{"category": "Shoes", "matches": [], "attributes": {"fabric": "linen"}}],
    "errors": {"skus": {1: ["Not a valid string."]}},  # a list field's, keyed by position
    "huge": 2**70,  # beyond orjson's 64 bits: written as DRF writes it
}


def test_the_same_bytes_as_drfs_renderer():
    assert FastJSONRenderer().render(PAYLOAD) == JSONRenderer().render(PAYLOAD)
    assert b"\\u2028" in FastJSONRenderer().render(PAYLOAD)
    assert FastJSONRenderer().render(None) == b""


def test_an_indented_answer_asked_for_is_indented_as_drf_does():
    media_type = "application/json; indent=2"
    indented = FastJSONRenderer().render(PAYLOAD, media_type)
    assert indented == JSONRenderer().render(PAYLOAD, media_type)
    assert b'\n  "sku"' in indented
