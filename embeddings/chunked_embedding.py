"""A catalog's new images embedded by other Celery workers: in chunks, one task each, on the
queue OUTFITS_EMBEDDING_QUEUE names (more machines, or bigger ones). The training run that
asks waits for every chunk, reporting progress and honouring a cancel as it goes; each chunk
writes its array to a folder of the shared var directory, the place model versions and media
already live in. A chunk that fails, or a queue nobody serves, fails the run with the reason;
nothing is half-kept."""

import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

from .progress import Progress

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5


class EmbeddingWorkersUnavailable(RuntimeError):
    """No worker serves the embedding queue, a chunk failed, or the chunks stopped coming."""


@dataclass(frozen=True)
class EmbeddingJob:
    """What every chunk computes: a backbone's image vectors or, with `frozen_blocks`, the
    tokens after its frozen trunk (what fine-tuning the last blocks starts from)."""

    backbone: str
    pretrained: str
    frozen_blocks: int | None = None


def encode_on_workers(
    job: EmbeddingJob,
    paths: Sequence[Path],
    queue: str,
    chunk_size: int,
    progress: Progress,
    stall_seconds: float,
) -> np.ndarray:
    """`paths` embedded by the workers of `queue`, `chunk_size` images a task; returns the
    chunks' arrays stacked in input order. Raises EmbeddingWorkersUnavailable when no worker
    serves `queue`, when a chunk fails, or when none finishes for `stall_seconds`; whatever
    `progress` raises (a cancel) stops the wait. Unfinished chunks are then revoked."""
    from .tasks import embed_image_chunk

    require_consumers(queue)
    folder = Path(settings.VAR_DIR) / "embedding-chunks" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    chunks = [paths[start : start + chunk_size] for start in range(0, len(paths), chunk_size)]
    sent = []
    try:
        for number, chunk in enumerate(chunks):
            sent.append(
                embed_image_chunk.apply_async(
                    args=[asdict(job), [str(p) for p in chunk], str(chunk_file(folder, number))],
                    queue=queue,
                )
            )
        logger.info("embedding %d images in %d chunks on queue %r", len(paths), len(chunks), queue)
        wait_for_chunks(folder, [len(chunk) for chunk in chunks], progress, stall_seconds, queue)
        return np.concatenate([np.load(chunk_file(folder, n)) for n in range(len(chunks))])
    finally:
        unfinished = [r.id for n, r in enumerate(sent) if not chunk_file(folder, n).is_file()]
        if unfinished:
            embed_image_chunk.app.control.revoke(unfinished)
        # A chunk still running finds its folder gone and keeps nothing.
        shutil.rmtree(folder, ignore_errors=True)


def require_consumers(queue: str) -> None:
    """Raise unless a live worker consumes `queue` (tasks run in this process when Celery is
    eager, as in development without a broker). A worker answers while it works when its tasks
    run in a pool of child processes (prefork, Celery's default), not with `--pool solo`."""
    from .tasks import embed_image_chunk

    app = embed_image_chunk.app
    if app.conf.task_always_eager:
        return
    replies = app.control.inspect(timeout=2.0).active_queues() or {}
    if not any(q["name"] == queue for queues in replies.values() for q in queues):
        raise EmbeddingWorkersUnavailable(
            f"No Celery worker serves the embedding queue {queue!r} (OUTFITS_EMBEDDING_QUEUE). "
            f"Start one with `celery -A outfits worker -Q {queue}`, or unset "
            "OUTFITS_EMBEDDING_QUEUE to embed in the training worker."
        )


def chunk_file(folder: Path, number: int) -> Path:
    return folder / f"{number:05d}.npy"


def error_file(chunk: Path) -> Path:
    return chunk.with_suffix(".error")


def wait_for_chunks(
    folder: Path, sizes: list[int], progress: Progress, stall_seconds: float, queue: str
) -> None:
    total, finished = sum(sizes), 0
    last_news = time.monotonic()
    while True:
        failures = sorted(folder.glob("*.error"))
        if failures:
            number = int(failures[0].stem)
            raise EmbeddingWorkersUnavailable(
                f"Embedding chunk {number + 1} of {len(sizes)} failed on its worker: "
                f"{failures[0].read_text()}"
            )
        done = [n for n in range(len(sizes)) if chunk_file(folder, n).is_file()]
        if len(done) > finished:
            finished, last_news = len(done), time.monotonic()
        progress("embedding images", sum(sizes[n] for n in done), total)
        if finished == len(sizes):
            return
        if time.monotonic() - last_news > stall_seconds:
            raise EmbeddingWorkersUnavailable(
                f"No embedding chunk finished for {stall_seconds:.0f} s "
                f"(OUTFITS_EMBEDDING_STALL_SECONDS); {finished} of {len(sizes)} are done. "
                f"Are the workers of queue {queue!r} alive?"
            )
        time.sleep(POLL_SECONDS)


def embed_chunk(job: dict, paths: list[str], output: str) -> int:
    """A worker's part (the embed_image_chunk task): embed `paths`, write the array to
    `output` (renamed into place whole) or, when it fails, the reason beside it. Returns how
    many images it embedded."""
    from .encode import encode_images, encode_trunk_tokens

    target = Path(output)
    if not target.parent.is_dir():
        logger.info("embedding chunk %s skipped: its run has stopped waiting", target)
        return 0
    spec = EmbeddingJob(**job)
    try:
        backbone = loaded_backbone(spec.backbone, spec.pretrained)
        images = [Path(p) for p in paths]
        if spec.frozen_blocks is None:
            array = encode_images(backbone, images)
        else:
            array = encode_trunk_tokens(backbone, images, spec.frozen_blocks).numpy()
        partial = target.with_suffix(".partial.npy")
        np.save(partial, array)
        partial.replace(target)
    except Exception as error:
        if target.parent.is_dir():  # written whole, then renamed: read whole
            reason = target.with_suffix(".error.partial")
            reason.write_text(f"{type(error).__name__}: {error}")
            reason.replace(error_file(target))
        raise
    return len(images)


@lru_cache(maxsize=1)
def loaded_backbone(name: str, pretrained: str):
    """The backbone, loaded once per worker process for all the chunks it embeds."""
    from .backbone import load_backbone

    return load_backbone(name, pretrained)
