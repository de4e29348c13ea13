"""What a web process loaded of the active model version: its serving index, its photo
encoder. Each is kept by a LoadedVersion, which loads it once and swaps it when another
version becomes active or a refresh points the active one at a new directory."""

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import faiss
from django.conf import settings

from outfits.cpu_priority import lower_thread_priority, short_interpreter_turns

from .engine.artifacts import read_manifest
from .engine.index import CompatibilityIndex
from .models import ModelVersion

if TYPE_CHECKING:  # torch-side: web processes import it with the first photo only
    from .engine.photo import PhotoEncoder
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


def _load_serving_index(directory: Path, served: CompatibilityIndex | None) -> CompatibilityIndex:
    read_manifest(directory, verify_only=CompatibilityIndex.owns)
    # One query vector per search: FAISS's OpenMP threads only add overhead, and spin
    # against the other web workers for the same cores (0.5 vs 0.3 ms at 12k items).
    faiss.omp_set_num_threads(settings.OUTFITS_SERVING_FAISS_THREADS)
    # What a refresh of the served version kept (linked files) is taken from the served
    # index, not read again: the loader's work follows the refresh's changes.
    index = CompatibilityIndex.load(directory, previous=served)
    index.rows_of_category, index.row_of_sku  # noqa: B018  (by the loader, not a request)
    return index


def _load_photo_encoder(directory: Path, served: "PhotoEncoder | None") -> "PhotoEncoder":
    from .engine.photo import PhotoEncoder  # torch: loaded here, with the first photo

    return PhotoEncoder.load(directory, read_manifest(directory))


def _large(index: CompatibilityIndex) -> bool:
    return len(index.skus) > settings.OUTFITS_MODEL_INLINE_ITEMS


class PhotoEncoderWarmingUp(RuntimeError):
    """The photo encoder is still loading in the background (torch, the backbone): the first
    photo after a start asks again in a few seconds."""


class PhotoEncoders(LoadedVersion["PhotoEncoder"]):
    """The active version's encoder of shoppers' photos: loaded once per process on the first
    photo (torch with it: web processes import torch only then), in the background when it is
    warmed (at a server's start); a version whose backbone failed to load is remembered for
    RETRY_SECONDS, so photos get that error again instead of each paying seconds of torch and
    open_clip set-up to fail the same way."""

    RETRY_SECONDS = 60.0

    def __init__(self) -> None:
        super().__init__("embedding photos with", _load_photo_encoder)
        self.warming: threading.Thread | None = None
        self.warming_lock = threading.Lock()
        self.failed: tuple[int, float, str] | None = None  # (version id, when, why)

    def clear(self) -> None:
        super().clear()
        self.failed = None

    def warm(self, version: ModelVersion) -> threading.Thread:
        """Load `version`'s encoder in a background thread, one at a time: at a server's start,
        or for a first photo that will not wait for it. No database in the thread (the version
        is given): its files are all it reads."""
        with self.warming_lock:
            if self.warming is None or not self.warming.is_alive():

                def warm() -> None:
                    with contextlib.suppress(Exception):  # encoder() logged why
                        self.encoder(version, wait_seconds=None)

                self.warming = threading.Thread(target=warm, name="warm photo encoder", daemon=True)
                self.warming.start()
            return self.warming

    def encoder(
        self, version: ModelVersion | None = ASK_THE_DATABASE, wait_seconds: float | None = None
    ) -> "tuple[ModelVersion, PhotoEncoder] | None":
        """The active version and its photo encoder. With `wait_seconds`, a process that has
        none loaded yet loads it in the background and waits that long for it, then raises
        PhotoEncoderWarmingUp. Raises BackboneUnavailable when the version's backbone weights
        cannot be loaded (for RETRY_SECONDS without trying again)."""
        from .engine.backbone import BackboneUnavailable  # torch: loaded with the first photo

        if version is ASK_THE_DATABASE:  # the caller may know it (the serving snapshot does)
            version = ModelVersion.objects.filter(is_active=True).first()
        if version is not None and self.current is None and wait_seconds is not None:
            warming = self.warm(version)
            warming.join(wait_seconds)
            if warming.is_alive():
                raise PhotoEncoderWarmingUp(
                    "Photo matching is warming up (its model loads once after the server "
                    "starts); try again in a few seconds."
                )
        failed = self.failed
        recently_failed = failed and version and failed[0] == version.pk
        if failed and recently_failed and time.monotonic() - failed[1] < self.RETRY_SECONDS:
            raise BackboneUnavailable(failed[2])
        try:
            return self.get(version)
        except BackboneUnavailable as error:
            logger.error("%s (photos try again in %.0f s)", error, self.RETRY_SECONDS)
            if version is not None:
                self.failed = (version.pk, time.monotonic(), str(error))
            raise


# What this process loaded of the active version.
serving_index = LoadedVersion[CompatibilityIndex]("serving", _load_serving_index, _large)
photo_encoders = PhotoEncoders()


# An A/B test's arms (outfits.experiments), each loaded beside the active version when it is
# another one: memory-mapped, so the workers of a machine share their files' pages too.
arm_indexes = {
    arm: LoadedVersion[CompatibilityIndex](f"serving arm {arm}", _load_serving_index, _large)
    for arm in ("A", "B")
}


def arm_compatibility_index(
    version: ModelVersion, arm: str
) -> tuple[ModelVersion, CompatibilityIndex] | None:
    """`version`'s index for an A/B test's `arm`: the active version's own when it is the one
    loaded as active, else loaded once per process for the arm (see LoadedVersion)."""
    active = serving_index.current
    if active is not None and _same(active[0], version):
        return active
    return arm_indexes[arm].get(version)


def clear_loaded() -> None:
    """Forget every index loaded (tests: no version leaks from one test's files into another)."""
    serving_index.clear()
    for loaded in arm_indexes.values():
        loaded.clear()


def active_compatibility_index(
    version: ModelVersion | None = ASK_THE_DATABASE,
) -> tuple[ModelVersion, CompatibilityIndex] | None:
    """The active version (the given one: the caller knows it) and its index, loaded once per
    process and swapped when another version becomes active (see LoadedVersion). Callers use
    the pair they got for a whole response, so no response mixes versions."""
    return serving_index.get(version)


def photo_encoder(
    version: ModelVersion | None = ASK_THE_DATABASE, wait_seconds: float | None = None
) -> "tuple[ModelVersion, PhotoEncoder] | None":
    """The active version and its photo encoder (PhotoEncoders.encoder)."""
    return photo_encoders.encoder(version, wait_seconds)
