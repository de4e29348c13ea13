"""The Django side of the engine: gather products and outfits, run training, write and activate
model versions, and hand web processes the active compatibility index."""

import contextlib
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.changes import current_generation
from catalog.models import Product
from outfits.models import OutfitItem

from .engine.artifacts import ModelVersionWriter, file_sha256, read_manifest
from .engine.index import CompatibilityIndex
from .engine.progress import Progress, no_progress
from .engine.space import CompatibilitySpace
from .engine.vector_cache import ImageVectorCache
from .loaded_versions import ASK_THE_DATABASE, LoadedVersion
from .models import ModelVersion

if TYPE_CHECKING:  # torch-side types; web processes never import them
    from .engine.backbone import Backbone
    from .engine.photo import PhotoEncoder
    from .engine.train import ItemEncoder

logger = logging.getLogger(__name__)

VALIDATION_FRACTION = 0.15
COOCCURRENCE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)  # tried on held-out outfits when "auto"
SEED = 0


class Stopwatch:
    """Seconds spent in each stage of a job, for its report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, stage: str) -> dict[str, float]:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self.last, 1)
        self.last = now
        return self.seconds


def embeddable_products():
    return (
        Product.objects.filter(active=True)
        .exclude(image="")
        .select_related("category")
        .order_by("pk")
    )


def training_data() -> tuple[list[Product], list[list[int]]]:
    """Active products with an image (rows) and outfits as lists of row numbers, in a stable
    order. A product without an image has nothing to embed yet."""
    products = list(embeddable_products())
    row_of = {product.pk: row for row, product in enumerate(products)}
    outfits: dict[int, list[int]] = {}
    for outfit_id, product_id in OutfitItem.objects.order_by("outfit_id", "position").values_list(
        "outfit_id", "product_id"
    ):
        if product_id in row_of:
            outfits.setdefault(outfit_id, []).append(row_of[product_id])
    return products, [items for items in outfits.values() if len(items) >= 2]


@dataclass(frozen=True)
class TrainedVersion:
    version: ModelVersion  # written and recorded, not yet active
    comparison: dict[str, Any]  # against the active version on the same questions; {} if none


def train_model_version(
    epochs: int,
    unfrozen_blocks: int = 0,
    pretrained: str | None = None,
    progress: Progress = no_progress,
    check_cancelled: Callable[[], None] = lambda: None,
) -> TrainedVersion:
    """Embed the catalog, train the compatibility head (and the backbone's last
    `unfrozen_blocks` image blocks) on outfit triplets, evaluate on held-out outfits beside the
    active version, build the per-category indexes and write an inactive model version.
    `check_cancelled()` is asked at every batch and may raise to abandon the run."""
    from .engine.backbone import IMAGE_TOWER_TOP_FILE, load_backbone, save_image_tower_top
    from .engine.category_probe import PROBE_FILE, fit_category_probe, held_out_accuracy
    from .engine.evaluate import split_outfits
    from .engine.train import (
        HEAD_FILE,
        HeadTrainingConfig,
        save_head,
        train_compatibility_head,
        trained_space,
    )
    from .version_refresh import write_fingerprints

    stopwatch = Stopwatch()
    progress("preparing", 0, 1)
    catalog_as_of = current_generation()  # read first: a later change is a refresh's to take in
    products, outfits = training_data()
    if len(outfits) < 2:
        raise ValueError(
            f"Training needs at least 2 outfits of 2+ active products; found {len(outfits)}. "
            "Import outfits first (manage.py import_outfits)."
        )
    backbone = load_backbone(settings.OUTFITS_BACKBONE, pretrained or settings.OUTFITS_PRETRAINED)
    progress("preparing", 1, 1)
    # Hashed once: it names the image-vector cache and goes into the manifest.
    pretrained_file = Path(backbone.pretrained)
    pretrained_sha256 = file_sha256(pretrained_file) if pretrained_file.is_file() else None
    items, embedded = embed_catalog(
        backbone, pretrained_sha256, products, unfrozen_blocks, progress
    )
    item_vectors = items.fixed.numpy()  # the backbone's own vectors, before any tuning
    stopwatch.lap("embedding")
    category_names = [p.category.name for p in products]
    categories, category_codes = np.unique(category_names, return_inverse=True)

    rng = np.random.default_rng(SEED)
    train_rows, validation_rows = split_outfits(len(outfits), VALIDATION_FRACTION, rng)
    train_outfits = [outfits[i] for i in train_rows]
    validation_outfits = [outfits[i] for i in validation_rows]
    config = HeadTrainingConfig(
        epochs=epochs, seed=SEED, learning_rate=settings.OUTFITS_TRAINING_LEARNING_RATE
    )
    head, losses = train_compatibility_head(
        items, train_outfits, category_codes, config, progress, check_cancelled=check_cancelled
    )
    stopwatch.lap("training")
    progress("evaluating", 0, 1)
    space = trained_space(head, items, category_codes, categories.tolist(), train_outfits)
    skus = [p.sku for p in products]
    metrics, comparison = validation_metrics(
        skus, train_outfits, validation_outfits, space, item_vectors, rng
    )
    metrics["final_loss"] = losses[-1]
    # What a shopper's photo shows: a linear probe on the backbone's own image vectors.
    image_vectors = item_vectors[:, : item_vectors.shape[1] // 2]
    category_probe = fit_category_probe(image_vectors, category_names)
    metrics["category_accuracy"] = held_out_accuracy(image_vectors, category_names)
    progress("evaluating", 1, 1)
    stopwatch.lap("evaluating")
    logger.info(
        "evaluation: FITB %s on %d questions, compatibility AUC %s",
        _figure(metrics["fitb"]),
        metrics["fitb_questions"],
        _figure(metrics["auc"]),
    )  # every metric is kept on the run and its version

    progress("indexing", 0, len(products))
    depth = settings.OUTFITS_COMPUTED_NEIGHBOURS
    fan_out = bool(settings.OUTFITS_FANOUT_QUEUE) and depth > 0
    index = CompatibilityIndex.build(
        skus,
        category_names,
        space.vectors,
        outfits,
        cooccurrence_weight=float(metrics["cooccurrence_weight"]),
        pair_weights=space.pair_weights,
        neighbour_depth=0 if fan_out else depth,
        progress=progress,
    )
    name = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    with ModelVersionWriter(Path(settings.OUTFITS_MODEL_DIR), name) as writer:
        check_cancelled()
        index.save(writer.directory)
        write_fingerprints(writer.directory, products, catalog_as_of)
        if fan_out:  # the workers read the version's files, written but not yet committed
            from .fanout import neighbours_on_workers

            index.neighbours = neighbours_on_workers(writer.directory, index, depth, progress)
            index.save_neighbours(writer.directory)
        check_cancelled()  # the last point to give up: what follows is quick
        save_head(head, writer.directory / HEAD_FILE)
        category_probe.save(writer.directory / PROBE_FILE)
        if items.image_top is not None:
            save_image_tower_top(items.image_top, writer.directory / IMAGE_TOWER_TOP_FILE)
        directory = writer.commit(
            backbone=backbone.name,
            pretrained=backbone.pretrained,
            pretrained_sha256=pretrained_sha256,
            item_count=len(products),
            outfit_count=len(outfits),
            train_outfit_count=len(train_outfits),
            item_vector_dim=int(item_vectors.shape[1]),
            unfrozen_blocks=unfrozen_blocks,
            images_embedded=embedded,
            compatibility_dim=int(space.vectors.shape[1]),
            category_pairs_weighted=len(space.pair_weights),
            training=asdict(config),
            epoch_losses=losses,
            seconds=stopwatch.lap("indexing"),
            metrics=metrics,
        )
    progress("indexing", len(products), len(products))
    version = ModelVersion.objects.create(
        name=name,
        directory=directory.name,
        backbone=backbone.name,
        pretrained=backbone.pretrained,
        metrics=metrics,
        manifest=read_manifest(directory, False),
    )
    return TrainedVersion(version, comparison)


def embed_catalog(
    backbone: "Backbone",
    pretrained_sha256: str | None,
    products: list[Product],
    unfrozen_blocks: int,
    progress: Progress,
) -> tuple["ItemEncoder", int]:
    """Every product as image ⊕ text vectors; with `unfrozen_blocks`, also the frozen trunk's
    tokens and the tower's top to tune. Images already seen by this backbone come from the
    cache; returns the encoder and how many images were embedded afresh."""
    import torch

    from .engine.backbone import ImageTowerTop
    from .engine.encode import (
        encode_images,
        encode_items,
        encode_trunk_tokens,
        image_vectors_from_tokens,
    )
    from .engine.train import ItemEncoder

    image_paths = [Path(p.image.path) for p in products]
    image_keys = [p.image_sha256 or p.image.name for p in products]
    device = settings.OUTFITS_EMBEDDING_DEVICE
    weights_identity = pretrained_sha256 or backbone.pretrained
    image_top: ImageTowerTop | None = None
    tokens: torch.Tensor | None = None
    if unfrozen_blocks:
        # The frozen trunk's tokens are cached like image vectors; the tuned top runs in
        # training steps.
        image_top = ImageTowerTop(backbone.model.visual, unfrozen_blocks)
        frozen_blocks = len(backbone.model.visual.transformer.resblocks) - unfrozen_blocks
        cached_tokens, embedded = ImageVectorCache(
            image_cache_path(backbone.name, f"{weights_identity}|trunk{frozen_blocks}")
        ).vectors_for(
            image_keys,
            image_paths,
            workers_or(
                backbone,
                frozen_blocks,
                progress,
                lambda paths: encode_trunk_tokens(
                    backbone, paths, frozen_blocks, progress=progress, device=device
                ).numpy(),
            ),
        )
        tokens = torch.from_numpy(cached_tokens)
        image_vectors = image_vectors_from_tokens(image_top, tokens)
    else:
        image_vectors, embedded = ImageVectorCache(
            image_cache_path(backbone.name, weights_identity)
        ).vectors_for(
            image_keys,
            image_paths,
            workers_or(
                backbone,
                None,
                progress,
                lambda paths: encode_images(backbone, paths, progress=progress, device=device),
            ),
        )
    logger.info("embedded %d new images, %d from the cache", embedded, len(products) - embedded)
    progress("embedding images", len(products), len(products))  # also when all were cached
    item_vectors = encode_items(
        backbone, image_paths, [item_text(p) for p in products], progress, image_vectors
    )
    return ItemEncoder(item_vectors, image_top, tokens), embedded


def workers_or(
    backbone: "Backbone",
    frozen_blocks: int | None,
    progress: Progress,
    encode_here: Callable[[list[Path]], np.ndarray],
) -> Callable[[list[Path]], np.ndarray]:
    """How a run embeds its new images: in chunks on the workers of OUTFITS_FANOUT_QUEUE when
    it names one, else `encode_here`, in this process."""
    from .fanout import EmbeddingJob, encode_on_workers

    if not settings.OUTFITS_FANOUT_QUEUE:
        return encode_here
    job = EmbeddingJob(backbone.name, backbone.pretrained, frozen_blocks)
    return lambda paths: encode_on_workers(job, paths, progress)


def pretrain_backbone(
    output: Path,
    epochs: int,
    progress: Progress = no_progress,
    extra_pairs: list[tuple[Path, str]] | None = None,
) -> list[float]:
    """Build the offline backbone: train the project's small open_clip model contrastively on
    catalog images and their captions (plus `extra_pairs` of image and caption from a related
    domain), and save it where OUTFITS_PRETRAINED can point."""
    from .engine.backbone import (
        OFFLINE_BACKBONE,
        create_untrained_backbone,
        save_backbone_checkpoint,
    )
    from .engine.pretrain import PretrainingConfig, pretrain_contrastive

    products = list(embeddable_products())
    if len(products) < 2:
        raise ValueError("Pretraining needs a catalog: import products first (import_catalog).")
    pairs = [(Path(p.image.path), item_text(p)) for p in products] + list(extra_pairs or [])
    backbone = create_untrained_backbone(OFFLINE_BACKBONE, seed=SEED)
    losses = pretrain_contrastive(
        backbone,
        [image for image, _ in pairs],
        [caption for _, caption in pairs],
        PretrainingConfig(epochs=epochs, seed=SEED),
        progress,
    )
    save_backbone_checkpoint(backbone, output)
    return losses


def read_caption_pairs(csv_path: Path, image_column: str, caption_columns: list[str]):
    """(image path, caption) pairs from a CSV such as fashion-product-images/styles.csv; image
    paths are relative to the CSV's folder; rows whose image is missing are skipped."""
    from catalog.csv_import import detect_layout, iter_rows

    layout = detect_layout(csv_path)
    absent = [c for c in [image_column, *caption_columns] if c not in layout.header]
    if absent:
        raise ValueError(f"{csv_path.name} lacks column(s) {', '.join(absent)}")
    pairs = []
    for _, row in iter_rows(csv_path, layout):
        image = csv_path.parent / row[image_column]
        caption = ", ".join(row[c] for c in caption_columns if row[c])
        if row[image_column] and caption and image.is_file():
            pairs.append((image, caption))
    return pairs


def item_text(product: Product) -> str:
    """The product in words: the caption of contrastive pretraining and the text half of its
    item vector, so a new arrival's attributes inform its matches."""
    from .engine.text import describe

    return describe(product.title, product.colour, product.category.name, product.attributes)


def image_cache_path(backbone_name: str, weights_identity: str) -> Path:
    """One cache per backbone weights (their file's hash, or the pretrained tag): a retrained
    backbone file gets a fresh cache."""
    import hashlib

    key = hashlib.sha256(f"{backbone_name}|{weights_identity}".encode()).hexdigest()[:16]
    return settings.VAR_DIR / "embedding-cache" / f"{key}.npz"


def validation_metrics(
    skus: list[str],
    train_outfits: list[list[int]],
    validation_outfits: list[list[int]],
    space: CompatibilitySpace,
    backbone_only: np.ndarray,
    rng: np.random.Generator,
) -> tuple[dict[str, float | int | None], dict[str, Any]]:
    """FITB (all, cold, warm), compatibility AUC and Recall@10 on held-out outfits, with the
    same tasks `manage.py evaluate` reads from files: for the served score (the type-aware
    space + co-occurrence of the training outfits), the learned space alone, and the raw
    backbone vectors (the transfer-learning baseline). A question is warm when its answer is
    in a training outfit, cold when it is new to the outfits. Also returns the comparison with
    the active version on the questions both versions know."""
    from .engine.cooccurrence import CoOccurrence
    from .engine.evaluate import CosineScorer, evaluate_tasks, make_tasks
    from .engine.space import SpaceScorer

    category_of = dict(zip(skus, space.categories, strict=True))
    members: dict[str, list[str]] = {}
    for sku, category in category_of.items():
        members.setdefault(category, []).append(sku)
    fitb, compatibility = make_tasks(
        [[skus[row] for row in outfit] for outfit in validation_outfits], category_of, rng
    )
    row_of = {sku: row for row, sku in enumerate(skus)}
    train_outfit_skus = [[skus[row] for row in outfit] for outfit in train_outfits]
    warm = {sku for outfit in train_outfit_skus for sku in outfit}

    def served(weight: float) -> SpaceScorer:
        return SpaceScorer(space, row_of, CoOccurrence.from_outfits(train_outfits, weight))

    weight = settings.OUTFITS_COOCCURRENCE_WEIGHT
    if weight is None:  # "auto": the blend that fills the held-out blanks best
        weight = max(
            COOCCURRENCE_WEIGHTS,
            key=lambda w: (np.nan_to_num(evaluate_tasks(served(w), fitb).fitb_accuracy), -w),
        )
    raw = backbone_only / np.linalg.norm(backbone_only, axis=1, keepdims=True)
    metrics: dict[str, float | int | None] = {"cooccurrence_weight": weight}
    for suffix, scorer in (
        ("", served(weight)),
        ("_content_only", SpaceScorer(space, row_of)),
        ("_backbone_only", CosineScorer(dict(zip(skus, raw, strict=True)))),
    ):
        results = task_metrics(scorer, fitb, compatibility, members, warm)
        metrics |= {f"{name}{suffix}": value for name, value in results.items()}
    metrics |= {"fitb_questions": len(fitb), "compatibility_outfits": len(compatibility)}
    comparison = compare_with_active(
        served(weight), train_outfit_skus, fitb, compatibility, members, warm
    )
    return metrics, comparison


def task_metrics(scorer, fitb, compatibility, members, warm: set[str]) -> dict[str, float | None]:
    """The figures staff compare versions by: FITB overall, cold and warm, AUC, Recall@10."""
    from .engine.evaluate import evaluate_tasks

    results = evaluate_tasks(scorer, fitb, compatibility, members)
    cold_questions = [task for task in fitb if task.answers[task.correct] not in warm]
    warm_questions = [task for task in fitb if task.answers[task.correct] in warm]

    def fitb_of(questions) -> float | None:
        accuracy = evaluate_tasks(scorer, questions).fitb_accuracy
        return None if np.isnan(accuracy) else accuracy

    return {
        "fitb": None if np.isnan(results.fitb_accuracy) else results.fitb_accuracy,
        "fitb_cold": fitb_of(cold_questions),
        "fitb_warm": fitb_of(warm_questions),
        "auc": None if np.isnan(results.compatibility_auc) else results.compatibility_auc,
        "recall_at_10": (results.recall_at or {}).get(10),
    }


def compare_with_active(
    new_scorer, train_outfits: list[list[str]], fitb, compatibility, members, warm: set[str]
) -> dict[str, Any]:
    """The new and the active version on the held-out questions whose items both know. The
    active version gets the new run's training outfits as its curated co-occurrence (at its
    own blend weight): its stored co-occurrence may include today's held-out outfits."""
    from .engine.cooccurrence import CoOccurrence
    from .engine.space import SpaceScorer

    active = active_compatibility_index()
    if active is None:
        return {}
    version, index = active
    known = index.row_of_sku

    def both_know(items) -> bool:
        return all(item in known for item in items)

    common_fitb = [task for task in fitb if both_know([*task.question, *task.answers])]
    common_compatibility = [task for task in compatibility if both_know(task.items)]
    common_members = {
        category: [sku for sku in skus if sku in known] for category, skus in members.items()
    }
    curated = CoOccurrence.from_outfits(
        [[known[sku] for sku in outfit if sku in known] for outfit in train_outfits],
        index.cooccurrence.weight,
    )
    old_scorer = SpaceScorer(index.space, known, curated)
    return {
        "active_version": version.name,
        "questions": len(common_fitb),
        "new": task_metrics(new_scorer, common_fitb, common_compatibility, common_members, warm),
        "active": task_metrics(old_scorer, common_fitb, common_compatibility, common_members, warm),
    }


def evaluate_active_model(
    fitb_path: Path | None,
    compatibility_path: Path | None,
    cooccurrence_weight: float | None = None,
) -> dict[str, Any]:
    """Score task files (Polyvore formats, SKUs as item ids) with the ACTIVE model version.
    Recall@K ranks a question's answer among all active products of its `category`.
    `cooccurrence_weight` replaces the version's blend weight for this evaluation only."""
    from .engine.cooccurrence import CoOccurrence
    from .engine.evaluate import evaluate_tasks, read_compatibility_tasks, read_fitb_tasks
    from .engine.space import SpaceScorer

    active = active_compatibility_index()
    if active is None:
        raise ValueError("No active model version: train one first (manage.py train).")
    version, index = active
    fitb = read_fitb_tasks(fitb_path) if fitb_path else []
    compatibility = read_compatibility_tasks(compatibility_path) if compatibility_path else []
    active_skus = set(Product.objects.filter(active=True).values_list("sku", flat=True))
    members: dict[str, list[str]] = {}
    for sku, category in zip(index.skus, index.categories, strict=True):
        if sku in active_skus:
            members.setdefault(category, []).append(sku)
    curated = index.cooccurrence
    if cooccurrence_weight is not None:
        curated = CoOccurrence(curated.partners, cooccurrence_weight)
    results = evaluate_tasks(
        SpaceScorer(index.space, index.row_of_sku, curated), fitb, compatibility, members
    )
    return {
        "model_version": version.name,
        "backbone": version.backbone,
        "cooccurrence_weight": curated.weight,
        **asdict(results),
    }


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


def collect_old_versions(keep: int | None = None) -> list[str]:
    """Delete all but the newest `keep` versions (OUTFITS_KEEP_MODEL_VERSIONS), never the
    active or the previous one, and the half-written directories of runs that died. Call it
    only while no other run writes (the end of a run, which holds the training lock)."""
    keep = settings.OUTFITS_KEEP_MODEL_VERSIONS if keep is None else keep
    root = Path(settings.OUTFITS_MODEL_DIR)
    protected = {v.pk for v in [previous_version()] if v is not None}
    protected |= set(ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True))
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


def _load_serving_index(directory: Path, served: CompatibilityIndex | None) -> CompatibilityIndex:
    read_manifest(directory, verify_only=CompatibilityIndex.reads)
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


# What this process loaded of the active version (embeddings/loaded_versions.py).
serving_index = LoadedVersion[CompatibilityIndex]("serving", _load_serving_index, _large)
photo_encoders = LoadedVersion["PhotoEncoder"]("embedding photos with", _load_photo_encoder)
# A version whose backbone failed to load, when, and why: photos get that error again for a
# while instead of each paying seconds of torch and open_clip set-up to fail the same way.
_photo_failed: tuple[int, float, str] | None = None
PHOTO_RETRY_SECONDS = 60.0


def active_compatibility_index(
    version: ModelVersion | None = ASK_THE_DATABASE,
) -> tuple[ModelVersion, CompatibilityIndex] | None:
    """The active version (the given one: the caller knows it) and its index, loaded once per
    process and swapped when another version becomes active (see LoadedVersion). Callers use
    the pair they got for a whole response, so no response mixes versions."""
    return serving_index.get(version)


class PhotoEncoderWarmingUp(RuntimeError):
    """The photo encoder is still loading in the background (torch, the backbone): the first
    photo after a start asks again in a few seconds."""


_photo_warming_lock = threading.Lock()
_photo_warming: threading.Thread | None = None


def warm_photo_encoder(version: ModelVersion) -> threading.Thread:
    """Load `version`'s photo encoder in a background thread, once per process at a time: at a
    server's start, or for a first photo that will not wait for it. No database in the thread
    (the version is given): its files are all it reads."""
    global _photo_warming
    with _photo_warming_lock:
        if _photo_warming is None or not _photo_warming.is_alive():

            def warm() -> None:
                with contextlib.suppress(Exception):  # photo_encoder logged why
                    photo_encoder(version, wait_seconds=None)

            _photo_warming = threading.Thread(target=warm, name="warm photo encoder", daemon=True)
            _photo_warming.start()
        return _photo_warming


def photo_encoder(
    version: ModelVersion | None = ASK_THE_DATABASE, wait_seconds: float | None = None
) -> "tuple[ModelVersion, PhotoEncoder] | None":
    """The active version and the encoder of shoppers' photos into its space, loaded once per
    process on the first photo (torch with it: web processes import torch only then) and
    swapped like the index when another version becomes active. With `wait_seconds`, a process
    that has none loaded yet loads it in the background and waits that long for it, then raises
    PhotoEncoderWarmingUp. Raises BackboneUnavailable when the version's backbone weights
    cannot be loaded (for PHOTO_RETRY_SECONDS without trying again)."""

    from .engine.backbone import BackboneUnavailable  # torch: loaded here, with the first photo

    global _photo_failed
    if version is ASK_THE_DATABASE:  # the caller may know it (the serving snapshot does)
        version = ModelVersion.objects.filter(is_active=True).first()
    if version is not None and photo_encoders.current is None and wait_seconds is not None:
        warming = warm_photo_encoder(version)
        warming.join(wait_seconds)
        if warming.is_alive():
            raise PhotoEncoderWarmingUp(
                "Photo matching is warming up (its model loads once after the server starts); "
                "try again in a few seconds."
            )
    failed = _photo_failed
    recently_failed = failed and version and failed[0] == version.pk
    if recently_failed and time.monotonic() - failed[1] < PHOTO_RETRY_SECONDS:
        raise BackboneUnavailable(failed[2])

    try:
        return photo_encoders.get(version)
    except BackboneUnavailable as error:
        logger.error("%s (photos try again in %.0f s)", error, PHOTO_RETRY_SECONDS)
        if version is not None:
            _photo_failed = (version.pk, time.monotonic(), str(error))
        raise


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
