"""Model versions as staff handle them: activate one (web processes notice on their next
request), roll back to the one served before, collect old ones."""

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import ModelVersion

logger = logging.getLogger(__name__)


def activate(version: ModelVersion) -> None:
    """Make `version` the one served, in one transaction; web processes notice on next request."""
    with transaction.atomic():
        ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        version.is_active, version.activated_at = True, timezone.now()
        version.save(update_fields=["is_active", "activated_at"])
    from .version_refresh import request_refresh

    # Products that arrived since it embedded the catalog (during its training, say) join it.
    request_refresh()


def previous_version() -> ModelVersion | None:
    """The version served before the active one: what "roll back" returns to."""
    return (
        ModelVersion.objects.filter(is_active=False, activated_at__isnull=False)
        .order_by("-activated_at")
        .first()
    )


def roll_back() -> ModelVersion:
    previous = previous_version()
    if previous is None:
        raise ValueError("There is no previous version to roll back to.")
    activate(previous)
    return previous


# The ids of versions other parts of the site still serve (an A/B test's arms): each app adds
# a function naming its own (outfits.apps), so this module needs nothing of theirs.
VERSIONS_IN_USE: list[Callable[[], set[int]]] = []


def collect_old_versions(keep: int | None = None) -> list[str]:
    """Delete all but the newest `keep` versions (OUTFITS_KEEP_MODEL_VERSIONS), never the
    active or the previous one, and the half-written directories of runs that died. Call it
    only while no other run writes (the end of a run, which holds the training lock)."""
    keep = settings.OUTFITS_KEEP_MODEL_VERSIONS if keep is None else keep
    root = Path(settings.OUTFITS_MODEL_DIR)
    protected = {v.pk for v in [previous_version()] if v is not None}
    protected |= set(ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True))
    for in_use in VERSIONS_IN_USE:
        protected |= in_use()
    removed = []
    for version in ModelVersion.objects.order_by("-created_at", "-pk")[keep:]:
        if version.pk in protected:
            continue
        # Its own directory, and those its refreshes wrote (embeddings.version_refresh).
        for directory in [root / version.name, *root.glob(f"{version.name}.r*")]:
            shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(root / version.directory, ignore_errors=True)
        version.delete()
        removed.append(version.name)
    for orphan in root.glob(".incomplete-*") if root.is_dir() else []:
        shutil.rmtree(orphan, ignore_errors=True)
    if removed:
        logger.info("removed old model versions %s", ", ".join(removed))
    return removed
