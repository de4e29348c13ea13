"""The training pipeline, without Django: from a catalog's item vectors and its outfits to a
model version's parts (the trained head, the index it serves, the held-out metrics). The glue
(embeddings/training.py) gathers the rows and embeds them, calls fit_version and writes what
it returns; the transfer study and the ablation (benchmarks/) call fit_space, the same
training on outfits they choose."""

import copy
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .blend import BlankSignals, blank_signals, blend_features, fitted_blend
from .category_probe import CategoryProbe, fit_category_probe, held_out_accuracy
from .cooccurrence import CoOccurrence
from .evaluate import (
    CompatibilityTask,
    CosineScorer,
    FitbTask,
    Scorer,
    evaluate_tasks,
    every_blank,
    figure_text,
    make_tasks,
    proportion_standard_error,
    split_outfits,
)
from .index import NEIGHBOUR_DEPTH, CompatibilityIndex
from .outfit_model import OutfitModel
from .photo_words import PhotoWords, fit_photo_words, held_out_closeness
from .progress import Progress, no_progress
from .scorers import (
    AUTO_SCORER,
    SCORER_CHOICES,
    OutfitScorer,
    SkuScorer,
    TypeAwareScorer,
    query_centres,
)
from .space import CompatibilitySpace
from .train import (
    CompatibilityHead,
    HeadTrainingConfig,
    ItemEncoder,
    train_compatibility_head,
    trained_space,
)
from .triplets import Verdicts

if TYPE_CHECKING:
    from .outfit_training import OutfitTrainingConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingOptions:
    """Everything a training's result depends on besides its data, read once (the glue: from
    the settings and the run's form), passed down, and stored whole in the version's manifest."""

    backbone: str = "outfits-tiny"
    pretrained: str = ""  # a tag, hf-hub:…, or a checkpoint file
    epochs: int = 30
    unfrozen_blocks: int = 0  # the image tower's last blocks tuned with the head
    tuned_epochs: int = 16  # the last epochs, those that tune them
    learning_rate: float = 2e-3
    cooccurrence_weight: float | None = None  # None: the blend learned on held-out blanks
    hub_penalty: float = 0.5  # each query less this times its category's centre (QueryCentres)
    validation_fraction: float = 0.15
    seed: int = 0
    neighbour_depth: int = NEIGHBOUR_DEPTH  # each item's best of each category; 0: none
    lists_on_workers: bool = False  # the lists computed by the glue's workers, not fit_version
    type_aware: bool = True  # False: one shared space for every pair of categories (ablation)
    scorer: str = TypeAwareScorer.kind  # one of SCORER_CHOICES
    outfit_epochs: int = 10  # the outfit-level model's, when trained (OutfitTrainingConfig's)
    bad_pair_weight: float = 2.0  # a stylist's bad pair against an outfit's triplet
    negatives_as_worn: bool = True  # the head's negatives drawn as the outfits wear items
    # With verdicts, a second head trained without them: the run reports both held-out scores.
    compare_without_verdicts: bool = True

    def head_training(self) -> HeadTrainingConfig:
        return HeadTrainingConfig(
            epochs=self.epochs,
            seed=self.seed,
            learning_rate=self.learning_rate,
            type_aware=self.type_aware,
            bad_pair_weight=self.bad_pair_weight,
            image_tower_epochs=self.tuned_epochs,
            negatives_as_worn=self.negatives_as_worn,
        )

    def outfit_training(self) -> "OutfitTrainingConfig":
        from .outfit_training import OutfitTrainingConfig  # torch: only where it trains

        return OutfitTrainingConfig(epochs=self.outfit_epochs, seed=self.seed)

    def as_manifest(self) -> dict[str, Any]:
        return asdict(self)


class Stopwatch:
    """Seconds spent in each stage of a job, for its report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, stage: str) -> dict[str, float]:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self.last, 1)
        self.last = now
        return self.seconds


@dataclass
class TrainingCatalog:
    """What a training learns from: each row's SKU, category and item vectors (with the image
    tower's top and trunk tokens when it is tuned), and outfits as lists of rows."""

    skus: list[str]
    categories: list[str]
    items: ItemEncoder
    outfits: list[list[int]]
    verdicts: Verdicts | None = None  # stylists' good and bad pairs, as rows


@dataclass
class FittedSpace:
    head: CompatibilityHead
    space: CompatibilitySpace
    losses: list[float]


@dataclass
class FittedVersion:
    """A model version's parts, not yet written: the glue saves them (ModelVersionWriter)."""

    head: CompatibilityHead
    items: ItemEncoder  # with the tuned image tower's top, if any
    index: CompatibilityIndex
    category_probe: CategoryProbe
    photo_words: PhotoWords
    metrics: dict[str, Any]
    comparison: dict[str, Any]  # against `served` on the same questions; {} without one
    manifest: dict[str, Any] = field(default_factory=dict)  # what the manifest records of it


def fit_space(
    catalog: TrainingCatalog,
    train_outfits: Sequence[Sequence[int]],
    options: TrainingOptions,
    progress: Progress = no_progress,
    check_cancelled: Callable[[], None] = lambda: None,
    after_epoch: Callable[[CompatibilityHead, int], None] | None = None,
) -> FittedSpace:
    """Train the compatibility head on `train_outfits` and project the catalog into its space."""
    category_names, codes = np.unique(catalog.categories, return_inverse=True)
    head, losses = train_compatibility_head(
        catalog.items,
        train_outfits,
        codes,
        options.head_training(),
        progress,
        after_epoch=after_epoch,
        check_cancelled=check_cancelled,
        verdicts=catalog.verdicts,
    )
    space = trained_space(head, catalog.items, codes, category_names.tolist(), train_outfits)
    return FittedSpace(head, space, losses)


def fit_version(
    catalog: TrainingCatalog,
    options: TrainingOptions,
    progress: Progress = no_progress,
    check_cancelled: Callable[[], None] = lambda: None,
    served: tuple[str, CompatibilityIndex] | None = None,
) -> FittedVersion:
    """Split the outfits, train on the training part, measure on the held-out part (beside
    `served`, the version now served, by name), fit the photo category probe and build the
    index. `check_cancelled()` is asked at every batch and may raise to abandon the run."""
    if options.scorer not in SCORER_CHOICES:  # a scorer that learns adds its fitting here
        raise ValueError(
            f"fit_version trains the scorers {', '.join(map(repr, SCORER_CHOICES))}, "
            f"not {options.scorer!r}."
        )
    if not 0 < options.validation_fraction < 1:
        raise ValueError(
            "validation_fraction is the share of outfits held out, between 0 and 1, "
            f"not {options.validation_fraction}."
        )
    stopwatch = Stopwatch()
    rng = np.random.default_rng(options.seed)
    train_rows, validation_rows = split_outfits(
        [[catalog.skus[row] for row in outfit] for outfit in catalog.outfits],
        options.validation_fraction,
    )
    train_outfits = [catalog.outfits[i] for i in train_rows]
    validation_outfits = [catalog.outfits[i] for i in validation_rows]
    catalog = replace(catalog, verdicts=without_held_out(catalog.verdicts, validation_outfits))
    # The comparison's head starts from the same image tower: a copy before this one tunes it.
    judged = catalog.verdicts is not None and len(catalog.verdicts) > 0
    untouched = (
        copy.deepcopy(catalog.items) if judged and options.compare_without_verdicts else None
    )
    fitted = fit_space(catalog, train_outfits, options, progress, check_cancelled)
    stopwatch.lap("training")
    outfit_model: OutfitModel | None = None
    outfit_losses: list[float] = []
    if options.scorer == AUTO_SCORER and not any(len(o) >= 3 for o in train_outfits):
        logger.info("no training outfit of 3 items or more: the outfit-level model is skipped")
    elif options.scorer != TypeAwareScorer.kind:
        from .outfit_training import train_outfit_model  # torch: only where it trains

        outfit_model, outfit_losses = train_outfit_model(
            fitted.space.vectors,
            catalog.categories,
            train_outfits,
            fitted.space.pair_weights,
            options.outfit_training(),
            progress,
            check_cancelled=check_cancelled,
        )
        stopwatch.lap("outfit model")

    progress("evaluating", 0, 1)
    item_vectors = catalog.items.fixed.numpy()  # the backbone's own vectors, before tuning
    validation = Validation.of(catalog, train_outfits, validation_outfits, rng)
    fixed = None if options.cooccurrence_weight is None else (options.cooccurrence_weight,)
    trained = validation.scorers(fitted.space, fixed, options.hub_penalty, outfit_model)
    metrics: dict[str, Any] = {}
    by_kind = {kind: validation.metrics(scorer) for kind, scorer in trained.items()}
    kind = options.scorer
    if kind == AUTO_SCORER:
        kind = serving_choice(by_kind)
    served_here = cast(TypeAwareScorer | OutfitScorer, trained[kind].scorer)
    blend = {
        name: served_here.options[name]
        for name in (
            "cooccurrence_weight",
            "second_order_weight",
            "overlap_weight",
            "exposure_weights",
        )
    }
    metrics |= blend | {"scorer": kind}
    if len(trained) > 1:  # what each scorer did, for the run's page and the ablation
        for name, results in by_kind.items():
            metrics |= {f"{figure}_{name}": value for figure, value in results.items()}
    named = scorers_to_validate(fitted.space, served_here, item_vectors, validation)
    for suffix, scorer in named.items():
        results = validation.metrics(scorer)
        metrics |= {f"{name}{suffix}": value for name, value in results.items()}
    if judged:
        pairs = trained[TypeAwareScorer.kind]
        metrics |= verdict_comparison(
            catalog,
            untouched,
            train_outfits,
            options,
            validation,
            by_kind[TypeAwareScorer.kind],
            cast(TypeAwareScorer, pairs.scorer).cooccurrence.weights.tolist(),
            progress,
            check_cancelled,
        )
        stopwatch.lap("without verdicts")
    metrics |= {"fitb_questions": len(validation.fitb)}
    metrics |= {"new_arrival_questions": len(validation.new_arrivals)}
    metrics |= {"compatibility_outfits": len(validation.compatibility)}
    comparison = validation.compared(named[""], served) if served else {}
    metrics["final_loss"] = fitted.losses[-1]
    # What a shopper's photo shows: a linear probe on the backbone's own image vectors, and
    # the words such a picture goes with.
    image_vectors = item_vectors[:, : item_vectors.shape[1] // 2]
    category_probe = fit_category_probe(image_vectors, catalog.categories)
    text_vectors = item_vectors[:, image_vectors.shape[1] :]
    photo_words = fit_photo_words(image_vectors, text_vectors)
    metrics["photo_words_cosine"] = held_out_closeness(image_vectors, text_vectors)
    metrics["category_accuracy"] = held_out_accuracy(image_vectors, catalog.categories)
    progress("evaluating", 1, 1)
    stopwatch.lap("evaluating")
    logger.info(
        "evaluation: FITB %s on %d questions, compatibility AUC %s",
        figure_text(metrics["fitb"]),
        metrics["fitb_questions"],
        figure_text(metrics["auc"]),
    )  # every metric is kept on the run and its version

    progress("indexing", 0, len(catalog.skus))
    index = CompatibilityIndex.build(
        catalog.skus,
        catalog.categories,
        fitted.space.vectors,
        catalog.outfits,
        cooccurrence_weight=float(blend["cooccurrence_weight"]),
        second_order_weight=float(blend["second_order_weight"]),
        overlap_weight=float(blend["overlap_weight"]),
        exposure_weights=blend["exposure_weights"],
        pair_weights=fitted.space.pair_weights,
        hub_penalty=options.hub_penalty,
        neighbour_depth=0 if options.lists_on_workers else options.neighbour_depth,
        progress=progress,
        outfit_model=outfit_model if kind == OutfitScorer.kind else None,
    )
    stopwatch.lap("indexing")
    return FittedVersion(
        head=fitted.head,
        items=catalog.items,
        index=index,
        category_probe=category_probe,
        photo_words=photo_words,
        metrics=metrics,
        comparison=comparison,
        manifest={
            "item_count": len(catalog.skus),
            "outfit_count": len(catalog.outfits),
            "train_outfit_count": len(train_outfits),
            "item_vector_dim": int(item_vectors.shape[1]),
            "unfrozen_blocks": options.unfrozen_blocks,
            "compatibility_dim": int(fitted.space.vectors.shape[1]),
            "category_pairs_weighted": len(fitted.space.pair_weights),
            "options": options.as_manifest(),
            "training": asdict(options.head_training()),
            **(
                {
                    "outfit_training": asdict(options.outfit_training()),
                    "outfit_losses": outfit_losses,
                }
                if outfit_model is not None
                else {}
            ),
            "scorer": {"kind": index.scorer.kind, "options": index.scorer.options},
            "epoch_losses": fitted.losses,
            "metrics": metrics,
            "seconds": stopwatch.seconds,
        },
    )


def serving_choice(by_kind: dict[str, dict[str, float | None]]) -> str:
    """The scorer `auto` serves: the outfit-level model where one was trained, unless the pairs
    are better on the held-out new arrivals or on known items by more than two standard errors
    of that figure. On the training's own held-out questions the two are level within their
    noise (on Mango: ±2.3 points on new arrivals, about 440 outfits each asked thrice; ±1.5 on
    488 known items), so until 2026-12-08 a lead there, and the pairs on a tie, chose by
    chance; where one training served either, the outfit model answered more of the Mango
    split's warm questions (docs/model.md, "Now"). Without new-arrival questions: the better
    overall."""
    kinds = sorted(by_kind, key=lambda k: k == TypeAwareScorer.kind)  # the pairs come last
    if any(by_kind[k].get("fitb_cold") is None for k in kinds):
        return max(kinds, key=lambda k: by_kind[k].get("fitb") or 0.0)
    preferred, *others = kinds

    def beyond_noise(other: str, figure: str, questions: float) -> bool:
        mine, theirs = by_kind[preferred].get(figure), by_kind[other].get(figure)
        if mine is None or theirs is None or questions < 1:
            return False
        return theirs > mine + 2 * proportion_standard_error(mine, int(questions))

    # each held-out outfit with a new item is asked NEW_ARRIVAL_DRAWS times: that many outfits
    new_arrivals = (by_kind[preferred].get("fitb_cold_questions") or 0) / NEW_ARRIVAL_DRAWS
    known = by_kind[preferred].get("fitb_warm_questions") or 0
    for other in others:
        if beyond_noise(other, "fitb_cold", new_arrivals) or beyond_noise(
            other, "fitb_warm", known
        ):
            return other
    return preferred


def without_held_out(
    verdicts: Verdicts | None, validation_outfits: Sequence[Sequence[int]]
) -> Verdicts | None:
    """The verdicts on pairs no held-out outfit holds: a verdict on a held-out pair would
    give the answer away to the figures that measure the training."""
    if verdicts is None:
        return None
    held_out = {(a, b) for outfit in validation_outfits for a in outfit for b in outfit}

    def kept(pairs: np.ndarray) -> np.ndarray:
        keep = [(int(a), int(b)) not in held_out for a, b in pairs]
        return pairs[np.asarray(keep, dtype=bool)] if len(pairs) else pairs

    return Verdicts(kept(verdicts.good), kept(verdicts.bad))


def verdict_comparison(
    catalog: TrainingCatalog,
    untouched: ItemEncoder | None,
    train_outfits: Sequence[Sequence[int]],
    options: TrainingOptions,
    validation: "Validation",
    with_verdicts: dict[str, Any],
    blend: Sequence[float],
    progress: Progress = no_progress,
    check_cancelled: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """How many verdicts the training used, and the held-out figures of the type-aware scorer
    trained with them and (options.compare_without_verdicts) of a head trained without, from
    the `untouched` item encoder (the image tower as it was before the first training)."""
    assert catalog.verdicts is not None
    found: dict[str, Any] = {
        "verdicts_good": len(catalog.verdicts.good),
        "verdicts_bad": len(catalog.verdicts.bad),
        **{f"{name}_with_verdicts": value for name, value in with_verdicts.items()},
    }
    if options.compare_without_verdicts and untouched is not None:
        baseline = replace(catalog, items=untouched, verdicts=None)
        plain = fit_space(baseline, train_outfits, options, progress, check_cancelled)
        scorers = validation.scorers(plain.space, blend, options.hub_penalty)
        scorer = scorers[TypeAwareScorer.kind]
        found |= {
            f"{name}_without_verdicts": value for name, value in validation.metrics(scorer).items()
        }
    return found


def scorers_to_validate(
    space: CompatibilitySpace,
    served: TypeAwareScorer | OutfitScorer,
    backbone_vectors: np.ndarray,
    validation: "Validation",
) -> dict[str, Scorer]:
    """The named scorers a version's metrics report, by the suffix of their figures: the
    served score, the learned space without the curated bonus (what a new arrival gets) and
    the raw backbone vectors (the transfer-learning baseline)."""
    raw = backbone_vectors / np.linalg.norm(backbone_vectors, axis=1, keepdims=True)
    return {
        "": validation.by_sku(served, space),
        "_content_only": validation.by_sku(served.content_only(), space),
        "_backbone_only": CosineScorer(dict(zip(validation.row_of, raw, strict=True))),
    }


NEW_ARRIVAL_DRAWS = 3  # questions per held-out outfit with a new item: fewer, noisier choices
BLEND_DRAWS = 3  # every held-out item as the blank, thrice: the questions the blend is fitted on


@dataclass
class Validation:
    """The held-out questions of a training (the same tasks `manage.py evaluate` reads from
    files): FITB, compatibility and Recall@10. A question is warm when its answer is in a
    training outfit. New arrivals get questions of their own, asked as a store meets them (and
    as benchmarks/mango_split.py asks them): the blank an item no training outfit holds, the
    wrong answers other such items of its family, each held-out outfit with one asked
    NEW_ARRIVAL_DRAWS times. Among the mixed questions they are few (about 100 of 584 on
    Mango: ±5 points) and answered against known items the curated pairs lift: too few and
    too unlike a store's new arrivals to choose a scorer by. The blend of the outfits' signals
    is fitted on `blanks`: every item of each held-out outfit as the blank, BLEND_DRAWS times
    (about 9,700 questions on Mango)."""

    fitb: list[FitbTask]
    new_arrivals: list[FitbTask]
    compatibility: list[CompatibilityTask]
    members: dict[str, list[str]]  # each category's SKUs, for Recall@K
    warm: set[str]
    train_outfits: list[list[str]]
    row_of: dict[str, int]
    categories: list[str]
    blanks: list[FitbTask] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        catalog: TrainingCatalog,
        train_outfits: list[list[int]],
        validation_outfits: list[list[int]],
        rng: np.random.Generator,
    ) -> "Validation":
        skus = catalog.skus
        category_of = dict(zip(skus, catalog.categories, strict=True))
        members: dict[str, list[str]] = {}
        for sku, category in category_of.items():
            members.setdefault(category, []).append(sku)
        held_out = [[skus[row] for row in outfit] for outfit in validation_outfits]
        fitb, compatibility = make_tasks(held_out, category_of, rng)
        train_skus = [[skus[row] for row in outfit] for outfit in train_outfits]
        warm = {sku for outfit in train_skus for sku in outfit}
        new = sorted({sku for outfit in held_out for sku in outfit if sku not in warm})
        new_arrivals = [
            task
            for _ in range(NEW_ARRIVAL_DRAWS)
            for task in make_tasks(held_out, category_of, rng, answer_pool=new)[0]
        ]
        blanks = [
            task for _ in range(BLEND_DRAWS) for task in every_blank(held_out, category_of, rng)
        ]
        return cls(
            fitb,
            new_arrivals,
            compatibility,
            members,
            warm,
            train_skus,
            {sku: row for row, sku in enumerate(skus)},
            catalog.categories,
            blanks,
        )

    def scorers(
        self,
        space: CompatibilitySpace,
        blend: Sequence[float] | None,
        hub_penalty: float = 0.0,
        outfit_model: OutfitModel | None = None,
    ) -> dict[str, SkuScorer]:
        """The scorers a training may serve, by kind, each at the weights of its `blend` of
        the outfits' signals (cooccurrence.SIGNALS; those not given 0; None: the weights
        fitted on the held-out blanks, blend_weights), with the training outfits as curated
        pairs and as the centres of the `hub_penalty`: the type-aware one and, given its
        model, the outfit-level one."""
        train_rows = [[self.row_of[sku] for sku in outfit] for outfit in self.train_outfits]
        centres = query_centres(
            space.pair_weights, space.vectors, self.categories, train_rows, hub_penalty
        )

        evidence = CoOccurrence.from_outfits(train_rows, 0.0)

        def blended(weights: Sequence[float], model: OutfitModel | None) -> SkuScorer:
            pairs = TypeAwareScorer(space.pair_weights, evidence.weighted(*weights), centres)
            return self.by_sku(pairs if model is None else OutfitScorer(pairs, model), space)

        @functools.cache
        def signals() -> BlankSignals:  # the walk once, for every scorer fitted
            return self.blank_signals(evidence)

        def best(model: OutfitModel | None) -> SkuScorer:
            if blend is not None:
                return blended(blend, model)
            return blended(self.blend_weights(blended((0.0,), model), signals()), model)

        found = {TypeAwareScorer.kind: best(None)}
        if outfit_model is not None:
            found[OutfitScorer.kind] = best(outfit_model)
        return found

    def blank_signals(self, evidence: CoOccurrence) -> BlankSignals:
        """The outfits' signals of the held-out blanks' answers, by `evidence`."""
        return blank_signals(evidence, self.row_of, self.blanks)

    def blend_weights(self, content: SkuScorer, signals: BlankSignals) -> tuple[float, ...]:
        """The weights of the outfits' signals (cooccurrence.SIGNALS) beside `content`'s score,
        fitted on the held-out blanks (blend.py), their `signals` computed once."""
        return fitted_blend(*blend_features(content, signals))

    def by_sku(
        self, scorer: TypeAwareScorer | OutfitScorer, space: CompatibilitySpace
    ) -> SkuScorer:
        """`scorer` over `space`'s items, by this catalog's SKUs."""
        return SkuScorer(scorer, space.vectors, self.categories, self.row_of)

    def metrics(
        self,
        scorer: Scorer,
        fitb: list[FitbTask] | None = None,
        compatibility: list[CompatibilityTask] | None = None,
        members: dict[str, list[str]] | None = None,
        new_arrivals: list[FitbTask] | None = None,
    ) -> dict[str, float | None]:
        """The figures staff compare versions by: FITB overall, on new arrivals (their own
        questions) and on known items, AUC, Recall@10."""
        fitb = self.fitb if fitb is None else fitb
        compatibility = self.compatibility if compatibility is None else compatibility
        members = self.members if members is None else members
        cold = self.new_arrivals if new_arrivals is None else new_arrivals
        results = evaluate_tasks(scorer, fitb, compatibility, members)
        warm = [task for task in fitb if task.answers[task.correct] in self.warm]

        def fitb_of(questions: list[FitbTask]) -> float | None:
            accuracy = evaluate_tasks(scorer, questions).fitb_accuracy
            return None if np.isnan(accuracy) else accuracy

        return {
            "fitb": None if np.isnan(results.fitb_accuracy) else results.fitb_accuracy,
            "fitb_cold": fitb_of(cold),
            "fitb_cold_questions": len(cold),
            "fitb_warm": fitb_of(warm),
            "fitb_warm_questions": len(warm),
            "auc": None if np.isnan(results.compatibility_auc) else results.compatibility_auc,
            "recall_at_10": (results.recall_at or {}).get(10),
        }

    def compared(self, new: Scorer, served: tuple[str, CompatibilityIndex]) -> dict[str, Any]:
        """The new and the served version on the held-out questions whose items both know.
        The served version gets this training's outfits as its curated pairs (at its own
        weight): its stored ones may include today's held-out outfits."""
        name, index = served
        known = index.row_of_sku

        def both_know(items: Sequence[str]) -> bool:
            return all(item in known for item in items)

        fitb = [task for task in self.fitb if both_know([*task.question, *task.answers])]
        new_arrivals = [
            task for task in self.new_arrivals if both_know([*task.question, *task.answers])
        ]
        compatibility = [task for task in self.compatibility if both_know(task.items)]
        members = {c: [sku for sku in skus if sku in known] for c, skus in self.members.items()}
        curated = [[known[sku] for sku in outfit if sku in known] for outfit in self.train_outfits]
        old = index.sku_scorer(index.scorer.curated_by(curated))
        return {
            "active_version": name,
            "questions": len(fitb),
            "new": self.metrics(new, fitb, compatibility, members, new_arrivals),
            "active": self.metrics(old, fitb, compatibility, members, new_arrivals),
        }
