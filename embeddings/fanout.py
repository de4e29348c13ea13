"""A training run's heavy, parallel work done by other Celery workers: embedding its new images
and computing the new version's neighbours, in chunks, one task each, on the queue
OUTFITS_FANOUT_QUEUE names (more machines, or bigger ones). The run waits for every chunk,
reporting progress and honouring a cancel as it goes; each chunk writes its array into a
folder of the shared var directory, where model versions and media already live. A chunk that
fails, or a queue nobody serves, fails the run with the reason; nothing is half-kept."""

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

from .engine.progress import Progress

if TYPE_CHECKING:
    from celery import Task

    from .engine.index import CompatibilityIndex

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5


class FanOutFailed(RuntimeError):
    """No worker serves the queue, a chunk failed, or the chunks stopped coming."""


# --- The run's side ---


@dataclass(frozen=True)
class EmbeddingJob:
    """What every embedding chunk computes: a backbone's image vectors or, with
    `frozen_blocks`, the tokens after its frozen trunk (what fine-tuning the last blocks
    starts from)."""

    backbone: str
    pretrained: str
    frozen_blocks: int | None = None


def encode_on_workers(job: EmbeddingJob, paths: Sequence[Path], progress: Progress) -> np.ndarray:
    """`paths` embedded by the workers, OUTFITS_EMBEDDING_CHUNK images a task; the chunks'
    arrays stacked in input order."""
    from .tasks import embed_image_chunk

    size = settings.OUTFITS_EMBEDDING_CHUNK
    chunks = [paths[start : start + size] for start in range(0, len(paths), size)]
    arrays = run_chunks(
        embed_image_chunk,
        [(asdict(job), [str(path) for path in chunk]) for chunk in chunks],
        [len(chunk) for chunk in chunks],
        "embedding images",
        progress,
    )
    return np.concatenate(arrays)


def neighbours_on_workers(
    directory: Path, index: "CompatibilityIndex", depth: int, progress: Progress
) -> np.ndarray:
    """`index.computed_neighbours(depth)`, computed by the workers from the version's files in
    `directory` (saved, not yet committed), OUTFITS_NEIGHBOURS_CHUNK items a task."""
    from .tasks import compute_neighbours_chunk

    size = settings.OUTFITS_NEIGHBOURS_CHUNK
    chunks = [
        (category, start, min(start + size, len(rows)))
        for category, rows in index.rows_of_category.items()
        for start in range(0, len(rows), size)
    ]
    arrays = run_chunks(
        compute_neighbours_chunk,
        [(str(directory), category, start, stop, depth) for category, start, stop in chunks],
        [stop - start for _, start, stop in chunks],
        "indexing",
        progress,
    )
    table = index.empty_neighbours(depth)
    for (category, start, stop), array in zip(chunks, arrays, strict=True):
        table[index.rows_of_category[category][start:stop]] = array
    return table


def run_chunks(
    task: "Task",
    chunk_args: list[tuple],
    sizes: list[int],
    stage: str,
    progress: Progress,
) -> list[np.ndarray]:
    """Send `task(*args, output)` for every chunk's args to the fan-out queue and wait for
    all: the chunks' arrays, in order. Raises FanOutFailed when no worker serves the queue,
    when a chunk fails, or when none finishes for OUTFITS_FANOUT_STALL_SECONDS; whatever
    `progress` raises (a cancel) stops the wait too. Unfinished chunks are then revoked."""
    queue = settings.OUTFITS_FANOUT_QUEUE
    require_consumers(task, queue)
    folder = Path(settings.VAR_DIR) / "fanout" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    sent = []
    try:
        for number, args in enumerate(chunk_args):
            output = str(chunk_file(folder, number))
            sent.append(task.apply_async(args=[*args, output], queue=queue))
        logger.info("%s: %d chunks sent to queue %r", stage, len(sent), queue)
        wait_for_chunks(folder, sizes, stage, progress, queue)
        return [np.load(chunk_file(folder, number)) for number in range(len(sizes))]
    finally:
        unfinished = [r.id for n, r in enumerate(sent) if not chunk_file(folder, n).is_file()]
        if unfinished:
            task.app.control.revoke(unfinished)
        # A chunk still running finds its folder gone and keeps nothing.
        shutil.rmtree(folder, ignore_errors=True)


def require_consumers(task: "Task", queue: str) -> None:
    """Raise unless a live worker consumes `queue` (tasks run in this process when Celery is
    eager, as in development without a broker). A worker answers while it works when its tasks
    run in a pool of child processes (prefork, Celery's default), not with `--pool solo`."""
    if task.app.conf.task_always_eager:
        return
    replies = task.app.control.inspect(timeout=2.0).active_queues() or {}
    if not any(q["name"] == queue for queues in replies.values() for q in queues):
        raise FanOutFailed(
            f"No Celery worker serves the fan-out queue {queue!r} (OUTFITS_FANOUT_QUEUE). "
            f"Start one with `celery -A outfits worker -Q {queue}`, or unset "
            "OUTFITS_FANOUT_QUEUE to do this work in the training worker."
        )


def chunk_file(folder: Path, number: int) -> Path:
    return folder / f"{number:05d}.npy"


def error_file(chunk: Path) -> Path:
    return chunk.with_suffix(".error")


def wait_for_chunks(
    folder: Path, sizes: list[int], stage: str, progress: Progress, queue: str
) -> None:
    stall_seconds = settings.OUTFITS_FANOUT_STALL_SECONDS
    total, finished = sum(sizes), 0
    last_news = time.monotonic()
    while True:
        failures = sorted(folder.glob("*.error"))
        if failures:
            raise FanOutFailed(
                f"{stage.capitalize()}: chunk {int(failures[0].stem) + 1} of {len(sizes)} "
                f"failed on its worker: {failures[0].read_text()}"
            )
        done = [n for n in range(len(sizes)) if chunk_file(folder, n).is_file()]
        if len(done) > finished:
            finished, last_news = len(done), time.monotonic()
        progress(stage, sum(sizes[n] for n in done), total)
        if finished == len(sizes):
            return
        if time.monotonic() - last_news > stall_seconds:
            raise FanOutFailed(
                f"{stage.capitalize()}: no chunk finished for {stall_seconds:.0f} s "
                f"(OUTFITS_FANOUT_STALL_SECONDS); {finished} of {len(sizes)} are done. "
                f"Are the workers of queue {queue!r} alive?"
            )
        time.sleep(POLL_SECONDS)


# --- The workers' side (the tasks in tasks.py) ---


def write_chunk(output: str, compute: Callable[[], np.ndarray]) -> int:
    """Compute a chunk's array and write it to `output`, renamed into place whole, or, when
    that fails, the reason beside it; skipped when the run has stopped waiting (its folder is
    gone). Returns the array's length."""
    target = Path(output)
    if not target.parent.is_dir():
        logger.info("chunk %s skipped: its run has stopped waiting", target)
        return 0
    try:
        array = compute()
        partial = target.with_suffix(".partial.npy")
        np.save(partial, array)
        partial.replace(target)
    except Exception as error:
        if target.parent.is_dir():  # written whole, then renamed: read whole
            reason = target.with_suffix(".error.partial")
            reason.write_text(f"{type(error).__name__}: {error}")
            reason.replace(error_file(target))
        raise
    return len(array)


def embed_chunk(job: dict, paths: list[str]) -> np.ndarray:
    from .engine.encode import encode_images, encode_trunk_tokens

    spec = EmbeddingJob(**job)
    backbone = loaded_backbone(spec.backbone, spec.pretrained)
    images = [Path(p) for p in paths]
    device = settings.OUTFITS_EMBEDDING_DEVICE  # this worker's own: a GPU machine's is cuda
    if spec.frozen_blocks is None:
        return encode_images(backbone, images, device=device)
    return encode_trunk_tokens(backbone, images, spec.frozen_blocks, device=device).numpy()


def neighbours_chunk(directory: str, category: str, start: int, stop: int, depth: int):
    index = loaded_index(directory)
    return index.neighbours_of(category, index.rows_of_category[category][start:stop], depth)


@lru_cache(maxsize=1)
def loaded_backbone(name: str, pretrained: str):
    """The backbone, loaded once per worker process for all the chunks it embeds."""
    from .engine.backbone import load_backbone

    return load_backbone(name, pretrained)


@lru_cache(maxsize=1)
def loaded_index(directory: str) -> "CompatibilityIndex":
    """A version's index (memory-mapped), loaded once per worker process for its chunks."""
    from .engine.index import CompatibilityIndex

    return CompatibilityIndex.load(Path(directory))
