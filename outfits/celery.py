"""The Celery application: configured from Django settings (CELERY_*), tasks found per app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")

app = Celery("outfits")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
