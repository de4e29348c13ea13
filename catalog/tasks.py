"""Celery tasks of the catalog."""

import logging

from celery import shared_task

from .import_jobs import ImportNotRun, interrupt_stale_import_jobs, run_import_job

logger = logging.getLogger(__name__)


# acks_late + reject_on_worker_lost: a message whose worker dies is delivered again rather
# than lost. That is safe because the job's claim decides who runs it: a second delivery (this
# one, or the broker's after its visibility timeout) finds a live run's fresh heartbeat and
# does nothing; a job whose run died is marked interrupted and resumed from its checkpoint.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=6 * 3600,
    time_limit=6 * 3600 + 300,
)
def run_import(job_id: int) -> str:
    """Run (or resume, after a lost worker) ImportJob `job_id`."""
    try:
        return run_import_job(job_id).status
    except ImportNotRun as refused:
        logger.warning("%s", refused)
        return "not run"


@shared_task
def interrupt_stale_imports() -> list[int]:
    """Celery beat's reaper: jobs whose worker stopped sending heartbeats become interrupted."""
    return interrupt_stale_import_jobs()
