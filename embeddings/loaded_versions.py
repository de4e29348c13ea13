"""What a web process loaded of the active model version: its serving index, its photo
encoder. Each is kept by a LoadedVersion, which loads it once and swaps it when another
version becomes active or a refresh points the active one at a new directory."""

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from django.conf import settings

from outfits.cpu_priority import lower_thread_priority, short_interpreter_turns

from .models import ModelVersion

logger = logging.getLogger(__name__)

Loaded = TypeVar("Loaded")
ASK_THE_DATABASE = ModelVersion(pk=-1)
LOAD_RETRY_SECONDS = 60.0


class LoadedVersion(Generic[Loaded]):
    """One thing loaded from the active version's directory, for the whole process. When the
    version changes, one thread loads the new one while the others go on with the loaded one;
    then all switch at once. When `beside(what is loaded)` (a large version), that thread is a
    new one at background priority, and the request that noticed goes on with the loaded one
    too; a load that fails there is not tried again for LOAD_RETRY_SECONDS."""

    def __init__(
        self,
        what: str,
        load: Callable[[Path, "Loaded | None"], Loaded],
        beside: Callable[[Loaded], bool] = lambda loaded: False,
    ) -> None:
        self.what = what  # for the log: "serving", "embedding photos with"
        self.load = load  # (directory, what is loaded now or None) -> the new one
        self.beside = beside
        self.lock = threading.Lock()
        self.current: tuple[ModelVersion, Loaded] | None = None
        # (version, directory) -> when loading it beside the served one failed (a damaged file)
        self.failed_loads: dict[tuple[int, str], float] = {}

    def clear(self) -> None:
        """Forget what was loaded (tests: no version leaks from one test's files into another)."""
        self.current = None
        self.failed_loads.clear()

    def get(
        self, version: ModelVersion | None = ASK_THE_DATABASE
    ) -> tuple[ModelVersion, Loaded] | None:
        """The active `version` (by default: one small query) and what was loaded of it."""
        if version is ASK_THE_DATABASE:
            version = ModelVersion.objects.filter(is_active=True).first()
        if version is None:
            return None
        current = self.current
        if current is not None and _same(current[0], version):
            return current
        if not self.lock.acquire(blocking=current is None):
            return current  # another thread is loading the new version
        if current is not None and self.beside(current[1]):
            # Verifying and mapping a large version's files takes a sync worker's requests
            # hundreds of milliseconds: a thread does it while they go on with the current one.
            attempt = (version.pk, version.directory)
            failed_at = self.failed_loads.get(attempt)
            if failed_at is not None and time.monotonic() - failed_at < LOAD_RETRY_SECONDS:
                self.lock.release()
                return current  # it failed moments ago: not again on every request
            threading.Thread(
                target=self._load_beside,
                args=(version, current, attempt),
                name=f"load {version.name}",
                daemon=True,
            ).start()
            return current
        try:
            loaded = self.current
            if loaded is None or not _same(loaded[0], version):
                loaded = self._load(version)
            return loaded
        finally:
            self.lock.release()

    def _load_beside(
        self, version: ModelVersion, current: tuple[ModelVersion, Loaded], attempt: tuple
    ) -> None:
        try:
            lower_thread_priority()  # the requests, of this process and others, first
            with short_interpreter_turns():
                self._load(version)
        except Exception:
            self.failed_loads[attempt] = time.monotonic()
            logger.exception(
                "%s model version %s (%s) failed to load; still serving %s; tried again in %.0f s",
                self.what,
                version.name,
                version.directory,
                current[0].directory,
                LOAD_RETRY_SECONDS,
            )
        finally:
            self.lock.release()

    def _load(self, version: ModelVersion) -> tuple[ModelVersion, Loaded]:
        directory = Path(settings.OUTFITS_MODEL_DIR) / version.directory
        served = self.current[1] if self.current is not None else None
        loaded = (version, self.load(directory, served))
        self.current = loaded
        logger.info("%s model version %s (%s)", self.what, version.name, version.directory)
        return loaded


def _same(loaded: ModelVersion, version: ModelVersion) -> bool:
    """The same version in the same directory: a refresh points the version at a new one."""
    return loaded.pk == version.pk and loaded.directory == version.directory
