import numpy as np

from embeddings.engine.vector_cache import ImageVectorCache


def test_only_uncached_images_are_encoded_and_the_cache_survives_reloading(tmp_path):
    calls: list[list[str]] = []

    def encode(paths):
        calls.append([p.name for p in paths])
        return np.array([[float(len(p.name)), 1.0] for p in paths], dtype=np.float32)

    path = tmp_path / "cache.npz"
    cache = ImageVectorCache(path)
    vectors, encoded = cache.vectors_for(["h1", "h2"], [tmp_path / "a", tmp_path / "bb"], encode)
    assert encoded == 2 and vectors.tolist() == [[1.0, 1.0], [2.0, 1.0]]
    reloaded = ImageVectorCache(path)
    vectors, encoded = reloaded.vectors_for(
        ["h2", "h3", "h1"], [tmp_path / "bb", tmp_path / "ccc", tmp_path / "a"], encode
    )
    assert encoded == 1 and calls == [["a", "bb"], ["ccc"]]
    assert vectors.tolist() == [[2.0, 1.0], [3.0, 1.0], [1.0, 1.0]]
    assert [p.name for p in tmp_path.iterdir()] == ["cache.npz"]  # no temporary left behind
