"""Click attribution: shoppers' impressions, clicks and add-to-carts on recommendations, and the
click-through rates per model version and per category they add up to."""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from catalog.models import Product
from embeddings.models import ModelVersion

from .models import ApiKey, EventReceipt, Experiment, RecommendationEvent
from .rec_ids import RecIdRefused, verify_rec_id

Kind = RecommendationEvent.Kind


class InvalidEvent(ValueError):
    """An event that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Recorded:
    count: int  # events recorded by this call
    duplicate: bool  # True: a call with the same event_id was recorded before; nothing now


def record_events(
    rec_id: str, kind: str, skus: Sequence[str], api_key: ApiKey, event_id: str | None = None
) -> Recorded:
    """One event of `kind` per SKU, attributed to the model version (and the A/B test's arm)
    that answered `rec_id`.
    Only a rec_id this API signed counts, and only for products its answer showed; a SKU it
    did not show (unknown, inactive or another) gets one message, so nothing tells which SKUs
    exist. All or nothing; with an `event_id` a retried call is counted once per API key."""
    try:
        answer = verify_rec_id(rec_id)
    except RecIdRefused as refused:
        raise InvalidEvent(str(refused)) from None
    products = {
        p.sku: p
        for p in Product.objects.filter(sku__in=set(skus)).only("pk", "sku", "category")
        if p.pk in answer.product_pks
    }
    not_shown = sorted(set(skus) - products.keys())
    if not_shown:
        raise InvalidEvent(
            f"SKU(s) not shown by the answer with this rec_id: {', '.join(not_shown[:10])}."
        )
    version_id = answer.model_version_id
    if version_id is not None and not ModelVersion.objects.filter(pk=version_id).exists():
        version_id = None  # a version since deleted: the event still counts overall
    experiment_id = answer.experiment_id
    if experiment_id is not None and not Experiment.objects.filter(pk=experiment_id).exists():
        experiment_id = None  # an A/B test since deleted
    with transaction.atomic():
        if event_id:
            # The unique (api key, event_id) row is the lock: a concurrent retry waits for this
            # transaction and then finds it.
            _, created = EventReceipt.objects.get_or_create(
                api_key=api_key, event_id=event_id, defaults={"recorded": len(skus)}
            )
            if not created:
                return Recorded(0, duplicate=True)
        RecommendationEvent.objects.bulk_create(
            RecommendationEvent(
                rec_id=rec_id,
                kind=kind,
                model_version_id=version_id,
                product=products[sku],
                category_id=products[sku].category_id,
                api_key=api_key,
                experiment_id=experiment_id,
                arm=answer.arm if experiment_id is not None else "",
            )
            for sku in skus
        )
    if event_id:
        forget_old_receipts()
    return Recorded(len(skus), duplicate=False)


RECEIPT_SWEEP_SECONDS = 3600.0
# When this process last swept; None: never (the monotonic clock counts from the machine's
# boot, so 0.0 would mean "an hour ago" only on a machine up for more than an hour).
_last_receipt_sweep: float | None = None


def forget_old_receipts(now: float | None = None) -> int:
    """Delete event receipts older than OUTFITS_REC_ID_MAX_AGE_DAYS, at most once an hour per
    process: a retry that late carries a rec_id too old to count, so the receipt guards
    nothing. Returns how many were deleted."""
    global _last_receipt_sweep
    now = time.monotonic() if now is None else now
    last = _last_receipt_sweep
    if last is not None and now - last < RECEIPT_SWEEP_SECONDS:
        return 0
    _last_receipt_sweep = now
    cutoff = timezone.now() - timedelta(days=settings.OUTFITS_REC_ID_MAX_AGE_DAYS)
    deleted, _ = EventReceipt.objects.filter(created_at__lt=cutoff).delete()
    return deleted


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
