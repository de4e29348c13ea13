"""How many threads batch work uses (FAISS's exact searches, numpy's matrix products, torch's
encoder): all cores by default; fewer while a background job that shares the machine with web
workers runs. OpenMP and OpenBLAS threads spin while they wait for each other: beside busy web
workers on two cores, a two-thread search of a refresh took several times as long as a
one-thread one, and slowed the requests too. numpy, FAISS and threadpoolctl only."""

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import faiss
from threadpoolctl import threadpool_limits

_batch_threads = faiss.omp_get_max_threads()  # OpenMP's default (OMP_NUM_THREADS or the cores)


def batch_threads() -> int:
    """The threads batch work may use now."""
    return _batch_threads


@contextmanager
def limited_threads(count: int) -> Iterator[None]:
    """Batch work in this process on at most `count` threads meanwhile (torch's too, when it
    is imported: the workers that refresh import it as they start)."""
    global _batch_threads
    saved = _batch_threads
    # Where another thread is importing torch (a worker's warm-up), sys.modules holds it half
    # made: import_module waits for that import to finish, as an import statement would.
    torch = importlib.import_module("torch") if "torch" in sys.modules else None
    torch_threads = torch.get_num_threads() if torch else None
    _batch_threads = max(1, min(count, saved))
    try:
        with threadpool_limits(limits=_batch_threads):
            if torch:
                torch.set_num_threads(_batch_threads)
            yield
    finally:
        _batch_threads = saved
        if torch and torch_threads:
            torch.set_num_threads(torch_threads)
