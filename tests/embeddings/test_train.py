import numpy as np
import torch

from embeddings.engine.evaluate import evaluate_tasks, make_tasks
from embeddings.engine.train import (
    CompatibilityHead,
    HeadConfig,
    HeadTrainingConfig,
    load_head,
    project,
    save_head,
    shared_negatives,
    softmax_loss,
    train_compatibility_head,
    triplet_loss,
)


def styled_items(seed: int = 0):
    """Items whose style (what makes them go together) is a hidden direction in their vectors,
    swamped by a category direction that says nothing about compatibility."""
    rng = np.random.default_rng(seed)
    categories = np.tile(np.arange(3), 100)
    styles = rng.integers(0, 5, size=300)
    vectors = (
        np.eye(32)[categories] * 6
        + np.eye(32)[10 + styles] * 1.0
        + rng.normal(scale=0.3, size=(300, 32))
    )
    outfits = []
    for style in range(5):
        members = {c: np.flatnonzero((styles == style) & (categories == c)) for c in range(3)}
        for _ in range(30):
            outfits.append([int(rng.choice(members[c])) for c in range(3)])
    return vectors.astype(np.float32), categories, outfits, styles


def halves(outfits, categories):
    """Half of the outfits to train on; FITB questions from the other half."""
    category_of = {str(i): str(c) for i, c in enumerate(categories)}
    questions, _ = make_tasks(
        [[str(i) for i in o] for o in outfits[1::2]], category_of, np.random.default_rng(1)
    )
    return outfits[::2], questions


def test_one_training_step_lowers_the_loss():
    vectors, categories, outfits, styles = styled_items()
    head = CompatibilityHead(HeadConfig(input_dim=32))
    optimizer = torch.optim.SGD(head.parameters(), lr=0.5)
    from embeddings.engine.triplets import mine_triplets

    batch = torch.from_numpy(mine_triplets(outfits, categories, np.random.default_rng(0)))
    items = torch.from_numpy(vectors)

    def loss() -> torch.Tensor:
        a, p, n = (head(items[batch[:, k]]) for k in range(3))
        return triplet_loss(a, p, n, margin=0.2)

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        assert loss().item() < before.item()


def test_training_learns_compatibility_the_raw_vectors_do_not_show():
    vectors, categories, outfits, styles = styled_items()
    train, questions = halves(outfits, categories)

    def fitb_accuracy(vectors: np.ndarray, tasks) -> float:
        return evaluate_tasks({str(i): v for i, v in enumerate(vectors)}, tasks).fitb_accuracy

    head, losses = train_compatibility_head(
        vectors, train, categories, HeadTrainingConfig(epochs=30, batch_size=64)
    )
    assert losses[-1] < losses[0]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    learned = fitb_accuracy(project(head, vectors), questions)
    # The best any space can do: wrong answers of the right style tie with the right one.
    oracle = fitb_accuracy(np.eye(5, dtype=np.float32)[styles], questions)
    assert learned > fitb_accuracy(unit, questions) + 0.2
    assert learned > 0.85 * oracle


def test_the_softmax_over_many_negatives_learns_compatibility_too():
    vectors, categories, outfits, styles = styled_items()
    train, questions = halves(outfits, categories)
    config = HeadTrainingConfig(epochs=30, batch_size=64, negatives=16)
    head, losses = train_compatibility_head(vectors, train, categories, config)
    assert losses[-1] < 0.5 * losses[0]
    vectors_of = {str(i): v for i, v in enumerate(project(head, vectors))}
    oracle = {str(i): v for i, v in enumerate(np.eye(5, dtype=np.float32)[styles])}
    assert evaluate_tasks(vectors_of, questions).fitb_accuracy > (
        0.85 * evaluate_tasks(oracle, questions).fitb_accuracy
    )


def test_shared_negatives_are_of_each_rows_positive_category():
    categories = np.array([0, 0, 1, 1, 2, 2, 2])
    pools = {c: np.flatnonzero(categories == c) for c in range(3)}
    positives = np.array([2, 0, 1, 2, 2])
    drawn = shared_negatives(positives, pools, 5, np.random.default_rng(0))
    assert drawn.shape == (5, 5)
    assert (categories[drawn] == positives[:, None]).all()
    # One draw per category, shared by its rows.
    assert (drawn[0] == drawn[3]).all() and (drawn[0] == drawn[4]).all()


def test_the_softmax_loss_ignores_wrong_answers_that_are_the_positive():
    anchor = torch.tensor([[1.0, 0.0]])
    positive, wrong = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    candidates = torch.stack([positive, positive, wrong])[None]
    masked = softmax_loss(anchor, candidates, 0.1, torch.tensor([[True, False]]))
    alone = softmax_loss(anchor, candidates[:, [0, 2]], 0.1, torch.tensor([[False]]))
    assert masked.item() == alone.item() > 0
    unmasked = softmax_loss(anchor, candidates, 0.1, torch.tensor([[False, False]]))
    assert unmasked.item() > masked.item() + 0.5


def test_head_round_trips_through_its_file(tmp_path):
    head = CompatibilityHead(HeadConfig(input_dim=12, output_dim=8, hidden_dim=16)).eval()
    save_head(head, tmp_path / "head.safetensors")
    loaded = load_head(tmp_path / "head.safetensors")
    vectors = np.random.default_rng(0).normal(size=(5, 12)).astype(np.float32)
    np.testing.assert_allclose(project(loaded, vectors), project(head, vectors), rtol=1e-6)
    assert np.allclose(np.linalg.norm(project(head, vectors), axis=1), 1)


def test_after_epoch_sees_the_head_in_eval_mode_every_epoch():
    vectors, categories, outfits, _ = styled_items()
    seen: list[tuple[int, bool]] = []
    head, losses = train_compatibility_head(
        vectors,
        outfits,
        categories,
        HeadTrainingConfig(epochs=3, batch_size=128),
        after_epoch=lambda h, epoch: seen.append((epoch, h.training)),
    )
    assert seen == [(1, False), (2, False), (3, False)] and len(losses) == 3


def test_bad_pair_verdicts_push_the_pair_apart_and_good_ones_together():
    """The same training with and without verdicts (same seed): the pairs stylists called bad
    score lower after it, the good ones higher."""
    from embeddings.engine.fit import TrainingCatalog, TrainingOptions, fit_space
    from embeddings.engine.train import ItemEncoder
    from embeddings.engine.triplets import Verdicts

    rng = np.random.default_rng(0)
    categories = ["Tops"] * 20 + ["Trousers"] * 20
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    outfits = [[n, 20 + n] for n in range(20)]
    for outfit in outfits:
        vectors[outfit] += 2 * rng.normal(size=16).astype(np.float32)
    bad = [(n, 20 + (n + 1) % 20) for n in range(0, 20, 2)]
    good = [(n, 20 + (n + 3) % 20) for n in range(1, 20, 2)]
    catalog = TrainingCatalog(
        [f"S{n}" for n in range(40)], categories, ItemEncoder(vectors), outfits
    )
    options = TrainingOptions(epochs=8)

    def mean_score(space, pairs) -> float:
        return float(np.mean([space.vectors[a] @ space.vectors[b] for a, b in pairs]))

    plain = fit_space(catalog, outfits, options).space
    judged = fit_space(
        TrainingCatalog(
            catalog.skus, categories, ItemEncoder(vectors), outfits, Verdicts.of(good, bad)
        ),
        outfits,
        options,
    ).space
    assert mean_score(judged, bad) < mean_score(plain, bad) - 0.05
    assert mean_score(judged, good) > mean_score(plain, good) + 0.05


def test_negatives_drawn_as_worn_do_not_push_unworn_items_away_from_everything():
    """Items in no outfit carry a mark a head can learn. Drawn from the whole catalog, the
    negatives are the only place those items appear, and the head learns the mark as "goes
    with nothing"; drawn as the outfits wear items, it has nothing to learn it from."""
    vectors, categories, outfits, styles = styled_items()
    worn = np.zeros(len(vectors), dtype=bool)
    worn[[item for outfit in outfits for item in outfit]] = True
    assert 30 < (~worn).sum() < 150  # both kinds of item, in numbers
    vectors[~worn, 20] += 1.0

    def unworn_gap(negatives_as_worn: bool) -> float:
        """How much closer an outfit item is to worn items of its style than to unworn ones."""
        config = HeadTrainingConfig(epochs=15, batch_size=64, negatives_as_worn=negatives_as_worn)
        space = project(train_compatibility_head(vectors, outfits, categories, config)[0], vectors)
        gaps = []
        for anchor in np.flatnonzero(worn)[:100]:
            match = (styles == styles[anchor]) & (categories != categories[anchor])
            gaps.append(
                (space[match & worn] @ space[anchor]).mean()
                - (space[match & ~worn] @ space[anchor]).mean()
            )
        return float(np.mean(gaps))

    assert unworn_gap(negatives_as_worn=True) < 0.5 * unworn_gap(negatives_as_worn=False)


def test_a_verdict_on_a_category_no_outfit_wears_trains_with_worn_negatives():
    """Worn pools hold only the categories the outfits wear; a stylist's good pair may name
    another, and its softmax negatives must still be drawn (from every item of it)."""
    from embeddings.engine.triplets import Verdicts

    vectors, categories, outfits, _ = styled_items()
    categories = categories.copy()
    categories[[3, 6, 9, 12]] = 3  # a fourth category, in no outfit (items unworn before)
    outfits = [[i for i in outfit if categories[i] != 3] for outfit in outfits]
    config = HeadTrainingConfig(epochs=2, batch_size=64, negatives=3, type_aware=False)
    _, losses = train_compatibility_head(
        vectors, outfits, categories, config, verdicts=Verdicts.of(good=[(0, 3)], bad=[])
    )
    assert len(losses) == 2 and all(np.isfinite(losses))
