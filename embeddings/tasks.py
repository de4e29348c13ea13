"""Celery tasks of the compatibility model (routed to the `training` queue)."""

from celery import shared_task

from . import services


@shared_task(soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def retrain(run_id: int) -> str:
    """Train, evaluate, index and activate a new model version for TrainingRun `run_id`."""
    return services.execute_training_run(run_id).status
