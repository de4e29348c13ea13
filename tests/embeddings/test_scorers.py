"""The scorer seam: the index ranks only through its scorer, a version records which one it
was built with, and a second scorer needs nothing but its class and its registration. Also
the engine's training pipeline: its options stored whole, its figures repeatable."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from embeddings.engine import scorers
from embeddings.engine.cooccurrence import CoOccurrence
from embeddings.engine.fit import NEW_ARRIVAL_DRAWS, TrainingCatalog, TrainingOptions, fit_version
from embeddings.engine.index import ITEMS_FILE, CompatibilityIndex, build_category_index
from embeddings.engine.layered import Rows
from embeddings.engine.scorers import TypeAwareScorer, load_scorer
from embeddings.engine.space import PairWeights


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


class FarthestScorer:
    """A scorer unlike the type-aware one in every respect: it prefers the least similar item
    (score = −cosine), and its one option is a scale kept in a file of its own."""

    kind: ClassVar[str] = "farthest"
    FILE = "farthest.json"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    @property
    def options(self) -> dict[str, Any]:
        return {"scale": self.scale}

    @property
    def partners(self) -> Mapping[int, Mapping[int, int]]:
        return {}

    def query(self, vector: np.ndarray, category: str, other: str) -> np.ndarray:
        return -self.scale * vector

    def queries(self, vectors: np.ndarray, categories: Sequence[str], other: str) -> np.ndarray:
        return -self.scale * np.asarray(vectors, dtype=np.float32)

    def penalties(self, vectors: np.ndarray, category: str) -> np.ndarray:
        return np.zeros(len(vectors), dtype=np.float32)

    def scores(
        self,
        vectors: Rows,
        categories: Sequence[str],
        anchors: Sequence[int],
        candidates: Sequence[int],
        candidate_category: str | None = None,
    ) -> np.ndarray:
        cosines = np.asarray(vectors[list(candidates)]) @ np.asarray(vectors[list(anchors)]).T
        return (-self.scale * cosines.mean(axis=1)).astype(np.float32)

    def outfit_scores(
        self, vectors: Rows, categories: Sequence[str], outfits: Sequence[Sequence[int]]
    ) -> np.ndarray:
        return np.array([scorers.leave_one_out(self, vectors, categories, o) for o in outfits])

    def curated_by(self, outfits: Sequence[Sequence[int]]) -> "FarthestScorer":
        return self

    def renumbered(self, new_row: np.ndarray) -> "FarthestScorer":
        return self

    def borrowing(self, fallbacks: Mapping[str, str]) -> "FarthestScorer":
        return self

    def save(self, directory: Path) -> None:
        (directory / self.FILE).write_text(json.dumps({"scale": self.scale}))

    @staticmethod
    def files() -> set[str]:
        return {FarthestScorer.FILE}

    @classmethod
    def load(cls, directory: Path, options: Mapping[str, Any]) -> "FarthestScorer":
        return cls(json.loads((directory / cls.FILE).read_text())["scale"])


RNG = np.random.default_rng(3)
CATEGORIES = ["Tops"] * 30 + ["Trousers"] * 30 + ["Shoes"] * 30
VECTORS = unit(RNG.normal(size=(90, 8)))
SKUS = [f"SKU{n}" for n in range(90)]
OUTFITS = [[n, 30 + n, 60 + n] for n in range(30)]


def index_with(scorer: scorers.Scorer, depth: int = 0) -> CompatibilityIndex:
    rows: dict[str, list[int]] = {}
    for row, category in enumerate(CATEGORIES):
        rows.setdefault(category, []).append(row)
    index = CompatibilityIndex(
        SKUS,
        CATEGORIES,
        VECTORS,
        {c: build_category_index(VECTORS[r], np.asarray(r)) for c, r in rows.items()},
        {"Tops": ["Trousers", "Shoes"], "Trousers": ["Tops", "Shoes"], "Shoes": ["Tops"]},
        scorer,
    )
    if depth:
        index.neighbours = index.computed_neighbours(depth)
    return index


def brute_force(index: CompatibilityIndex, row: int, category: str, count: int) -> list[str]:
    members = [r for r, c in enumerate(CATEGORIES) if c == category and r != row]
    scores = index.scorer.scores(VECTORS, CATEGORIES, [row], members)
    return [SKUS[members[i]] for i in np.argsort(-scores, kind="stable")[:count]]


@pytest.mark.parametrize("depth", [0, 8], ids=["searched", "computed lists"])
def test_a_second_scorer_serves_through_the_index_and_comes_back_from_disk(
    tmp_path, monkeypatch, depth
):
    monkeypatch.setitem(scorers.SCORERS, FarthestScorer.kind, FarthestScorer)
    index = index_with(FarthestScorer(scale=2.0), depth)
    for row in (0, 31, 65):
        for category in index.complements_of(CATEGORIES[row]):
            found = [sku for sku, _ in index.nearest(SKUS[row], category, 5)]
            assert found == brute_force(index, row, category, 5)
    assert [s for s, _, _ in index.candidates("SKU0", "Shoes", 3)] == brute_force(
        index, 0, "Shoes", 3
    )
    index.save(tmp_path)
    assert json.loads((tmp_path / ITEMS_FILE).read_text())["scorer"] == {
        "kind": "farthest",
        "options": {"scale": 2.0},
    }
    assert CompatibilityIndex.owns(FarthestScorer.FILE)  # the version's checksums cover it
    loaded = CompatibilityIndex.load(tmp_path)
    assert isinstance(loaded.scorer, FarthestScorer) and loaded.scorer.scale == 2.0
    assert loaded.nearest("SKU31", "Tops", 5) == index.nearest("SKU31", "Tops", 5)


def test_the_type_aware_scorer_is_the_served_score(tmp_path):
    weights = PairWeights(["Shoes", "Tops", "Trousers"], np.array([[1, 2]]), RNG.random((1, 8)))
    scorer = TypeAwareScorer(weights, CoOccurrence.from_outfits(OUTFITS, 0.5))
    index = index_with(scorer)
    for row in (0, 31):
        for category in index.complements_of(CATEGORIES[row]):
            assert [s for s, _ in index.nearest(SKUS[row], category, 6)] == brute_force(
                index, row, category, 6
            )
    # Curated partners are lifted by the bonus and said to be curated.
    candidates = index.candidates("SKU0", "Trousers", 5)
    assert ("SKU30", True) in [(sku, curated) for sku, _, curated in candidates]
    index.save(tmp_path)
    assert json.loads((tmp_path / ITEMS_FILE).read_text())["scorer"] == {
        "kind": "type_aware",
        "options": {
            "cooccurrence_weight": 0.5,
            "second_order_weight": 0.0,
            "overlap_weight": 0.0,
            "exposure_weights": [0.0, 0.0, 0.0],
            "category_pairs_weighted": 1,
            "hub_penalty": 0.0,
        },
    }


def test_the_hub_penalty_takes_each_categorys_centre_from_every_query_and_is_served(tmp_path):
    """Each category's centre is the mean query (pair weights applied, averaged over the
    anchors) of the outfits holding it; the score of every candidate loses weight · centre ·
    candidate, one anchor or several, searched or computed, and the version keeps it."""
    weights = PairWeights(["Shoes", "Tops", "Trousers"], np.array([[1, 2]]), RNG.random((1, 8)))
    outfits = [*OUTFITS, [3, 40], [5, 65]]  # two-item outfits: fewer anchors
    centres = scorers.query_centres(weights, VECTORS, CATEGORIES, outfits, 0.5)

    def query(row: int, wanted: str) -> np.ndarray:
        w = weights.between(CATEGORIES[row], wanted)
        return VECTORS[row] * w if w is not None else VECTORS[row]

    for wanted in ("Tops", "Trousers", "Shoes"):
        by_hand = np.mean(
            [
                np.mean([query(r, wanted) for r in outfit if CATEGORIES[r] != wanted], axis=0)
                for outfit in outfits
                if any(CATEGORIES[r] == wanted for r in outfit)
            ],
            axis=0,
        )
        np.testing.assert_allclose(centres.centres[wanted], by_hand, rtol=1e-5, atol=1e-6)
    plain = TypeAwareScorer(weights, CoOccurrence.from_outfits(OUTFITS, 0.5))
    penalised = TypeAwareScorer(weights, CoOccurrence.from_outfits(OUTFITS, 0.5), centres)
    shoes = list(range(60, 90))
    for anchors in ([0], [0, 31], [31, 2]):
        np.testing.assert_allclose(
            penalised.scores(VECTORS, CATEGORIES, anchors, shoes),
            plain.scores(VECTORS, CATEGORIES, anchors, shoes)
            - 0.5 * VECTORS[shoes] @ centres.centres["Shoes"],
            rtol=1e-5,
            atol=1e-6,
        )
    np.testing.assert_allclose(
        penalised.penalties(VECTORS[shoes], "Shoes"),
        0.5 * VECTORS[shoes] @ centres.centres["Shoes"],
    )
    np.testing.assert_allclose(  # new arrivals, ranked by content alone, get it too
        penalised.content_only().scores(VECTORS, CATEGORIES, [0, 31], shoes),
        plain.content_only().scores(VECTORS, CATEGORIES, [0, 31], shoes)
        - 0.5 * VECTORS[shoes] @ centres.centres["Shoes"],
        rtol=1e-5,
        atol=1e-6,
    )
    for depth in (0, 8):  # searched, and the computed lists
        index = index_with(penalised, depth)
        for row in (0, 31, 65):
            for category in index.complements_of(CATEGORIES[row]):
                found = [sku for sku, _ in index.nearest(SKUS[row], category, 6)]
                assert found == brute_force(index, row, category, 6)
    index.save(tmp_path)
    loaded = CompatibilityIndex.load(tmp_path)
    assert loaded.scorer.options["hub_penalty"] == 0.5
    assert loaded.nearest("SKU31", "Shoes", 5) == index.nearest("SKU31", "Shoes", 5)
    scorers.QueryCentres(centres.centres, 0.3).save(tmp_path / "other.npz")  # any weight, as set
    assert scorers.QueryCentres.load(tmp_path / "other.npz").weight == 0.3
    # A version saved before the penalty loads without it.
    (tmp_path / scorers.QUERY_CENTRES_FILE).unlink()
    assert CompatibilityIndex.load(tmp_path).scorer.options["hub_penalty"] == 0.0


def test_a_version_saved_before_scorers_were_named_loads_type_aware_and_an_unknown_kind_is_refused(
    tmp_path,
):
    index_with(TypeAwareScorer()).save(tmp_path)
    items = json.loads((tmp_path / ITEMS_FILE).read_text())
    del items["scorer"]
    (tmp_path / ITEMS_FILE).write_text(json.dumps(items))
    assert isinstance(CompatibilityIndex.load(tmp_path).scorer, TypeAwareScorer)
    with pytest.raises(ValueError, match="unknown scorer 'gradient_boosted': this code knows"):
        load_scorer(tmp_path, {"kind": "gradient_boosted", "options": {}})


def test_fit_version_stores_its_options_whole_and_gives_the_same_figures_twice():
    """The engine's pipeline alone (no Django): what it was asked is in its manifest, every
    named scorer is measured, and a second fit with the same options measures the same."""
    from embeddings.engine.train import ItemEncoder

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(90, 16)).astype(np.float32)
    for outfit in OUTFITS:  # items of an outfit share a direction: something to learn
        vectors[outfit] += 2 * rng.normal(size=16).astype(np.float32)
    catalog = TrainingCatalog(SKUS, CATEGORIES, ItemEncoder(vectors), [list(o) for o in OUTFITS])
    options = TrainingOptions(epochs=3, neighbour_depth=4, validation_fraction=0.3)
    first = fit_version(catalog, options)
    assert first.manifest["options"] == asdict(options)
    assert first.manifest["scorer"]["kind"] == "type_aware"
    assert first.index.neighbours is not None and first.index.neighbours.shape[2] == 4
    for suffix in ("", "_content_only", "_backbone_only"):
        assert first.metrics[f"fitb{suffix}"] is not None
    blend = ("cooccurrence_weight", "second_order_weight", "overlap_weight", "exposure_weights")
    fitted = [first.metrics[n] for n in blend]  # "auto": fitted on the held-out blanks
    assert all(np.isfinite(fitted[:3])) and len(fitted[3]) == 3 and all(np.isfinite(fitted[3]))
    assert any(fitted[:3]) or any(fitted[3])  # the outfits' evidence weighs something
    served = first.index.scorer.options
    assert [served[n] for n in blend] == fitted
    again = fit_version(catalog, options)
    assert again.metrics == first.metrics
    fixed = fit_version(catalog, TrainingOptions(epochs=3, cooccurrence_weight=1.5))
    assert fixed.metrics["cooccurrence_weight"] == 1.5
    assert fixed.index.scorer.options["cooccurrence_weight"] == 1.5
    assert fixed.metrics["second_order_weight"] == fixed.metrics["overlap_weight"] == 0.0
    with pytest.raises(ValueError, match="trains the scorers 'auto', .*not 'farthest'"):
        fit_version(catalog, TrainingOptions(epochs=1, scorer="farthest"))


def served_by_the_rule(metrics: dict) -> str:
    """`auto`'s rule, written out again: the outfit model, unless the pairs are better on new
    arrivals (three questions an outfit) or on known items by more than two standard errors."""
    pairs, model = "type_aware", "outfit_transformer"
    if metrics[f"fitb_cold_{pairs}"] is None or metrics[f"fitb_cold_{model}"] is None:
        better = (metrics[f"fitb_{pairs}"] or 0.0) > (metrics[f"fitb_{model}"] or 0.0)
        return pairs if better else model  # the outfit model on a tie
    for figure, questions in (
        ("fitb_cold", metrics[f"fitb_cold_questions_{model}"] / NEW_ARRIVAL_DRAWS),
        ("fitb_warm", metrics[f"fitb_warm_questions_{model}"]),
    ):
        p, q = metrics[f"{figure}_{model}"], metrics[f"{figure}_{pairs}"]
        known = p is not None and q is not None and int(questions) >= 1
        if known and q > p + 2 * (p * (1 - p) / int(questions)) ** 0.5:
            return pairs
    return model


def test_auto_serves_the_outfit_model_unless_the_pairs_lead_beyond_noise():
    """The outfit model serves on a tie or a lead inside the noise; the pairs only by more than
    two standard errors, on new arrivals (each outfit asked thrice) or on known items."""
    from embeddings.engine.fit import serving_choice

    def figures(cold: float | None, warm: float, fitb: float = 0.8) -> dict:
        return {
            "fitb": fitb,
            "fitb_cold": cold,
            "fitb_cold_questions": 300,
            "fitb_warm": warm,
            "fitb_warm_questions": 400,
        }

    # 2 standard errors: of 0.86 on 400 questions 3.5 points, of 0.57 on 100 outfits 9.9
    outfit_model, pairs = "outfit_transformer", "type_aware"
    for pairs_figures, served in [
        (figures(0.57, 0.86), outfit_model),  # a tie
        (figures(0.60, 0.88), outfit_model),  # leads inside the noise on both
        (figures(0.57, 0.90), pairs),  # beyond it on known items
        (figures(0.68, 0.86), pairs),  # beyond it on new arrivals
        (figures(0.66, 0.86), outfit_model),  # 9 points on 100 outfits: inside
    ]:
        by_kind = {pairs: pairs_figures, outfit_model: figures(0.57, 0.86)}
        assert serving_choice(by_kind) == served, pairs_figures
        assert (
            served_by_the_rule(
                {
                    f"{name}_{kind}": value
                    for kind, f in by_kind.items()
                    for name, value in f.items()
                }
            )
            == served
        )
    assert serving_choice({pairs: figures(0.9, 0.9)}) == pairs  # the only one trained
    no_new_arrivals = {pairs: figures(None, 0.9, 0.7), outfit_model: figures(None, 0.8, 0.75)}
    assert serving_choice(no_new_arrivals) == outfit_model
    no_new_arrivals[pairs]["fitb"] = 0.8
    assert serving_choice(no_new_arrivals) == pairs


@pytest.mark.parametrize("asked", ["outfit_transformer", "auto"])
def test_fit_version_trains_the_outfit_level_scorer_and_auto_serves_by_the_rule(tmp_path, asked):
    from embeddings.engine.train import ItemEncoder

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(90, 16)).astype(np.float32)
    for outfit in OUTFITS:
        vectors[outfit] += 2 * rng.normal(size=16).astype(np.float32)
    catalog = TrainingCatalog(SKUS, CATEGORIES, ItemEncoder(vectors), [list(o) for o in OUTFITS])
    fitted = fit_version(
        catalog, TrainingOptions(epochs=3, outfit_epochs=2, scorer=asked, validation_fraction=0.3)
    )
    metrics = fitted.metrics
    both = {kind: metrics[f"fitb_{kind}"] for kind in ("type_aware", "outfit_transformer")}
    if asked == "auto":
        assert metrics["scorer"] == served_by_the_rule(metrics)
    else:
        assert metrics["scorer"] == "outfit_transformer"
    assert metrics["fitb"] == both[metrics["scorer"]]
    assert fitted.manifest["scorer"]["kind"] == metrics["scorer"]
    assert len(fitted.manifest["outfit_losses"]) == 2
    fitted.index.save(tmp_path)
    assert CompatibilityIndex.load(tmp_path).scorer.kind == metrics["scorer"]


def test_auto_serves_pairs_where_no_outfit_has_three_items_and_asking_for_the_model_says_why():
    from embeddings.engine.train import ItemEncoder

    vectors = np.random.default_rng(1).normal(size=(90, 16)).astype(np.float32)
    pairs_only = [[n, 30 + n] for n in range(30)]
    catalog = TrainingCatalog(SKUS, CATEGORIES, ItemEncoder(vectors), pairs_only)
    fitted = fit_version(catalog, TrainingOptions(epochs=2, scorer="auto"))
    assert (
        fitted.metrics["scorer"] == "type_aware"
        and "outfit model" not in fitted.manifest["seconds"]
    )
    with pytest.raises(ValueError, match="needs outfits of three or more items"):
        fit_version(catalog, TrainingOptions(epochs=2, scorer="outfit_transformer"))


@pytest.mark.parametrize("share", [0.0, 1.0, 1.5])
def test_a_held_out_share_outside_zero_to_one_is_refused_before_any_training(share):
    from embeddings.engine.train import ItemEncoder

    vectors = np.asarray(VECTORS, dtype=np.float32)
    catalog = TrainingCatalog(SKUS, CATEGORIES, ItemEncoder(vectors), [list(o) for o in OUTFITS])
    with pytest.raises(ValueError, match=f"between 0 and 1, not {share}"):
        fit_version(catalog, TrainingOptions(epochs=2, validation_fraction=share))


def test_fit_version_reports_the_verdicts_it_used_and_the_figures_without_them():
    from embeddings.engine.train import ItemEncoder
    from embeddings.engine.triplets import Verdicts

    vectors = np.asarray(VECTORS, dtype=np.float32)
    verdicts = Verdicts.of(good=[(0, 31)], bad=[(1, 32), (2, 63)])
    catalog = TrainingCatalog(
        SKUS, CATEGORIES, ItemEncoder(vectors), [list(o) for o in OUTFITS], verdicts
    )
    fitted = fit_version(catalog, TrainingOptions(epochs=2, validation_fraction=0.3))
    assert (fitted.metrics["verdicts_good"], fitted.metrics["verdicts_bad"]) == (1, 2)
    for figure in ("fitb", "auc"):
        assert fitted.metrics[f"{figure}_with_verdicts"] is not None
        assert fitted.metrics[f"{figure}_without_verdicts"] is not None
    assert "without verdicts" in fitted.manifest["seconds"]
    silent = fit_version(
        TrainingCatalog(SKUS, CATEGORIES, ItemEncoder(vectors), [list(o) for o in OUTFITS]),
        TrainingOptions(epochs=2, validation_fraction=0.3),
    )
    assert "verdicts_good" not in silent.metrics


def test_verdicts_on_held_out_pairs_are_left_out_of_the_training():
    from embeddings.engine.fit import without_held_out
    from embeddings.engine.triplets import Verdicts

    verdicts = Verdicts.of(good=[(0, 30), (1, 31)], bad=[(2, 62), (3, 63)])
    kept = without_held_out(verdicts, [[0, 30, 60], [2, 32, 62]])
    assert kept.good.tolist() == [[1, 31]] and kept.bad.tolist() == [[3, 63]]
    assert without_held_out(None, [[0, 30]]) is None


def test_new_arrivals_are_asked_as_a_store_meets_them():
    """The held-out questions on new arrivals: the blank an item no training outfit holds, the
    wrong answers too, each held-out outfit asked more than once; `fitb_cold` is scored on
    them, not on the few mixed questions whose answer happens to be new."""
    from embeddings.engine.fit import NEW_ARRIVAL_DRAWS, Validation
    from embeddings.engine.train import ItemEncoder

    outfits = [[n, 30 + n, 60 + n] for n in range(30)] + [[n, 30 + (n + 1) % 30] for n in range(30)]
    held_out = [[n, 30 + n, 60 + n] for n in range(20, 30)]  # shoes 80-89 are in no other
    train = [o for o in outfits if o not in held_out]
    catalog = TrainingCatalog(SKUS, CATEGORIES, ItemEncoder(VECTORS), outfits)
    validation = Validation.of(catalog, train, held_out, np.random.default_rng(0))

    new = {SKUS[row] for row in range(80, 90)}
    assert len(validation.new_arrivals) == NEW_ARRIVAL_DRAWS * len(held_out)
    for task in validation.new_arrivals:
        assert set(task.answers) <= new and task.category == "Shoes"
    assert len({(t.question, t.answers) for t in validation.new_arrivals}) > len(held_out)

    # A scorer that knows only the new shoes' right outfits: perfect on new arrivals.
    right = {(SKUS[20 + k], SKUS[80 + k]) for k in range(10)}

    def knows_the_shoes(question: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        return np.array([float((question[0], c) in right) for c in candidates])

    class Scorer:
        __contains__ = SKUS.__contains__
        __call__ = staticmethod(knows_the_shoes)

    figures = validation.metrics(Scorer())  # type: ignore[arg-type]
    assert figures["fitb_cold"] == 1.0
