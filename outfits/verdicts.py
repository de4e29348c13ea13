"""Stylists' verdicts on the pairs the shop shows (good pair / bad pair, with the version that
showed them), and the disagreements: bad pairs the active version still ranks in a row."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from catalog.models import Product
from embeddings.models import ModelVersion

from .models import PairVerdict
from .rec_ids import RecIdRefused, verify_rec_id
from .recommendations import active_model
from .serving import current_snapshot


class InvalidVerdict(ValueError):
    """A verdict that cannot be recorded; the message says why."""


def record_verdict(
    product_sku: str,
    match_sku: str,
    verdict: str,
    note: str = "",
    given_by: AbstractBaseUser | AnonymousUser | None = None,
    rec_id: str = "",
) -> PairVerdict:
    """Store (or replace) the verdict on `match` shown with `product`; the version is the one
    whose answer (`rec_id`) showed the pair, else the active one."""
    if verdict not in PairVerdict.Verdict.values:
        raise InvalidVerdict(f"verdict must be {' or '.join(PairVerdict.Verdict.values)}")
    products = Product.objects.in_bulk([product_sku, match_sku], field_name="sku")
    missing = [sku for sku in (product_sku, match_sku) if sku not in products]
    if missing:
        raise InvalidVerdict(f"no product with SKU {', '.join(map(repr, missing))}")
    if product_sku == match_sku:
        raise InvalidVerdict("a product is no pair with itself")
    version_id = None
    if rec_id:
        try:
            version_id = verify_rec_id(rec_id).model_version_id
        except RecIdRefused:
            version_id = None  # an old page: the active version stands in
    version = ModelVersion.objects.filter(pk=version_id).first() if version_id else None
    if version is None:
        version = ModelVersion.objects.filter(is_active=True).first()
    found, _ = PairVerdict.objects.update_or_create(
        product=products[product_sku],
        match=products[match_sku],
        defaults={
            "verdict": verdict,
            "note": note.strip()[:2000],
            "model_version": version,
            "given_by": given_by if given_by is not None and given_by.is_authenticated else None,
        },
    )
    return found


def verdicts_on(product_sku: str, match_skus: list[str]) -> dict[str, str]:
    """The verdicts given on these matches of the product: match SKU → good or bad."""
    return dict(
        PairVerdict.objects.filter(product__sku=product_sku, match__sku__in=match_skus).values_list(
            "match__sku", "verdict"
        )
    )


@dataclass(frozen=True)
class Disagreement:
    verdict: PairVerdict
    rank: int  # where the active version ranks the match in the product's row, from 1
    score: float


def disagreements(depth: int | None = None) -> list[Disagreement]:
    """Bad pairs the active version still ranks within the first `depth` (a row's length by
    default) of the product's matches in the match's category, the highest ranked first; a
    pair merchandisers blocked is shown to no shopper, so it is no disagreement."""
    depth = depth or settings.OUTFITS_MATCHES_PER_CATEGORY
    serving = current_snapshot()
    active = active_model(serving)
    if active is None:
        return []
    _, index = active
    blocked, blocked_with = serving.rules.blocked, serving.rules.blocked_with
    found = []
    bad = PairVerdict.objects.filter(verdict=PairVerdict.Verdict.BAD).select_related(
        "product", "match", "model_version", "given_by"
    )
    for verdict in bad:
        anchor, match = verdict.product.sku, verdict.match.sku
        if not (index.knows(anchor) and index.knows(match)):
            continue
        if match in blocked or match in blocked_with.get(anchor, ()):
            continue  # merchandisers already keep it off the page
        ranked = index.nearest(anchor, index.category_of(match), depth)
        for rank, (sku, score) in enumerate(ranked, start=1):
            if sku == match:
                found.append(Disagreement(verdict, rank, score))
    found.sort(key=lambda d: (d.rank, -d.score))
    return found
