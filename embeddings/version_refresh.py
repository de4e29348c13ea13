"""The active model version refreshed with the catalog's changes, without retraining: products
added since it was built, or changed in what its model sees of them (image, title, colour,
category, attributes), are embedded by the version's own frozen pipeline (its backbone, tuned
image-tower top and compatibility head: what its training gave the catalog) and put into its
index; products no longer active are taken out; the computed neighbours follow in both
directions (embeddings.engine.refresh). The result is written as a new, whole, checksummed directory
beside the old one, and the version is pointed at it in one transaction: web processes load
it as they load a newly activated version, while the previous one keeps serving."""

import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image

from catalog.changes import Generation, current_generation, products_changed_between
from catalog.heartbeat import Heartbeat
from catalog.models import Category, Product

from .engine.artifacts import (
    MANIFEST_NAME,
    ModelVersionWriter,
    check_model_directory,
    read_manifest,
    remember_checksums,
)
from .engine.index import CompatibilityIndex
from .engine.layered import LAYERED_UP_TO
from .engine.progress import Progress, no_progress
from .engine.refresh import Upsert, refreshed
from .engine.threads import limited_threads
from .models import ModelVersion, VersionRefresh

if TYPE_CHECKING:
    from .engine.photo import PhotoEncoder

logger = logging.getLogger(__name__)

# sku → fingerprint of what the model saw of each product (fingerprint()), in every version
# directory written since refreshes exist; a version without it refreshes additions and
# removals only. A refresh links its version's file and writes the changes since beside it.
FINGERPRINTS_FILE = "fingerprints.json"
FINGERPRINT_CHANGES_FILE = "fingerprints.changes.json"
Status = VersionRefresh.Status


class RefreshBusy(RuntimeError):
    """Another refresh of the version is running."""


def fingerprint(product: Product) -> str:
    """What the model sees of a product, hashed: its image (by content and stored name: an
    image replaced in the admin has a new name, its hash is the importer's) and its words."""
    from .training import item_text

    seen = f"{product.image_sha256}|{product.image.name}\n{item_text(product)}"
    return hashlib.sha256(seen.encode()).hexdigest()[:16]


# Before the fingerprint of a product whose image could not be read: matched from its words
# meanwhile; every refresh tries its image again.
UNREAD = "unreadable:"


def write_fingerprints(directory: Path, products: list[Product], catalog_as_of: Generation) -> None:
    """The fingerprints of `products` (what a version was built from) beside it, with the
    catalog change (catalog.changes) it had seen: a refresh takes in the changes after it."""
    known = {product.sku: fingerprint(product) for product in products}
    _write_known(directory, known, catalog_as_of)


def _write_known(directory: Path, known: dict[str, str], catalog_as_of: Generation) -> None:
    stored = {"catalog_as_of": list(catalog_as_of), "products": known}
    (directory / FINGERPRINTS_FILE).write_text(json.dumps(stored))


@dataclass(frozen=True)
class Fingerprints:
    """A version's fingerprints (`known`: sku → fingerprint()) and the catalog change they
    are as of (None: unknown, as for a version written before refreshes, or without the
    change, before it was kept). Saved as the whole file they were first written to (`base`),
    linked, and beside it what `changed` and which SKUs were `removed` since: a refresh of a
    1M catalog writes its changes, not a million fingerprints (about 1.5 s)."""

    known: dict[str, str]
    as_of: Generation | None
    base: Path | None = None
    changed: dict[str, str] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()

    @classmethod
    def read(cls, directory: Path) -> "Fingerprints":
        file = directory / FINGERPRINTS_FILE
        if not file.is_file():
            return cls({}, None)
        stored = json.loads(file.read_text())
        if "products" not in stored:
            return cls(stored, None)  # its format before the catalog change was kept
        known, as_of = stored["products"], stored["catalog_as_of"]
        changes_file = directory / FINGERPRINT_CHANGES_FILE
        changed, removed = {}, frozenset()
        if changes_file.is_file():
            changes = json.loads(changes_file.read_text())
            changed, removed, as_of = (
                changes["products"],
                frozenset(changes["removed"]),
                changes["catalog_as_of"],
            )
            known.update(changed)
            for sku in removed:
                known.pop(sku, None)
        return cls(known, (int(as_of[0]), str(as_of[1])), file, changed, removed)

    def updated(
        self, fingerprints: dict[str, str], removals: Collection[str], as_of: Generation
    ) -> "Fingerprints":
        """These with a refresh's: the `fingerprints` of the products it put in, without the
        `removals`."""
        known = self.known | fingerprints
        changed = self.changed | fingerprints
        for sku in removals:
            known.pop(sku, None)
            changed.pop(sku, None)
        removed = (self.removed | frozenset(removals)) - fingerprints.keys()
        return Fingerprints(known, as_of, self.base, changed, removed)

    def save(self, directory: Path) -> None:
        """Saved in `directory`: linked to the base file with the changes beside it, while
        they are few (LAYERED_UP_TO of the products); else whole."""
        if self.as_of is None:
            raise ValueError("fingerprints are saved with the catalog change they are as of")
        few = len(self.changed) + len(self.removed) <= LAYERED_UP_TO * len(self.known)
        if self.base is None or not self.base.is_file() or not few:
            _write_known(directory, self.known, self.as_of)
            return
        os.link(self.base, directory / FINGERPRINTS_FILE)
        changes = {
            "catalog_as_of": list(self.as_of),
            "products": self.changed,
            "removed": sorted(self.removed),
        }
        (directory / FINGERPRINT_CHANGES_FILE).write_text(json.dumps(changes))

    def saved_in(self, directory: Path) -> "Fingerprints":
        """These as Fingerprints.read(directory) gives them, for the directory they were
        saved to (and moved with it), without reading them again."""
        if (directory / FINGERPRINT_CHANGES_FILE).is_file():
            return Fingerprints(
                self.known, self.as_of, directory / FINGERPRINTS_FILE, self.changed, self.removed
            )
        return Fingerprints(self.known, self.as_of, directory / FINGERPRINTS_FILE)


def read_fingerprints(directory: Path) -> tuple[dict[str, str], Generation | None]:
    """A version's fingerprints and the catalog change they are as of (Fingerprints)."""
    read = Fingerprints.read(directory)
    return read.known, read.as_of


PENDING_KEY = "outfits:version-refresh-pending"


def request_refresh(**_) -> None:
    """A catalog change (catalog.signals.catalog_changed): refresh the active version once it
    commits, on the OUTFITS_REFRESH_QUEUE. Changes within OUTFITS_REFRESH_DELAY_SECONDS of a
    request make one refresh (which takes in everything committed when it runs)."""
    if settings.OUTFITS_REFRESH_ON_CHANGE:
        transaction.on_commit(_enqueue)


def _enqueue() -> None:
    from .tasks import refresh_version

    if not ModelVersion.objects.filter(is_active=True).exists():
        return
    delay = settings.OUTFITS_REFRESH_DELAY_SECONDS
    if not settings.CELERY_TASK_ALWAYS_EAGER:  # in-process tasks run now, each on its own
        try:
            if not cache.add(PENDING_KEY, 1, timeout=delay):
                return  # one is on its way, and will see this change too
        except Exception:
            logger.warning("no shared cache: the refresh is requested anyway", exc_info=True)
    try:
        refresh_version.apply_async(countdown=delay)
    except Exception:
        logger.exception(
            "the refresh could not be queued (is the broker up?); run manage.py refresh_version"
        )
        cache.delete(PENDING_KEY)


class RefreshHeartbeat(Heartbeat):
    def __init__(self, refresh: VersionRefresh) -> None:
        super().__init__(str(refresh), settings.OUTFITS_TRAINING_HEARTBEAT_SECONDS)
        self.refresh_id = refresh.pk

    def beat(self) -> None:
        VersionRefresh.objects.filter(pk=self.refresh_id, status=Status.RUNNING).update(
            heartbeat_at=timezone.now()
        )


def refresh_active_version(progress: Progress = no_progress) -> VersionRefresh | None:
    """Refresh the active version with what changed in the catalog since it was built or last
    refreshed; None when no version is active. Raises RefreshBusy while another refresh of it
    runs (one whose worker went silent is failed first and does not count)."""
    version = ModelVersion.objects.filter(is_active=True).first()
    if version is None:
        return None
    refresh = _claim(version)
    started = time.monotonic()
    try:
        with RefreshHeartbeat(refresh), limited_threads(settings.OUTFITS_REFRESH_THREADS):
            _run(version, refresh, _recorded(refresh, progress))
    except Exception as error:
        logger.exception("%s failed", refresh)
        VersionRefresh.objects.filter(pk=refresh.pk).update(
            status=Status.FAILED,
            message=f"{type(error).__name__}: {error}",
            seconds=time.monotonic() - started,
            finished_at=timezone.now(),
        )
        raise
    refresh.refresh_from_db()
    return refresh


def _recorded(refresh: VersionRefresh, progress: Progress) -> Progress:
    """`progress`, and the count of products embedded written to the refresh's row (at most
    twice a second, and at the end)."""
    written = [0.0]

    def report(stage: str, done: int, total: int) -> None:
        progress(stage, done, total)
        now = time.monotonic()
        if now - written[0] >= 0.5 or done == total:
            written[0] = now
            VersionRefresh.objects.filter(pk=refresh.pk).update(embedded=done)

    return report


def _claim(version: ModelVersion) -> VersionRefresh:
    stale = timezone.now() - timedelta(seconds=settings.OUTFITS_TRAINING_STALE_SECONDS)
    VersionRefresh.objects.filter(
        version=version, status=Status.RUNNING, heartbeat_at__lt=stale
    ).update(
        status=Status.FAILED,
        message="its worker stopped sending heartbeats (killed or lost)",
        finished_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            return VersionRefresh.objects.create(
                version=version,
                worker=f"{socket.gethostname()} pid {os.getpid()}",
                heartbeat_at=timezone.now(),
            )
    except IntegrityError:
        running = VersionRefresh.objects.filter(version=version, status=Status.RUNNING).first()
        raise RefreshBusy(f"{running or 'another refresh'} is running") from None


class Laps(dict[str, float]):
    """Seconds by stage of a refresh, each counted from the end of the one before."""

    def __init__(self) -> None:
        super().__init__()
        self.since = time.monotonic()

    def __call__(self, stage: str) -> None:
        now = time.monotonic()
        self[stage] = round(now - self.since, 2)
        self.since = now


def _run(version: ModelVersion, refresh: VersionRefresh, progress: Progress) -> None:
    started = time.monotonic()
    laps = Laps()
    root = Path(settings.OUTFITS_MODEL_DIR)
    for orphan in root.glob(f".incomplete-{version.name}.r*"):  # of a refresh that died
        shutil.rmtree(orphan, ignore_errors=True)
    served = root / version.directory
    manifest = read_manifest(served, verify_checksums=False)
    remember_checksums(served, manifest)  # the files its refresh links, not hashed again
    index, prints = _last_written.get(str(served)) or _loaded(served)
    known, as_of = prints.known, prints.as_of
    confirmed = (
        VersionRefresh.objects.filter(version=version, status=Status.SUCCEEDED)
        .exclude(catalog_as_of=None)
        .values_list("catalog_as_of", flat=True)
        .first()  # the latest: a refresh that found nothing to change confirms the files
    )
    if confirmed:
        as_of = (int(confirmed[0]), str(confirmed[1]))
    now = current_generation()  # read first: a change after it is the next refresh's
    products, removals = _catalog_changes(index, known, as_of, now)
    laps("reading")
    if products or removals:  # before the work: a full disk fails it now, and says so
        check_model_directory(
            root,
            settings.OUTFITS_MODEL_DIR_MIN_FREE_MB,
            nothing_done="The active version was not refreshed and serves as before",
            again="refresh again (manage.py refresh_version, or the next catalog change does)",
        )
    upserts: dict[str, Upsert] = {}
    fingerprints = {sku: fingerprint(p) for sku, p in products.items()}
    unread: list[str] = []
    fallbacks: dict[str, str] = {}
    if products:
        from .engine.photo import PhotoEncoder

        encoder = PhotoEncoder.load(served, manifest)
        upserts, unread = _embedded(encoder, list(products.values()), progress)
        for sku in unread:
            fingerprints[sku] = UNREAD + fingerprints[sku]
            if known.get(sku) == fingerprints[sku]:  # as unreadable as before: no change
                del upserts[sku], products[sku]
        fallbacks = _fallbacks(encoder, index, list(products.values()))
        laps("embedding")
    added = sum(sku not in index.row_of_sku for sku in products)
    counts = {"added": added, "changed": len(products) - added, "removed": len(removals)}
    counts["catalog_as_of"] = list(now)
    if not products and not removals:
        _finish(refresh, Status.SUCCEEDED, started, counts, message="nothing changed")
        _keep_for_next(str(served), index, replace(prints, as_of=as_of))
        return

    after = refreshed(index, upserts, removals, fallbacks)
    laps("lists")
    name = f"{version.name}.r{refresh.pk}"
    with ModelVersionWriter(root, name) as writer:
        after.save(writer.directory)
        # A product the version never fingerprinted (built before fingerprints) stays
        # unfingerprinted: taken as unchanged, not as changed by every later refresh.
        prints_after = replace(prints, as_of=as_of).updated(fingerprints, removals, now)
        prints_after.save(writer.directory)
        link_model_files(served, writer.directory)
        facts = {"item_count": len(after.skus), "refresh_of": version.name}
        directory = writer.commit(**inherited_facts(manifest) | facts | counts)
    laps("writing")
    message = ""
    if unread:
        message = (
            f"{len(unread)} image(s) could not be read; matched from their words until they "
            f"can: {', '.join(sorted(unread)[:20])}"
        )
    with transaction.atomic():
        # Served by web processes from their next request, as an activation is.
        pointed = ModelVersion.objects.filter(pk=version.pk, is_active=True).update(
            directory=directory.name
        )
        if pointed:
            fields = {"directory": directory.name, "message": message, "stages": list(laps.items())}
            _finish(refresh, Status.SUCCEEDED, started, counts, **fields)
    if not pointed:
        shutil.rmtree(directory, ignore_errors=True)
        _finish(refresh, Status.DROPPED, started, counts, message="no longer the active version")
        return
    _keep_for_next(str(directory), after.mapped(directory), prints_after.saved_in(directory))
    _collect_refreshes(version, keep={directory.name, served.name})
    logger.info("%s: %s in %.1f s", refresh, counts, time.monotonic() - started)


# The directory this worker process refreshed last, as it wrote it (or found it, when nothing
# had changed): the next refresh of the version starts from it instead of parsing its items
# and fingerprints again (a 1M catalog's take about 10 s). Keyed by the directory's path: any
# other is loaded from its files.
_last_written: dict[str, tuple[CompatibilityIndex, Fingerprints]] = {}


def _keep_for_next(directory: str, index: CompatibilityIndex, prints: Fingerprints) -> None:
    _last_written.clear()
    _last_written[directory] = (index, prints)


def _loaded(served: Path) -> tuple[CompatibilityIndex, Fingerprints]:
    return CompatibilityIndex.load(served), Fingerprints.read(served)


def link_model_files(source: Path, target: Path) -> None:
    """The model's files of the version in `source` (its head, probe, photo words and tuned
    top: what a refresh keeps), hard-linked into `target`, never copied or rewritten; not its
    index and fingerprints, which `target` has written (a layer of `source`'s that `target`
    wrote whole would lay stale rows over it)."""
    written = {MANIFEST_NAME, FINGERPRINTS_FILE, FINGERPRINT_CHANGES_FILE}
    for file in source.rglob("*"):
        relative = file.relative_to(source)
        linked = target / relative
        if relative.as_posix() in written or CompatibilityIndex.owns(relative.as_posix()):
            continue
        if file.is_file() and not linked.exists():
            linked.parent.mkdir(parents=True, exist_ok=True)
            os.link(file, linked)


def inherited_facts(manifest: dict) -> dict:
    """The facts of a version's making (backbone, training, metrics…) that a version written
    from it (a refresh) carries on; the writer gives the new one its own name and files."""
    own = {"files", "name", "created_at", "format_version"}
    return {key: value for key, value in manifest.items() if key not in own}


def _catalog_changes(
    index: CompatibilityIndex,
    known: dict[str, str],
    as_of: Generation | None,
    now: Generation,
) -> tuple[dict[str, Product], list[str]]:
    """The active products new to `index` or changed in what its model sees (by SKU), and the
    SKUs it holds of products no longer active. Read from the products the catalog's change
    log (catalog.changes) names after `as_of`, so the work follows the changes, not the
    catalog; from the whole catalog when the log does not reach back that far, or when the
    counts disagree (a deleted product, a renamed SKU, one without a picture left out of the
    training: rows the log cannot name)."""
    ids = None
    if as_of is not None:
        ids = set() if as_of == now else products_changed_between(as_of, now)
    if ids is not None:
        retried = [sku for sku, print_ in known.items() if print_.startswith(UNREAD)]
        logged = Product.objects.filter(Q(pk__in=sorted(ids)) | Q(sku__in=retried))
        logged = logged.select_related("category")
        active = {p.sku: p for p in logged if p.active}
        changes = _compared(index, known, active)
        removals = [p.sku for p in logged if not p.active and p.sku in index.row_of_sku]
        after = len(index.skus) + sum(s not in index.row_of_sku for s in changes) - len(removals)
        if after == Product.objects.filter(active=True).count():
            return changes, removals
        logger.info("the change log and the catalog disagree: the whole catalog is compared")
    products = {p.sku: p for p in Product.objects.filter(active=True).select_related("category")}
    return _compared(index, known, products), [s for s in index.skus if s not in products]


def _compared(
    index: CompatibilityIndex, known: dict[str, str], products: dict[str, Product]
) -> dict[str, Product]:
    """Those of `products` the index lacks or knows by another fingerprint."""
    changed = {}
    for sku, product in products.items():
        print_ = fingerprint(product)
        if sku not in index.row_of_sku or known.get(sku, print_) != print_:
            changed[sku] = product
    return changed


# Products embedded per round: bounds the memory of a large refresh's image tokens.
EMBEDDING_ROUND = 2048


def _embedded(
    encoder: "PhotoEncoder", products: list[Product], progress: Progress
) -> tuple[dict[str, Upsert], list[str]]:
    """The products' item vectors by the version's own pipeline, as its training embedded its
    catalog (in batches; on the workers of OUTFITS_FANOUT_QUEUE when it names one); a product
    without a picture, or whose picture cannot be read, from its words alone. Returns the
    vectors and the SKUs of unreadable pictures."""
    from .engine.encode import encode_images, encode_trunk_tokens
    from .training import item_text, workers_or

    pictured, unread = [], []
    for product in products:
        if product.image:
            (pictured if _readable(Path(product.image.path)) else unread).append(product)
    frozen = encoder.catalog_frozen_blocks
    device = settings.OUTFITS_EMBEDDING_DEVICE
    upserts: dict[str, Upsert] = {}

    def images_done(_stage: str, done: int, _total: int) -> None:  # within a round
        progress("embedding", len(upserts) + done, len(products))

    def here(paths: list[Path]):
        on = {"device": device, "progress": images_done}
        if frozen is None:
            return encode_images(encoder.backbone, paths, **on)
        return encode_trunk_tokens(encoder.backbone, paths, frozen, **on).numpy()

    embed = workers_or(encoder.backbone, frozen, images_done, here)
    for start in range(0, len(pictured), EMBEDDING_ROUND):
        batch = pictured[start : start + EMBEDDING_ROUND]
        images = embed([Path(p.image.path) for p in batch])
        vectors = encoder.encode_catalog(images, [item_text(p) for p in batch])
        upserts |= {p.sku: Upsert(p.category.name, v) for p, v in zip(batch, vectors, strict=True)}
        progress("embedding", len(upserts), len(products))
    wordy = [p for p in products if p.sku not in upserts]
    if wordy:
        vectors = encoder.encode_words([item_text(p) for p in wordy])
        upserts |= {p.sku: Upsert(p.category.name, v) for p, v in zip(wordy, vectors, strict=True)}
    progress("embedding", len(upserts), len(products))
    if unread:
        logger.warning("%d images could not be read: %s", len(unread), [p.sku for p in unread])
    return upserts, [p.sku for p in unread]


def _readable(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception:
        return False
    return True


def _fallbacks(
    encoder: "PhotoEncoder", index: CompatibilityIndex, products: list[Product]
) -> dict[str, str]:
    """For each category the version has never seen, the known one it stands in for until a
    training learns it: the one its products' pictures look like (the version's category
    probe), else the known category of its group with the most items."""
    unknown: dict[str, list[Product]] = {}
    for product in products:
        name = product.category.name
        if name not in index.indexes and name not in index.category_fallbacks:
            unknown.setdefault(name, []).append(product)
    fallbacks = {}
    for name, members in unknown.items():
        votes: Counter[str] = Counter()
        for product in members:
            if product.image:
                with Image.open(product.image.path) as image:
                    votes[encoder.guess_category(image)] += 1
        if not votes and members[0].category.group:
            same_group = Category.objects.filter(group=members[0].category.group)
            for known in same_group.values_list("name", flat=True):
                votes[known] = len(index.rows_of_category.get(known, ()))
        known = [(category, n) for category, n in votes.most_common() if category in index.indexes]
        if known and known[0][1]:
            fallbacks[name] = known[0][0]
    return fallbacks


def _finish(
    refresh: VersionRefresh, status: str, started: float, counts: dict, **fields: object
) -> None:
    VersionRefresh.objects.filter(pk=refresh.pk).update(
        status=status,
        seconds=time.monotonic() - started,
        finished_at=timezone.now(),
        **counts,
        **fields,
    )


def _collect_refreshes(version: ModelVersion, keep: set[str]) -> None:
    """Delete the version's refresh directories but the served one and the one before it (a
    web process may still be loading that)."""
    for directory in Path(settings.OUTFITS_MODEL_DIR).glob(f"{version.name}.r*"):
        if directory.name not in keep:
            shutil.rmtree(directory, ignore_errors=True)
