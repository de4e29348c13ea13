"""The Django side of the engine: gather products and outfits, run training, write and activate
model versions, and hand web processes the active compatibility index."""

import logging
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import Product
from outfits.models import OutfitItem

from .artifacts import ModelVersionWriter, file_sha256, read_manifest
from .index import CompatibilityIndex
from .models import ModelVersion, TrainingRun
from .progress import Progress, no_progress
from .space import CompatibilitySpace
from .vector_cache import ImageVectorCache

if TYPE_CHECKING:  # torch-side types; web processes never import them
    from .backbone import Backbone
    from .train import ItemEncoder

logger = logging.getLogger(__name__)

VALIDATION_FRACTION = 0.15
COOCCURRENCE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)  # tried on held-out outfits when "auto"
SEED = 0


def start_training_run(requested_by=None, **options: Any) -> TrainingRun:
    """Record a run and enqueue its task once the row is committed (a worker must see it)."""
    from .tasks import retrain

    run = TrainingRun.objects.create(
        requested_by=requested_by if requested_by and requested_by.is_authenticated else None,
        options=options,
    )
    transaction.on_commit(lambda: retrain.delay(run.pk))
    return run


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


class RunProgress:
    """Progress written to the TrainingRun row, at most a few times a second."""

    def __init__(self, run: TrainingRun, also: Progress = no_progress) -> None:
        self.run = run
        self.also = also
        self.last_write = 0.0

    def __call__(self, stage: str, done: int, total: int, **info: float) -> None:
        self.also(stage, done, total, **info)
        now = time.monotonic()
        if stage == self.run.stage and done < total and now - self.last_write < 0.5:
            return
        self.last_write = now
        details = ", ".join(f"{key} {value:.4f}" for key, value in info.items())
        TrainingRun.objects.filter(pk=self.run.pk).update(
            stage=stage,
            progress_done=done,
            progress_total=total,
            message=f"{stage}: {done}/{total}" + (f" ({details})" if details else ""),
        )
        self.run.stage = stage


def execute_training_run(run_id: int, progress: Progress = no_progress) -> TrainingRun:
    """Carry out a queued run. Safe to call twice: a run that is not queued is left alone.
    Failures are recorded on the run (and logged); the active model is then untouched."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status != TrainingRun.Status.QUEUED:
            logger.info("training run %s is %s; not starting it again", run_id, run.status)
            return run
        run.status, run.started_at = TrainingRun.Status.RUNNING, timezone.now()
        run.save(update_fields=["status", "started_at"])
    try:
        unfrozen_blocks = run.options.get("unfrozen_blocks")
        version = train_model_version(
            epochs=run.options.get("epochs") or settings.OUTFITS_TRAINING_EPOCHS,
            unfrozen_blocks=(
                settings.OUTFITS_UNFROZEN_BLOCKS if unfrozen_blocks is None else unfrozen_blocks
            ),
            progress=RunProgress(run, also=progress),
        )
    except Exception as error:
        logger.exception("training run %s failed", run_id)
        run.status, run.message = TrainingRun.Status.FAILED, f"{type(error).__name__}: {error}"
    else:
        run.status, run.model_version, run.metrics = (
            TrainingRun.Status.SUCCEEDED,
            version,
            version.metrics,
        )
        run.message = f"Model version {version.name} trained and activated."
    run.finished_at = timezone.now()
    run.save()
    return run


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


def train_model_version(
    epochs: int, unfrozen_blocks: int = 0, progress: Progress = no_progress
) -> ModelVersion:
    """Embed the catalog, train the compatibility head (and the backbone's last
    `unfrozen_blocks` image blocks) on outfit triplets, evaluate on held-out outfits, build the
    per-category indexes, write a model version and activate it."""
    from .backbone import IMAGE_TOWER_TOP_FILE, load_backbone, save_image_tower_top
    from .evaluate import split_outfits
    from .train import HeadTrainingConfig, save_head, train_compatibility_head, trained_space

    stopwatch = Stopwatch()
    products, outfits = training_data()
    if len(outfits) < 2:
        raise ValueError(
            f"Training needs at least 2 outfits of 2+ active products; found {len(outfits)}. "
            "Import outfits first (manage.py import_outfits)."
        )
    backbone = load_backbone(settings.OUTFITS_BACKBONE, settings.OUTFITS_PRETRAINED)
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
    config = HeadTrainingConfig(epochs=epochs, seed=SEED)
    head, losses = train_compatibility_head(items, train_outfits, category_codes, config, progress)
    stopwatch.lap("training")
    progress("evaluating", 0, 1)
    space = trained_space(head, items, category_codes, categories.tolist(), train_outfits)
    skus = [p.sku for p in products]
    metrics = {
        **validation_metrics(skus, train_outfits, validation_outfits, space, item_vectors, rng),
        "final_loss": losses[-1],
    }
    progress("evaluating", 1, 1)
    stopwatch.lap("evaluating")
    logger.info("evaluation: %s", metrics)

    progress("indexing", 0, 1)
    index = CompatibilityIndex.build(
        skus,
        category_names,
        space.vectors,
        outfits,
        cooccurrence_weight=float(metrics["cooccurrence_weight"]),
        pair_weights=space.pair_weights,
    )
    name = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    with ModelVersionWriter(Path(settings.OUTFITS_MODEL_DIR), name) as writer:
        index.save(writer.directory)
        save_head(head, writer.directory / "head.safetensors")
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
    progress("indexing", 1, 1)
    version = ModelVersion.objects.create(
        name=name,
        directory=directory.name,
        backbone=backbone.name,
        pretrained=backbone.pretrained,
        metrics=metrics,
        manifest=read_manifest(directory, False),
    )
    activate(version)
    return version


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

    from .backbone import ImageTowerTop
    from .encode import encode_images, encode_items, encode_trunk_tokens, image_vectors_from_tokens
    from .train import ItemEncoder

    image_paths = [Path(p.image.path) for p in products]
    image_keys = [p.image_sha256 or p.image.name for p in products]
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
            lambda paths: encode_trunk_tokens(
                backbone, paths, frozen_blocks, progress=progress
            ).numpy(),
        )
        tokens = torch.from_numpy(cached_tokens)
        image_vectors = image_vectors_from_tokens(image_top, tokens)
    else:
        image_vectors, embedded = ImageVectorCache(
            image_cache_path(backbone.name, weights_identity)
        ).vectors_for(
            image_keys, image_paths, lambda paths: encode_images(backbone, paths, progress=progress)
        )
    logger.info("embedded %d new images, %d from the cache", embedded, len(products) - embedded)
    item_vectors = encode_items(
        backbone, image_paths, [item_text(p) for p in products], progress, image_vectors
    )
    return ItemEncoder(item_vectors, image_top, tokens), embedded


def pretrain_backbone(
    output: Path,
    epochs: int,
    progress: Progress = no_progress,
    extra_pairs: list[tuple[Path, str]] | None = None,
) -> list[float]:
    """Build the offline backbone: train the project's small open_clip model contrastively on
    catalog images and their captions (plus `extra_pairs` of image and caption from a related
    domain), and save it where OUTFITS_PRETRAINED can point."""
    from .backbone import OFFLINE_BACKBONE, create_untrained_backbone, save_backbone_checkpoint
    from .pretrain import PretrainingConfig, pretrain_contrastive

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
    from .text import describe

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
) -> dict[str, float | int | None]:
    """FITB, compatibility AUC and Recall@10 on held-out outfits, with the same tasks
    `manage.py evaluate` reads from files: for the served score (the type-aware space +
    co-occurrence of the training outfits), the learned space alone, and the raw backbone
    vectors (the transfer-learning baseline)."""
    from .cooccurrence import CoOccurrence
    from .evaluate import CosineScorer, evaluate_tasks, make_tasks
    from .space import SpaceScorer

    category_of = dict(zip(skus, space.categories, strict=True))
    members: dict[str, list[str]] = {}
    for sku, category in category_of.items():
        members.setdefault(category, []).append(sku)
    fitb, compatibility = make_tasks(
        [[skus[row] for row in outfit] for outfit in validation_outfits], category_of, rng
    )
    row_of = {sku: row for row, sku in enumerate(skus)}

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
        results = evaluate_tasks(scorer, fitb, compatibility, members)
        metrics |= {
            f"fitb{suffix}": results.fitb_accuracy,
            f"auc{suffix}": results.compatibility_auc,
            f"recall_at_10{suffix}": (results.recall_at or {}).get(10),
        }
    metrics |= {"fitb_questions": len(fitb), "compatibility_outfits": len(compatibility)}
    return metrics


def evaluate_active_model(
    fitb_path: Path | None,
    compatibility_path: Path | None,
    cooccurrence_weight: float | None = None,
) -> dict[str, Any]:
    """Score task files (Polyvore formats, SKUs as item ids) with the ACTIVE model version.
    Recall@K ranks a question's answer among all active products of its `category`.
    `cooccurrence_weight` replaces the version's blend weight for this evaluation only."""
    from .cooccurrence import CoOccurrence
    from .evaluate import evaluate_tasks, read_compatibility_tasks, read_fitb_tasks
    from .space import SpaceScorer

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


_loaded_lock = threading.Lock()
_loaded: tuple[ModelVersion, CompatibilityIndex] | None = None


def active_compatibility_index() -> tuple[ModelVersion, CompatibilityIndex] | None:
    """The active version and its index, loaded once per process and swapped when the active
    version changes (one small query per call tells)."""
    global _loaded
    version = ModelVersion.objects.filter(is_active=True).first()
    if version is None:
        return None
    current = _loaded
    if current is not None and current[0].pk == version.pk:
        return current
    with _loaded_lock:
        if _loaded is None or _loaded[0].pk != version.pk:
            directory = Path(settings.OUTFITS_MODEL_DIR) / version.directory
            read_manifest(directory)
            _loaded = (version, CompatibilityIndex.load(directory))
            logger.info("serving model version %s", version.name)
        return _loaded
