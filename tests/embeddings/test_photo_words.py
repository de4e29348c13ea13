"""The words a photo most likely has: a ridge regression from image to text vectors."""

import numpy as np
import pytest

from embeddings.engine.photo_words import PhotoWords, fit_photo_words, held_out_closeness


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_words_of_a_picture_are_learned_from_the_catalogs_pairs(tmp_path):
    rng = np.random.default_rng(0)
    images = unit(rng.standard_normal((400, 16)))
    mapping, offset = rng.standard_normal((16, 12)), rng.standard_normal(12)
    texts = unit(images @ mapping + offset + 0.05 * rng.standard_normal((400, 12)))
    words = fit_photo_words(images[:300], texts[:300], ridge=0.1)
    predicted = words.predict(images[300:])
    assert predicted.dtype == np.float32 and predicted.shape == (100, 12)
    np.testing.assert_allclose(np.linalg.norm(predicted, axis=1), 1, atol=1e-5)
    # Held-out pictures get words close to their own, far closer than another's.
    own = np.sum(predicted * texts[300:], axis=1)
    others = np.sum(predicted * np.roll(texts[300:], 1, axis=0), axis=1)
    assert own.mean() > 0.95 and own.mean() - others.mean() > 0.3
    words.save(tmp_path / "words.npz")
    np.testing.assert_allclose(
        PhotoWords.load(tmp_path / "words.npz").predict(images[:5]),
        words.predict(images[:5]),
        atol=1e-6,
    )


def test_the_penalty_keeps_a_small_catalog_from_fitting_noise():
    rng = np.random.default_rng(1)
    images, texts = unit(rng.standard_normal((20, 32))), unit(rng.standard_normal((20, 8)))
    loose, firm = fit_photo_words(images, texts, 1e-6), fit_photo_words(images, texts, 10.0)
    assert np.linalg.norm(firm.weights) < np.linalg.norm(loose.weights) / 10


def test_photo_words_need_pairs():
    with pytest.raises(ValueError, match="two or more"):
        fit_photo_words(np.zeros((3, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="two or more"):
        fit_photo_words(np.zeros((1, 4)), np.zeros((1, 4)))


def test_held_out_closeness_says_how_well_pictures_get_their_words():
    rng = np.random.default_rng(2)
    images = unit(rng.standard_normal((300, 16)))
    related = unit(images @ rng.standard_normal((16, 12)))
    unrelated = unit(rng.standard_normal((300, 12)))
    assert held_out_closeness(images, related) > 0.95
    assert held_out_closeness(images, unrelated) < 0.5
    assert held_out_closeness(images[:2], related[:2]) is None
