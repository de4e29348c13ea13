"""Celery tasks of the outfits app: the export of every product's matches to a file."""

import logging

from celery import shared_task

from .exports import mark_queued, write_export_file
from .match_filters import filters_from_text

logger = logging.getLogger(__name__)


@shared_task(soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def export_matches_file(
    name: str, limit: int | None, filter_words: dict, base_url: str = ""
) -> str:
    """Write the export `name` (outfits.exports) with the filters `filter_words` describes
    (match_filters.filters_from_text's arguments): for staff to download from the admin."""
    try:
        path = write_export_file(name, limit, filters_from_text(**filter_words), base_url)
    finally:
        mark_queued(name, queued=False)  # written or failed, it no longer waits
    logger.info("matches exported to %s (%d bytes)", path, path.stat().st_size)
    return path.name
