"""A background job's batch work runs on the threads it is given, and gives them back."""

import faiss
import numpy as np
import torch
from threadpoolctl import threadpool_info

from embeddings.engine.index import CompatibilityIndex
from embeddings.engine.threads import batch_threads, limited_threads


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_limited_threads_hold_for_faiss_numpy_and_torch_and_are_given_back():
    before = (batch_threads(), faiss.omp_get_max_threads(), blas_threads(), torch.get_num_threads())
    with limited_threads(1):
        assert batch_threads() == 1
        assert faiss.omp_get_max_threads() == 1
        assert blas_threads() == {1}
        assert torch.get_num_threads() == 1
        # An exact search inside keeps to it: it sets FAISS's threads to batch_threads().
        rng = np.random.default_rng(0)
        vectors = rng.normal(size=(40, 8)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index = CompatibilityIndex.build(
            [f"S{n}" for n in range(40)], ["A"] * 20 + ["B"] * 20, vectors, [[0, 20]],
            neighbour_depth=4,
        )  # fmt: skip
        index.best_items_of("B", np.arange(20), 4)
        assert faiss.omp_get_max_threads() == 1
    after = (batch_threads(), faiss.omp_get_max_threads(), blas_threads(), torch.get_num_threads())
    assert after == before
