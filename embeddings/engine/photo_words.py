"""The words a photo most likely has. A product's item vector is its picture beside its words
(title, colour, fabric, line: text.describe); a shopper's photo has none, and its category's
name alone put its text half far from every product's, so a product's own photo got matches
unlike its page's. A ridge regression from the backbone's image vector of each catalog product
to the text vector of its own words, fitted with each model version on its catalog (a
closed form: milliseconds), says which words such a picture goes with. Pure numpy."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .category_probe import held_out_split

PHOTO_WORDS_FILE = "photo_words.npz"


@dataclass(frozen=True)
class PhotoWords:
    weights: np.ndarray  # (E_image, E_text)
    bias: np.ndarray  # (E_text,)

    def predict(self, image_vectors: np.ndarray) -> np.ndarray:
        """The unit text vector of the words most likely for each (unit) image vector:
        (N, E_image) → (N, E_text) float32."""
        words = np.atleast_2d(image_vectors) @ self.weights + self.bias
        norms = np.linalg.norm(words, axis=1, keepdims=True)
        return (words / np.maximum(norms, 1e-12)).astype(np.float32)

    def save(self, path: Path) -> None:
        np.savez(path, weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32))

    @classmethod
    def load(cls, path: Path) -> "PhotoWords":
        with np.load(path) as stored:
            return cls(stored["weights"], stored["bias"])


def fit_photo_words(
    image_vectors: np.ndarray, text_vectors: np.ndarray, ridge: float = 1.0
) -> PhotoWords:
    """Least squares from image to text vectors with an L2 penalty of `ridge` on the weights
    (not the bias: the vectors are centred first), so a small catalog does not overfit."""
    if len(image_vectors) != len(text_vectors) or len(image_vectors) < 2:
        raise ValueError(
            f"Photo words need two or more (image, text) vector pairs, not "
            f"{len(image_vectors)} images and {len(text_vectors)} texts"
        )
    count = len(image_vectors)
    input_mean = np.mean(image_vectors, axis=0, dtype=np.float64)
    target_mean = np.mean(text_vectors, axis=0, dtype=np.float64)
    gram = ridge * np.eye(input_mean.shape[0])
    cross = np.zeros((input_mean.shape[0], target_mean.shape[0]))
    for start in range(0, count, 65_536):  # in slices: a catalog of 1M is not copied whole
        x = np.asarray(image_vectors[start : start + 65_536], dtype=np.float64) - input_mean
        y = np.asarray(text_vectors[start : start + 65_536], dtype=np.float64) - target_mean
        gram += x.T @ x
        cross += x.T @ y
    weights = np.linalg.solve(gram, cross)
    return PhotoWords(weights, target_mean - input_mean @ weights)


def held_out_closeness(
    image_vectors: np.ndarray, text_vectors: np.ndarray, fraction: float = 0.15, seed: int = 0
) -> float | None:
    """Mean cosine between the words predicted for a random `fraction` of the pictures (by a
    fit on the others) and their own products' words: how well a photo gets its words."""
    if (split := held_out_split(len(image_vectors), fraction, seed)) is None:
        return None
    test, train = split
    predicted = fit_photo_words(image_vectors[train], text_vectors[train]).predict(
        image_vectors[test]
    )
    own = np.asarray(text_vectors[test], dtype=np.float32)
    own /= np.maximum(np.linalg.norm(own, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.sum(predicted * own, axis=1)))
