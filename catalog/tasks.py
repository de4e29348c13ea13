"""Celery tasks of the catalog."""

from celery import shared_task

from .import_jobs import run_import_job


@shared_task(acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def run_import(job_id: int) -> str:
    """Run (or resume, after a lost worker) ImportJob `job_id`."""
    return run_import_job(job_id).status
