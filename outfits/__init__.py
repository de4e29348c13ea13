"""The Django project package and the outfits app (curated outfits, recommendations, REST API)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
