"""The Celery application: configured from Django settings (CELERY_*), tasks found per app."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")

app = Celery("outfits")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def run_below_web_requests(**_) -> None:
    """Before the pool forks: every process of the worker yields the CPU to web workers."""
    from outfits.cpu_priority import lower_cpu_priority

    lower_cpu_priority()
