"""Click attribution: shoppers' impressions, clicks and add-to-carts on recommendations, and the
click-through rates per model version and per category they add up to."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Q

from catalog.models import Product
from embeddings.models import ModelVersion

from .models import ApiKey, RecommendationEvent
from .recommendations import model_version_of_rec_id

Kind = RecommendationEvent.Kind


class InvalidEvent(ValueError):
    """An event that cannot be recorded; the message says why."""


def record_events(rec_id: str, kind: str, skus: Sequence[str], api_key: ApiKey | None) -> int:
    """One event of `kind` per SKU, attributed to the model version that answered `rec_id`.
    All or nothing: an unknown SKU rejects the whole call, so a retry does not double count."""
    version_id = model_version_of_rec_id(rec_id)
    if version_id is None and not rec_id.startswith("0-"):
        raise InvalidEvent(f"rec_id {rec_id!r} is not one this API gave out.")
    products = {
        p.sku: p for p in Product.objects.filter(sku__in=set(skus)).only("pk", "sku", "category")
    }
    unknown = sorted(set(skus) - products.keys())
    if unknown:
        raise InvalidEvent(f"Unknown SKU(s): {', '.join(unknown[:10])}.")
    if version_id is not None and not ModelVersion.objects.filter(pk=version_id).exists():
        version_id = None  # a version since deleted: the event still counts overall
    RecommendationEvent.objects.bulk_create(
        RecommendationEvent(
            rec_id=rec_id,
            kind=kind,
            model_version_id=version_id,
            product=products[sku],
            category_id=products[sku].category_id,
            api_key=api_key,
        )
        for sku in skus
    )
    return len(skus)


@dataclass(frozen=True)
class ClickThrough:
    label: str
    impressions: int
    clicks: int
    add_to_carts: int

    @property
    def rate(self) -> float | None:
        """Clicks per impression."""
        return self.clicks / self.impressions if self.impressions else None

    @property
    def cart_rate(self) -> float | None:
        return self.add_to_carts / self.impressions if self.impressions else None


def click_through_rates(by: str) -> list[ClickThrough]:
    """CTR per `model_version` or per `category`, most impressions first."""
    field = {"model_version": "model_version__name", "category": "category__name"}[by]
    rows = (
        RecommendationEvent.objects.values(field)
        .annotate(
            impressions=Count("pk", filter=Q(kind=Kind.IMPRESSION)),
            clicks=Count("pk", filter=Q(kind=Kind.CLICK)),
            add_to_carts=Count("pk", filter=Q(kind=Kind.ADD_TO_CART)),
        )
        .order_by("-impressions", field)
    )
    return [
        ClickThrough(
            row[field] or "(deleted version)",
            row["impressions"],
            row["clicks"],
            row["add_to_carts"],
        )
        for row in rows
    ]
