"""Image vectors (or the frozen trunk's tokens) remembered across trainings, keyed by the
image's content hash, one cache file per backbone (its weights' hash) and output: an unchanged
image is embedded once per backbone, however often the catalog is re-imported or the model
retrained."""

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


class ImageVectorCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path) as stored:
                self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    def __contains__(self, key: str) -> bool:
        return key in self.vectors

    def vectors_for(
        self,
        keys: Sequence[str],
        paths: Sequence[Path],
        encode: Callable[[list[Path]], np.ndarray],
    ) -> tuple[np.ndarray, int]:
        """Arrays for every key, encoding only the images not cached (by their path); returns
        them stacked, (N, …) in the encoder's dtype, and how many were encoded."""
        missing = {
            key: path for key, path in zip(keys, paths, strict=True) if key not in self.vectors
        }
        if missing:
            fresh = encode(list(missing.values()))
            self.vectors.update(zip(missing, fresh, strict=True))
            self.save()
        return np.stack([self.vectors[key] for key in keys]), len(missing)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.vectors), dtype=str)
        vectors = np.stack(list(self.vectors.values())) if self.vectors else np.zeros((0, 0))
        # Written beside the target and renamed: a crash never leaves half a cache.
        with tempfile.NamedTemporaryFile(dir=self.path.parent, suffix=".npz", delete=False) as f:
            np.savez(f, keys=keys, vectors=vectors)
        os.replace(f.name, self.path)
