"""The outfit-level scorer: its numpy forward pass (what web processes run) is the torch one it
was trained as, an untrained one scores exactly as the type-aware scorer, a trained one learns
what pairs cannot (an outfit whose parts only make sense together), and it serves and comes
back from disk through the index like any scorer."""

import json

import numpy as np
import pytest
import torch

from embeddings.engine.cooccurrence import CoOccurrence
from embeddings.engine.evaluate import FitbTask, evaluate_tasks
from embeddings.engine.index import ITEMS_FILE, CompatibilityIndex, build_category_index
from embeddings.engine.outfit_model import OutfitModel, OutfitModelShape
from embeddings.engine.outfit_training import (
    OutfitNetwork,
    OutfitTrainingConfig,
    train_outfit_model,
)
from embeddings.engine.scorers import OutfitScorer, SkuScorer, TypeAwareScorer
from embeddings.engine.space import PairWeights

CATEGORY_NAMES = ["Shoes", "Tops", "Trousers"]


def random_network(dim: int = 16, seed: int = 0) -> OutfitNetwork:
    """A network with every weight random (an untrained one outputs zeros: nothing to compare)."""
    torch.manual_seed(seed)
    network = OutfitNetwork(OutfitModelShape(dim, layers=2, heads=4, hidden=32), 3, dropout=0.1)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0, 0.3)
    return network.eval()


def test_the_numpy_forward_pass_equals_the_torch_one_padded_or_not(tmp_path):
    network = random_network()
    model = network.to_model(CATEGORY_NAMES)
    rng = np.random.default_rng(0)
    anchors = rng.normal(size=(5, 3, 16)).astype(np.float32)
    codes = rng.integers(0, 4, size=(5, 3))
    targets = rng.integers(1, 4, size=5)
    with torch.no_grad():
        expected = network(
            torch.from_numpy(anchors), torch.from_numpy(codes), torch.from_numpy(targets)
        ).numpy()
    assert np.abs(expected).max() > 0.1  # a real output, not the zero of an untrained model
    np.testing.assert_allclose(model.corrections(anchors, codes, targets), expected, atol=1e-4)
    # Padding in training is invisible: an outfit of 2 padded to 3 is the outfit of 2.
    padding = np.zeros((5, 3), dtype=bool)
    padding[:, 2] = True
    with torch.no_grad():
        padded = network(
            torch.from_numpy(anchors),
            torch.from_numpy(codes),
            torch.from_numpy(targets),
            torch.from_numpy(padding),
        ).numpy()
    np.testing.assert_allclose(
        model.corrections(anchors[:, :2], codes[:, :2], targets), padded, atol=1e-4
    )
    # And it comes back from its file the same.
    model.save(tmp_path / "outfit_model.npz")
    loaded = OutfitModel.load(tmp_path / "outfit_model.npz")
    assert loaded.categories == CATEGORY_NAMES and loaded.shape == model.shape
    np.testing.assert_array_equal(
        loaded.corrections(anchors, codes, targets), model.corrections(anchors, codes, targets)
    )


def test_whole_outfits_are_scored_in_one_pass_as_each_item_with_the_rest():
    from embeddings.engine.scorers import leave_one_out

    rng = np.random.default_rng(4)
    vectors = unit(rng.normal(size=(30, 16)))
    categories = [CATEGORY_NAMES[i % 3] for i in range(30)]
    weights = PairWeights(CATEGORY_NAMES, np.array([[0, 1], [1, 2]]), rng.random((2, 16)) + 0.5)
    base = TypeAwareScorer(weights, CoOccurrence.from_outfits([[0, 1, 2], [3, 4]], 1.0))
    scorer = OutfitScorer(base, random_network().to_model(CATEGORY_NAMES))
    outfits = [[0, 1, 2], [3, 4], [5, 7, 9, 11], [6, 10, 14], [1, 2]]
    for each in (base, scorer):
        expected = [leave_one_out(each, vectors, categories, outfit) for outfit in outfits]
        found = each.outfit_scores(vectors, categories, outfits)
        np.testing.assert_allclose(found, expected, atol=1e-5)
    # The pairs' mean is the type-aware whole-outfit score; the model's is its own.
    assert not np.allclose(
        scorer.outfit_scores(vectors, categories, outfits[:1]),
        base.outfit_scores(vectors, categories, outfits[:1]),
    )


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def test_an_untrained_model_scores_as_the_type_aware_scorer():
    rng = np.random.default_rng(1)
    vectors = unit(rng.normal(size=(30, 16)))
    categories = [CATEGORY_NAMES[i % 3] for i in range(30)]
    weights = PairWeights(CATEGORY_NAMES, np.array([[0, 1], [1, 2]]), rng.random((2, 16)) + 0.5)
    base = TypeAwareScorer(weights, CoOccurrence.from_outfits([[0, 1, 2]], 1.0))
    untrained = OutfitNetwork(OutfitModelShape(16, 2, 4, 32), 3, 0.0).eval()
    outfit = OutfitScorer(base, untrained.to_model(CATEGORY_NAMES))
    for anchors in ([0], [0, 1], [3, 4, 7]):
        candidates = list(range(8, 30))
        np.testing.assert_allclose(
            outfit.scores(vectors, categories, anchors, candidates),
            base.scores(vectors, categories, anchors, candidates),
            atol=1e-5,
        )
    np.testing.assert_allclose(
        outfit.queries(vectors[:6], categories[:6], "Shoes"),
        base.queries(vectors[:6], categories[:6], "Shoes"),
        atol=1e-6,
    )


def exclusive_or_shop(outfit_count: int, seed: int):
    """Tops and trousers each lean one of two ways (+1/−1 along their own axis); the right
    shoes lean the product of the two. No pair says anything: a shoe goes with a top as often
    one way as the other. Only the whole outfit decides."""
    rng = np.random.default_rng(seed)
    dim = 16
    rows, categories, outfits = [], [], []
    for _ in range(outfit_count):
        top, bottom = rng.choice([-1.0, 1.0], size=2)
        outfit = []
        for category, axis, sign in (
            ("Tops", 0, top),
            ("Trousers", 1, bottom),
            ("Shoes", 2, top * bottom),
        ):
            vector = 0.3 * rng.normal(size=dim)
            vector[axis] = 2 * sign
            outfit.append(len(rows))
            rows.append(vector)
            categories.append(category)
        outfits.append(outfit)
    return unit(np.array(rows)), categories, outfits


def test_a_trained_model_learns_what_no_pair_can_say():
    vectors, categories, outfits = exclusive_or_shop(400, seed=2)
    train, held_out = outfits[:300], outfits[300:]
    base = TypeAwareScorer()
    model, losses = train_outfit_model(
        vectors,
        categories,
        train,
        PairWeights.none(),
        OutfitTrainingConfig(
            epochs=25, batch_size=64, negatives=8, learning_rate=3e-3, layers=1, hidden=64
        ),
    )
    assert losses[-1] < losses[0]
    skus = [f"S{row}" for row in range(len(vectors))]
    shoes = [row for row, c in enumerate(categories) if c == "Shoes"]
    rng = np.random.default_rng(0)
    tasks = []
    for top, bottom, shoe in held_out:
        wrong_way = [s for s in shoes if vectors[s, 2] * vectors[shoe, 2] < 0]
        answers = [shoe, *rng.choice(wrong_way, 3, replace=False).tolist()]
        tasks.append(FitbTask((skus[top], skus[bottom]), tuple(skus[a] for a in answers), 0))
    row_of = {sku: row for row, sku in enumerate(skus)}

    def fitb(scorer) -> float:
        return evaluate_tasks(SkuScorer(scorer, vectors, categories, row_of), tasks).fitb_accuracy

    pairs_only, whole_outfit = fitb(base), fitb(OutfitScorer(base, model))
    assert pairs_only < 0.6  # ties and chance: pairs carry no signal here
    assert whole_outfit > 0.9


@pytest.mark.parametrize("epochs", [1, 2, 5, 10, 20])
def test_a_small_shop_trains_the_default_epochs_in_one_batch_each(epochs):
    """One batch an epoch: 10 epochs are 10 steps, where torch's OneCycleLR with a tenth of
    warm-up divided by zero (the default's epochs met a small shop's outfits)."""
    vectors, categories, outfits = exclusive_or_shop(20, seed=3)
    config = OutfitTrainingConfig(epochs=epochs, batch_size=256, negatives=4, layers=1, hidden=16)
    model, losses = train_outfit_model(vectors, categories, outfits, PairWeights.none(), config)
    assert len(losses) == epochs and all(np.isfinite(losses))
    assert np.isfinite(
        model.corrections(
            vectors[None, :2], model.codes(categories[:2])[None], model.codes(categories[2:3])
        )
    ).all()


def test_the_outfit_scorer_serves_through_the_index_and_comes_back_from_disk(tmp_path):
    vectors, categories, outfits = exclusive_or_shop(60, seed=3)
    skus = [f"S{row}" for row in range(len(vectors))]
    model = random_network().to_model(["Shoes", "Tops", "Trousers"])
    scorer = OutfitScorer(TypeAwareScorer(None, CoOccurrence.from_outfits(outfits, 0.5)), model)
    rows: dict[str, list[int]] = {}
    for row, category in enumerate(categories):
        rows.setdefault(category, []).append(row)
    index = CompatibilityIndex(
        skus,
        categories,
        vectors,
        {c: build_category_index(vectors[r], np.asarray(r)) for c, r in rows.items()},
        {"Tops": ["Trousers", "Shoes"], "Trousers": ["Tops", "Shoes"], "Shoes": ["Tops"]},
        scorer,
    )
    for row in (0, 4, 8):
        for category in index.complements_of(categories[row]):
            members = rows[category]
            exact = scorer.scores(vectors, categories, [row], members)
            best = [skus[members[i]] for i in np.argsort(-exact, kind="stable")[:5]]
            assert [sku for sku, _ in index.nearest(skus[row], category, 5)] == best
    # One anchor is a pair: the type-aware score, whatever the model.
    np.testing.assert_array_equal(
        scorer.scores(vectors, categories, [4], rows["Shoes"]),
        scorer.base.scores(vectors, categories, [4], rows["Shoes"]),
    )
    # An outfit of several anchors is ranked by the model reading them together.
    found = index.outfit_candidates(["S0", "S1"], "Shoes", 5)
    found_rows = [row for _, _, _, row in found.items]
    exact = scorer.scores(vectors, categories, [0, 1], found_rows)
    assert [score for _, score, _, _ in found.items] == pytest.approx(exact.tolist(), abs=1e-5)
    assert not np.allclose(exact, scorer.base.scores(vectors, categories, [0, 1], found_rows))
    index.save(tmp_path)
    saved = json.loads((tmp_path / ITEMS_FILE).read_text())["scorer"]
    assert saved["kind"] == "outfit_transformer" and saved["options"]["layers"] == 2
    loaded = CompatibilityIndex.load(tmp_path)
    assert isinstance(loaded.scorer, OutfitScorer)
    assert loaded.nearest("S4", "Shoes", 5) == index.nearest("S4", "Shoes", 5)
