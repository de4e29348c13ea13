"""The recommendation service behind the shop pages and the storefront API: "Goes well with"
(ranked, diverse matches per complementary category) and "Complete the look" (a whole outfit),
both filtered by stock and price and by the merchandisers' pins and blocks."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from django.conf import settings

from catalog.models import Category
from embeddings.engine.candidates import Candidates
from embeddings.engine.diversity import diverse_picks
from embeddings.engine.index import CompatibilityIndex
from embeddings.loaded_versions import active_compatibility_index
from embeddings.models import ModelVersion

from .experiments import model_for
from .match_filters import (
    NO_FILTERS,
    MatchFilters,
    ProductFacts,
    product_facts,
    refinement,
)
from .rec_ids import RecIdRefused, encode_pks, issue_rec_id, verify_rec_id
from .row_facts import look_key
from .serving import ProductCard, ServingSnapshot, current_snapshot

if TYPE_CHECKING:
    from PIL import Image


class HasSku(Protocol):
    sku: str


LEARNED, CURATED, PINNED = "learned", "curated", "pinned"


@dataclass(frozen=True)
class Match:
    product: ProductCard
    score: float | None  # None: a pinned product the model does not know (yet)
    why: str  # LEARNED, CURATED (stylists put them together) or PINNED (a merchandiser did)


@dataclass(frozen=True)
class CategoryMatches:
    category: Category
    matches: list[Match]


@dataclass(frozen=True)
class GoesWellWith:
    rec_id: str  # ties shoppers' clicks to this answer and its model version
    model_version: str | None  # None: no model has been trained yet
    in_model: bool  # False: the product arrived after the active model was trained
    groups: list[CategoryMatches]
    # Not in the model yet, and the refresh that puts it there is on its way.
    matches_pending: bool = False
    # In the model without a picture: its matches come from its words alone.
    from_words: bool = False
    # Its category is new to the model: matched as this known one until a training learns it.
    category_fallback: str | None = None
    arm: "Arm" = None  # (experiment id, "A" or "B"): the A/B test's arm that answered


@dataclass(frozen=True)
class CompletedLook:
    rec_id: str
    model_version: str | None
    in_model: bool  # False: none of the given products is known to the active model
    items: list[Match]  # one per category, in the order of the categories
    score: float | None  # the whole outfit's served score (each item's with the rest, averaged)
    shuffle: int  # which outfit this is: 0 the best, 1 the next best...
    arm: "Arm" = None  # (experiment id, "A" or "B"): the A/B test's arm that answered


Arm = tuple[int, str] | None


def new_rec_id(version: ModelVersion | None, shown: Iterable[Match] = (), arm: Arm = None) -> str:
    """A signed rec_id (outfits.rec_ids) naming the version (and the A/B test's arm that
    answered) and every product the answer `shown`: an event carries it back, and counts only
    for those products, for that arm."""
    pks = encode_pks(m.product.pk for m in shown)
    return issue_rec_id(version.pk if version else None, pks, arm=arm)


def model_version_of_rec_id(rec_id: str) -> int | None:
    """The model version id in a rec_id this API issued (and still accepts), else None."""
    try:
        return verify_rec_id(rec_id).model_version_id
    except RecIdRefused:
        return None


Visible = Callable[[str], ProductCard | None]


def visibility(serving: ServingSnapshot, anchors: Sequence[str], filters: MatchFilters) -> Visible:
    """SKU → its card if it may be shown with `anchors` (else None): active, in stock (unless
    asked otherwise), within the price, not blocked from matches, not blocked with an anchor,
    not an anchor, not excluded by the request. (Attribute filters: `refined`.)"""
    products, blocked = serving.products, serving.rules.blocked
    hidden = set(anchors).union(
        filters.exclude, *(serving.rules.blocked_with.get(a, ()) for a in anchors)
    )
    in_stock_only, price_max = filters.in_stock_only, filters.price_max

    def visible(sku: str) -> ProductCard | None:
        card = products.get(sku)
        if card is None or sku in hidden or sku in blocked or (in_stock_only and not card.in_stock):
            return None
        if price_max is not None and (card.price is None or card.price > price_max):
            return None
        return card

    return visible


def active_model(serving: ServingSnapshot) -> tuple[ModelVersion, CompatibilityIndex] | None:
    """The version the snapshot says is active and its index (the one loaded so far while
    another thread loads a new one)."""
    return active_compatibility_index(serving.rules.active_version)


def shown_skus(found: dict[str, Candidates], visible: Visible) -> set[str]:
    """The SKUs of `found` that `visible` shows."""
    return {sku for row in found.values() for sku in row.skus if visible(sku) is not None}


def refined(
    found: dict[str, Candidates],
    visible: Visible,
    filters: MatchFilters,
    also: Iterable[str] = (),
    facts: dict[str, ProductFacts | None] | None = None,
) -> tuple[dict[str, Candidates], Visible]:
    """`found` and `visible` under the filters and boosts that read the catalog (attribute
    filters, boosts): the rows re-ranked by their boosts, and `visible` narrowed to products
    whose attributes pass. Asks the database only about visible candidates (and `also`),
    unless their `facts` were read already (product_facts)."""
    if not filters.reads_catalog and not filters.boosts:
        return found, visible
    refine = refinement(filters, shown_skus(found, visible).union(also), facts)

    def narrowed(sku: str) -> ProductCard | None:
        card = visible(sku)
        return card if card is not None and refine.keeps(sku) else None

    def in_stock(sku: str) -> bool:
        card = visible(sku)
        return card is not None and card.in_stock

    if filters.boosts:
        found = {category: refine.boosted(row, in_stock) for category, row in found.items()}
    return found, narrowed


def visible_diverse_rows(
    index: CompatibilityIndex, visible: Visible, found: dict[str, Candidates], limit: int
) -> dict[str, Candidates]:
    """For each category's candidates: those that are visible products of that category
    (today's: a product may have moved since training), one of each look, diverse, at most
    `limit`."""
    return visible_diverse_rows_each(index, [(visible, found)], limit)[0]


def visible_diverse_rows_each(
    index: CompatibilityIndex, answers: Sequence[tuple[Visible, dict[str, Candidates]]], limit: int
) -> list[dict[str, Candidates]]:
    """visible_diverse_rows() of several answers' rows, made diverse in one pass."""
    twins = not settings.OUTFITS_MATCH_DIVERSITY  # 0: by score alone, twins kept too
    shown = [
        one_of_each_look(candidates, visible, twins)
        for visible, found in answers
        for candidates in found.values()
    ]
    picked = iter(index.diverse(shown, limit, relevance=1 - settings.OUTFITS_MATCH_DIVERSITY))
    return [{category: next(picked) for category in found} for _, found in answers]


def one_of_each_look(candidates: Candidates, visible: Visible, twins: bool = False) -> Candidates:
    """The row's candidates (best first) that are visible products of its category, and of
    products of one look (row_facts.look_key: one product in several SKUs, or twins a shopper
    cannot tell apart) only the first. MMR alone let such twins through: their vectors differ
    by less than their scores. With `twins`, all of them. (A plain loop: it runs for ~120
    candidates per product.)"""
    category, seen, kept = candidates.category, set(), []
    for item in candidates.items:
        card = visible(item[0])
        if card is None or card.category.name != category:
            continue
        if not twins:
            look = look_key(card)
            if look in seen:
                continue
            seen.add(look)
        kept.append(item)
    return Candidates(category, kept)


def in_category(card: ProductCard | None, category: str) -> bool:
    return card is not None and card.category.name == category


def matches_of(candidates: Candidates, visible: Visible) -> list[Match]:
    """Visible candidates as matches, each saying why: curated when stylists paired it with an
    anchor, else learned."""
    return [
        Match(card, score, CURATED if curated else LEARNED)
        for sku, score, curated in candidates
        if (card := visible(sku)) is not None
    ]


def with_pins(
    matches: list[Match],
    pins: list[tuple[ProductCard, int]],
    limit: int,
    score_of: Callable[[str], float | None],
) -> list[Match]:
    """Pinned (product, position) at their positions (1-based), the model's picks around
    them."""
    pinned = {product.sku for product, _ in pins}
    ranked = [m for m in matches if m.product.sku not in pinned]
    for product, position in sorted(pins, key=lambda pin: pin[1]):
        ranked.insert(min(position - 1, len(ranked)), Match(product, score_of(product.sku), PINNED))
    return ranked[:limit]


def goes_well_with(
    product: HasSku,
    limit: int | None = None,
    filters: MatchFilters = NO_FILTERS,
    uid: str | None = None,
) -> GoesWellWith:
    """The best matches for the active `product` (or SKU holder) from each complementary
    category, best category first, diverse within a row, pins in place: never the product
    itself or its own category. The shopper `uid`, in a running A/B test, is answered by
    their arm's version."""
    return goes_well_with_each([product], limit, filters, uid)[0]


@dataclass
class _Answer:
    """One product's goes_well_with() while goes_well_with_each() works it out."""

    anchor: ProductCard
    in_model: bool
    pins: list[tuple[str, int]]
    visible: Visible
    found: dict[str, Candidates] = field(default_factory=dict)  # the candidates, in the works
    rows: dict[str, Candidates] = field(default_factory=dict)  # what it shows of them


def goes_well_with_each(
    products: Sequence[HasSku],
    limit: int | None = None,
    filters: MatchFilters = NO_FILTERS,
    uid: str | None = None,
) -> list[GoesWellWith]:
    """goes_well_with() of each of `products` (a batch, an export), worked out together: their
    rows read from the computed lists in one gather, what may be shown decided on arrays for
    all of them (diverse_rows_by_arrays), their rows made diverse in one pass; with filters
    that read the catalog, their candidates' attributes read in one query. One at a time, the
    Python around each of a product's ~9 rows and ~120 candidates cost more than the numpy."""
    limit = limit or settings.OUTFITS_MATCHES_PER_CATEGORY
    serving = current_snapshot()
    served = model_for(serving, uid)
    version, index = (served.version, served.index) if served else (None, None)
    arm = served.arm if served else None
    answers: dict[int, _Answer] = {}
    for position, product in enumerate(products):
        if (anchor := serving.product(product.sku)) is not None:
            answers[position] = _Answer(
                anchor,
                index is not None and index.knows(anchor.sku),
                serving.rules.pins.get(anchor.sku, []),
                visibility(serving, [anchor.sku], filters),
            )
    if index is not None:
        choose_rows(serving, index, list(answers.values()), limit, filters)
    else:  # no model yet: the pins alone, under the filters too
        for answer in answers.values():
            also = [sku for sku, _ in answer.pins]
            _, answer.visible = refined({}, answer.visible, filters, also)
    return [
        answered(answers[position], index, version, arm, limit, filters)
        if position in answers
        else GoesWellWith(new_rec_id(version, arm=arm), version and version.name, False, [])
        for position in range(len(products))
    ]


def choose_rows(
    serving: ServingSnapshot,
    index: CompatibilityIndex,
    answers: Sequence[_Answer],
    limit: int,
    filters: MatchFilters,
) -> None:
    """Each answer's `rows`: its candidates in each complementary category, visible,
    one of each look, diverse, at most `limit`, in the model's order of categories."""
    # Over-fetch: filters and diversity drop some of the nearest.
    fetch = filters.fetch(limit * 2 + 6, index.listed_depth)
    asked = [
        (answer, category)
        for answer in answers
        if answer.in_model
        for category in index.complements_of(answer.anchor.category.name)
        if category != answer.anchor.category.name and filters.allows(category)
    ]
    by_arrays: dict[int, Candidates] = {}
    # One product (a page) keeps the one-by-one path: the arrays of a new snapshot or index
    # cost more to make than a page takes.
    if len(answers) > 1 and filters.by_rows_alone:
        by_arrays = diverse_rows_by_arrays(serving, index, asked, fetch, limit, filters)
    rest = [at for at in range(len(asked)) if at not in by_arrays]
    found = index.candidates_each([(asked[at][0].anchor.sku, asked[at][1]) for at in rest], fetch)
    for at, candidates in zip(rest, found, strict=True):
        answer, category = asked[at]
        answer.found[category] = candidates
    facts = None
    if filters.reads_catalog and len(answers) > 1:  # one query for all the answers
        facts = product_facts(
            sku
            for a in answers
            for sku in [*shown_skus(a.found, a.visible), *(sku for sku, _ in a.pins)]
        )
    for answer in answers:
        also = [sku for sku, _ in answer.pins]
        answer.found, answer.visible = refined(answer.found, answer.visible, filters, also, facts)
    chosen = visible_diverse_rows_each(index, [(a.visible, a.found) for a in answers], limit)
    for answer, rows in zip(answers, chosen, strict=True):
        answer.found = rows
    for at, (answer, category) in enumerate(asked):  # in the model's order of categories
        answer.rows[category] = by_arrays[at] if at in by_arrays else answer.found[category]


def diverse_rows_by_arrays(
    serving: ServingSnapshot,
    index: CompatibilityIndex,
    asked: Sequence[tuple[_Answer, str]],
    fetch: int,
    limit: int,
    filters: MatchFilters,
) -> dict[int, Candidates]:
    """visible_diverse_rows() of the rows `asked` that the computed lists hold (by position in
    `asked`; the others are searched one by one), worked out on arrays (row_facts): what
    visibility() and one_of_each_look() decide per candidate in Python, in a few numpy calls
    for all (a batch of 100 products has ~12,000 candidates). For filters by_rows_alone."""
    where = [
        (at, row, slot)
        for at, (answer, category) in enumerate(asked)
        for row in [index.row_of_sku[answer.anchor.sku]]
        if (slot := index.listed_slot(row, category, fetch)) is not None
    ]
    if not where:
        return {}
    anchors = np.asarray([row for _, row, _ in where], dtype=np.int64)
    table, scores = index.listed_rows(anchors, np.asarray([slot for *_, slot in where]), fetch)
    facts = serving.row_facts.facts(index, serving.products)
    rows = np.maximum(table, 0)
    keep = (table >= 0) & facts.shown[rows] & (table != anchors[:, np.newaxis])
    if filters.in_stock_only:
        keep &= facts.in_stock[rows]
    if hidden := index_rows(index, serving.rules.blocked.union(filters.exclude)):
        keep &= ~np.isin(table, hidden)
    blocked_with = serving.rules.blocked_with
    for line, (at, _, _) in enumerate(where):
        if skus := blocked_with.get(asked[at][0].anchor.sku):
            keep[line] &= ~np.isin(table[line], index_rows(index, skus))
    diversity = settings.OUTFITS_MATCH_DIVERSITY  # 0: by score alone, twins kept too
    if diversity:  # one of each look: a twin of a shown candidate listed before it goes
        looks = facts.look[rows]
        before = np.tri(table.shape[1], k=-1, dtype=bool)  # [j, m]: m comes before j
        twins = (looks[:, :, np.newaxis] == looks[:, np.newaxis, :]) & before & keep[:, None]
        keep &= ~twins.any(axis=2)
    picked = diverse_picks(rows, scores, keep, index.vectors, limit, 1 - diversity)
    skus, partners = index.skus, index.scorer.partners
    listed, scored = table.tolist(), scores.tolist()
    chosen = {}
    for line, ((at, anchor, _), positions) in enumerate(zip(where, picked, strict=True)):
        mine = partners.get(anchor, {})
        items = [(listed[line][p], scored[line][p]) for p in positions]
        chosen[at] = Candidates(asked[at][1], [(skus[r], s, r in mine, r) for r, s in items])
    return chosen


def index_rows(index: CompatibilityIndex, skus: Iterable[str]) -> list[int]:
    """The rows of those of `skus` the index knows."""
    return [row for sku in skus if (row := index.row_of_sku.get(sku)) is not None]


def answered(
    answer: _Answer,
    index: CompatibilityIndex | None,
    version: ModelVersion | None,
    arm: Arm,
    limit: int,
    filters: MatchFilters,
) -> GoesWellWith:
    """The answer of its chosen rows, pins in place."""
    anchor, visible, in_model = answer.anchor, answer.visible, answer.in_model
    own_category = anchor.category.name
    pins_by_category: dict[str, list[tuple[ProductCard, int]]] = {}
    for sku, position in answer.pins:
        pinned = visible(sku)
        if pinned is None:
            continue
        name = pinned.category.name
        if name != own_category and filters.allows(name):
            pins_by_category.setdefault(name, []).append((pinned, position))

    def score_of(sku: str) -> float | None:
        return index.score(anchor.sku, sku) if index is not None and in_model else None

    groups = []
    # Rows in the order of the model's categories; a pin may open a row it had nothing for.
    for name in dict.fromkeys([*answer.rows, *pins_by_category]):
        matches = matches_of(answer.rows.get(name, Candidates.none(name)), visible)
        pins = pins_by_category.get(name)
        placed = with_pins(matches, pins, limit, score_of) if pins else matches
        if placed:
            groups.append(CategoryMatches(placed[0].product.category, placed))
    shown = [m for group in groups for m in group.matches]
    # Not in the active version yet: a refresh brings it in (from its words, without a picture).
    pending = index is not None and not in_model and settings.OUTFITS_REFRESH_ON_CHANGE
    fallback = index.category_fallbacks.get(own_category) if index and in_model else None
    return GoesWellWith(
        new_rec_id(version, shown, arm),
        version.name if version else None,
        in_model,
        groups,
        pending,
        from_words=in_model and not anchor.image,
        category_fallback=fallback,
        arm=arm,
    )


LOOK_CANDIDATES_PER_CATEGORY = 6
LOOK_BEAM_WIDTH = 48


def complete_the_look(
    anchors: Sequence[HasSku],
    categories: Sequence[str] | None = None,
    shuffle: int = 0,
    filters: MatchFilters = NO_FILTERS,
    uid: str | None = None,
) -> CompletedLook:
    """A whole outfit around `anchors`: one product per category (of the given `categories`,
    or of every category stylists combine with the anchors'), chosen together for the best
    served score of the whole outfit. It is wearable as the outfits taught: an
    item joins only if stylists combine its category with every category already in the
    outfit, so never a second top, nor a dress with trousers, even when both are asked for.
    `shuffle` = n gives the n-th best outfit that differs from each better one in at least two
    pieces (in one, when it has a single piece). The beam search grows outfits by their pairs;
    the outfits it keeps are ranked by the served score of each whole outfit (the outfit-level
    model's, when the version serves one). With one anchor list and one category it is the
    fill-in-the-blank answer: the candidate most compatible with the partial outfit. The
    shopper `uid`, in a running A/B test, is answered by their arm's version."""
    serving = current_snapshot()
    served = model_for(serving, uid)
    version, index = (served.version, served.index) if served else (None, None)
    arm = served.arm if served else None
    anchor_skus = [a.sku for a in anchors]
    # Each anchor once: an outfit scored whole must not hold an item twice.
    known = list(dict.fromkeys(sku for sku in anchor_skus if index.knows(sku))) if index else []
    if index is None or version is None or not known:
        return CompletedLook(
            new_rec_id(version, arm=arm), version and version.name, False, [], None, 0, arm
        )
    anchor_categories = {index.category_of(sku) for sku in known}
    if categories is None:
        categories = list(
            dict.fromkeys(
                c
                for sku in known
                for c in index.complements_of(index.category_of(sku))
                if c not in anchor_categories
            )
        )
    visible = visibility(serving, anchor_skus, filters)
    candidates = look_candidates(index, known, categories, visible, filters)
    pool = [*known, *(sku for found in candidates.values() for sku in found.skus)]
    blocked = blocked_pairs(serving, pool)
    pair_scores = index.pair_scores(pool)
    position = {sku: i for i, sku in enumerate(pool)}
    curated = {sku for found in candidates.values() for sku, _, c in found if c}

    def goes_with(sku: str, outfit: Sequence[str]) -> bool:
        category = index.category_of(sku)
        return all(
            (sku, other) not in blocked
            and category in index.complements_of(index.category_of(other))
            for other in outfit
        )

    # Beam search over the categories in order; a category that clashes with the outfit so far
    # (a skirt after trousers) is skipped. Outfits are ranked by the mean score of their pairs
    # (ties in the order they were found: the same in every process, unlike a set's).
    beam: list[tuple[str, ...]] = [()]
    for category in categories:
        grown = [
            (*outfit, sku)
            for outfit in beam
            for sku in candidates[category].skus
            if goes_with(sku, [*known, *outfit])
        ]
        stuck = [outfit for outfit in beam if not any(g[:-1] == outfit for g in grown)]
        beam = sorted(
            dict.fromkeys(grown + stuck),
            key=lambda o: -outfit_score(pair_scores, position, known, o),
        )[:LOOK_BEAM_WIDTH]
    beam = [outfit for outfit in beam if outfit]
    if not beam:
        return CompletedLook(new_rec_id(version, arm=arm), version.name, True, [], None, 0, arm)
    # The beam's outfits, ranked by the served score of each whole outfit: an outfit-level
    # scorer reads them as outfits, not as the pairs the search grew them by.
    whole = index.outfit_scores([[*known, *outfit] for outfit in beam])
    ranked = np.argsort(-whole, kind="stable").tolist()
    score_of_outfit = {beam[i]: float(whole[i]) for i in ranked}
    beam = distinct_outfits([beam[i] for i in ranked])
    shuffle = shuffle % len(beam)
    outfit = beam[shuffle]
    order = {c: i for i, c in enumerate(categories)}
    items = [
        Match(
            card,
            float(pair_scores[position[sku], [position[a] for a in known]].mean()),
            CURATED if sku in curated else LEARNED,
        )
        for sku in sorted(outfit, key=lambda sku: order[index.category_of(sku)])
        if (card := visible(sku)) is not None
    ]
    score = score_of_outfit[outfit]
    return CompletedLook(
        new_rec_id(version, items, arm), version.name, True, items, score, shuffle, arm
    )


def distinct_outfits(ranked: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The outfits, best first, that differ from every better one kept in at least two pieces
    (one, for outfits of one piece): a shuffle changes the look, not only its shoes."""
    kept: list[tuple[str, ...]] = []
    for outfit in ranked:
        pieces = set(outfit)
        needed = min(2, len(pieces))
        if all(len(pieces - set(better)) >= needed for better in kept):
            kept.append(outfit)
    return kept


def look_candidates(
    index: CompatibilityIndex,
    anchors: list[str],
    categories: Sequence[str],
    visible: Visible,
    filters: MatchFilters,
) -> dict[str, Candidates]:
    """The few visible products of each category most compatible with the anchors (the
    filters' boosts lift some, as in a row of matches)."""
    count = LOOK_CANDIDATES_PER_CATEGORY
    fetch = filters.fetch(count * 3 + 5, index.listed_depth)
    near = {category: index.outfit_candidates(anchors, category, fetch) for category in categories}
    near, visible = refined(near, visible, filters)
    return {
        category: found.where(
            lambda sku, category=category: in_category(visible(sku), category)
        ).best(count)
        for category, found in near.items()
    }


def blocked_pairs(serving: ServingSnapshot, skus: list[str]) -> set[tuple[str, str]]:
    """Pairs of `skus` a merchandiser blocked, both ways round."""
    blocked_with = serving.rules.blocked_with
    return {(a, b) for a in skus for b in skus if b in blocked_with.get(a, ())}


def outfit_score(
    pair_scores: np.ndarray,
    position: dict[str, int],
    anchors: list[str],
    outfit: Sequence[str],
) -> float:
    """Mean compatibility over the outfit's pairs that involve a chosen item."""
    members = [position[sku] for sku in [*anchors, *outfit]]
    chosen = members[len(anchors) :]
    total = [pair_scores[c, m] for i, c in enumerate(chosen) for m in members[: len(anchors) + i]]
    return float(np.mean(total)) if total else float("-inf")


@dataclass(frozen=True)
class PhotoMatches:
    rec_id: str
    model_version: str | None
    category: str  # what the garment in the photo is
    category_guessed: bool  # True: recognised from the photo, not given
    groups: list[CategoryMatches]


class ModelNotReady(RuntimeError):
    """No model is active (or one is being switched in): nothing to match a photo with yet.
    Its message is for storefront developers and staff; shoppers' pages say `for_shoppers`."""

    for_shoppers = "Matching photos is not available right now. Please try again later."
    retry_after_seconds: int | None = None  # when it is worth asking again (Retry-After)


class ModelWarmingUp(ModelNotReady):
    """The model is loading in this process: ask again in a few seconds."""

    retry_after_seconds = 5
    for_shoppers = "Photo matching is warming up: try again in a few seconds."


def matches_for_photo(
    image: "Image.Image",
    category: str | None = None,
    limit: int | None = None,
    filters: MatchFilters = NO_FILTERS,
) -> PhotoMatches:
    """Catalog products that go well with a garment in a shopper's photo: the photo is embedded
    by the active version's backbone and head (torch loads on the first photo), then searched
    like a catalog product of its category."""
    from embeddings.engine.backbone import BackboneUnavailable
    from embeddings.loaded_versions import PhotoEncoderWarmingUp, photo_encoder

    limit = limit or settings.OUTFITS_MATCHES_PER_CATEGORY
    serving = current_snapshot()
    try:
        active = active_model(serving)
        encoder = photo_encoder(  # no query: the snapshot's version
            serving.rules.active_version, settings.OUTFITS_PHOTO_WARMUP_WAIT_SECONDS
        )
    except PhotoEncoderWarmingUp as warming:
        raise ModelWarmingUp(str(warming)) from None
    except BackboneUnavailable:  # logged with its cause, which names server paths
        raise ModelNotReady(
            "Matching photos is unavailable: the active model's backbone cannot be loaded on "
            "this server. Staff: the server log says why."
        ) from None
    if active is None or encoder is None:
        raise ModelNotReady("No model is trained yet: staff train one from the admin.")
    (version, index), (encoder_version, photo) = active, encoder
    if version.pk != encoder_version.pk:
        raise ModelNotReady("A new model version is being switched in; try again in a moment.")
    query = photo.encode(image, category)
    searched = limit * 4 + 10
    found = {
        other: index.vector_candidates(
            query.vector, query.category, other, filters.fetch(searched, 4 * searched)
        )
        for other in index.complements_of(query.category)
        if other != query.category and filters.allows(other)
    }
    found, visible = refined(found, visibility(serving, [], filters), filters)
    chosen = visible_diverse_rows(index, visible, found, limit)
    groups = []
    for candidates in chosen.values():
        matches = matches_of(candidates, visible)
        if matches:
            groups.append(CategoryMatches(matches[0].product.category, matches))
    shown = [m for group in groups for m in group.matches]
    return PhotoMatches(
        new_rec_id(version, shown), version.name, query.category, query.category_guessed, groups
    )
