"""Celery tasks of the compatibility model: retrain on the `training` queue, the stale-run check
and the scheduled retrain on the maintenance queue (OUTFITS_MAINTENANCE_QUEUE, not stuck behind a
training); the chunks of a run's fanned-out work go to the queue it sends them to,
OUTFITS_FANOUT_QUEUE."""

import logging

from celery import shared_task
from django.conf import settings

from . import fanout, training_runs, version_refresh

logger = logging.getLogger(__name__)


@shared_task(soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def retrain(run_id: int) -> str:
    """Train, evaluate, index and (if better) activate a new version for TrainingRun `run_id`."""
    return training_runs.execute_training_run(run_id).status


@shared_task
def scheduled_retrain() -> int | None:
    """Celery beat's retrain (OUTFITS_RETRAIN_CRONTAB); skipped while another run holds the
    lock."""
    try:
        run = training_runs.start_training_run()
    except training_runs.TrainingAlreadyRunning as busy:
        logger.info("scheduled retrain skipped: %s", busy)
        return None
    except training_runs.TrainingNotQueued as lost:  # its run is failed and says why
        logger.error("scheduled retrain not queued: %s", lost)
        return None
    return run.pk


@shared_task
def fail_stale_training_runs() -> int:
    return training_runs.fail_stale_training_runs()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def embed_image_chunk(job: dict, paths: list[str], output: str) -> int:
    """Embed one chunk of a training run's images into `output` (fanout.py); a chunk whose
    worker is lost is delivered again."""
    return fanout.write_chunk(output, lambda: fanout.embed_chunk(job, paths))


@shared_task(acks_late=True, reject_on_worker_lost=True)
def compute_neighbours_chunk(
    directory: str, category: str, start: int, stop: int, depth: int, output: str
) -> int:
    """Compute the neighbours of items start:stop of `category` of the version being written
    in `directory` into `output` (fanout.py)."""
    return fanout.write_chunk(
        output, lambda: fanout.neighbours_chunk(directory, category, start, stop, depth)
    )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=120)
def refresh_version(self) -> str | None:
    """Refresh the active version with the catalog's changes (version_refresh); while another
    refresh of it runs, again a little later (that one may have missed these changes)."""
    try:
        refresh = version_refresh.refresh_active_version()
    except version_refresh.RefreshBusy as busy:
        raise self.retry(countdown=settings.OUTFITS_REFRESH_DELAY_SECONDS) from busy
    return refresh.status if refresh else None
