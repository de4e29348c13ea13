"""Training, the Django side: gather the catalog's products and outfits, embed them (the
image-vector cache, the workers), call the engine's pipeline (engine/fit.py) and record the
version it returns. Also the offline backbone's pretraining and `manage.py evaluate`."""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from catalog.changes import current_generation
from catalog.models import Product
from outfits.models import OutfitItem, PairVerdict

from .engine.artifacts import ModelVersionWriter, file_sha256, read_manifest
from .engine.degrade import PRETRAINING_PHONE_PHOTOS
from .engine.progress import Progress, no_progress
from .engine.vector_cache import ImageVectorCache
from .loaded_versions import active_compatibility_index
from .models import ModelVersion

if TYPE_CHECKING:  # torch-side types; web processes never import them
    from .engine.backbone import Backbone
    from .engine.fit import TrainingOptions
    from .engine.train import ItemEncoder
    from .engine.triplets import Verdicts

logger = logging.getLogger(__name__)

SEED = 0


def training_options(
    epochs: int | None = None,
    unfrozen_blocks: int | None = None,
    pretrained: str | None = None,
    scorer: str | None = None,
) -> "TrainingOptions":
    """A training's options: the settings, with what the run's form or command chose."""
    from .engine.fit import TrainingOptions

    return TrainingOptions(
        backbone=settings.OUTFITS_BACKBONE,
        pretrained=pretrained or settings.OUTFITS_PRETRAINED,
        epochs=settings.OUTFITS_TRAINING_EPOCHS if epochs is None else epochs,
        unfrozen_blocks=(
            settings.OUTFITS_UNFROZEN_BLOCKS if unfrozen_blocks is None else unfrozen_blocks
        ),
        tuned_epochs=settings.OUTFITS_TUNED_EPOCHS,
        learning_rate=settings.OUTFITS_TRAINING_LEARNING_RATE,
        cooccurrence_weight=settings.OUTFITS_COOCCURRENCE_WEIGHT,
        hub_penalty=settings.OUTFITS_HUB_PENALTY,
        validation_fraction=settings.OUTFITS_VALIDATION_FRACTION,
        seed=settings.OUTFITS_TRAINING_SEED,
        neighbour_depth=settings.OUTFITS_COMPUTED_NEIGHBOURS,
        # With workers to fan out to, the lists are computed there once the files are written.
        lists_on_workers=bool(settings.OUTFITS_FANOUT_QUEUE),
        scorer=scorer or settings.OUTFITS_SCORER,
        outfit_epochs=settings.OUTFITS_OUTFIT_MODEL_EPOCHS,
        bad_pair_weight=settings.OUTFITS_BAD_PAIR_WEIGHT,
        negatives_as_worn=settings.OUTFITS_NEGATIVES_AS_WORN,
    )


@dataclass(frozen=True)
class TrainedVersion:
    version: ModelVersion  # written and recorded, not yet active
    comparison: dict[str, Any]  # against the active version on the same questions; {} if none


def train_model_version(
    options: "TrainingOptions",
    progress: Progress = no_progress,
    check_cancelled: Callable[[], None] = lambda: None,
) -> TrainedVersion:
    """Embed the catalog, fit a version on its outfits (engine.fit.fit_version: the head, and
    the backbone's last `unfrozen_blocks` image blocks, evaluated beside the active version
    on held-out outfits) and write it as an inactive model version.
    `check_cancelled()` is asked at every batch and may raise to abandon the run."""
    from .engine.backbone import IMAGE_TOWER_TOP_FILE, load_backbone, save_image_tower_top
    from .engine.category_probe import PROBE_FILE
    from .engine.fit import Stopwatch, TrainingCatalog, fit_version
    from .engine.photo_words import PHOTO_WORDS_FILE
    from .engine.train import HEAD_FILE, save_head
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
    backbone = load_backbone(options.backbone, options.pretrained)
    progress("preparing", 1, 1)
    # Hashed once: it names the image-vector cache and goes into the manifest.
    pretrained_file = Path(backbone.pretrained)
    pretrained_sha256 = file_sha256(pretrained_file) if pretrained_file.is_file() else None
    items, embedded = embed_catalog(
        backbone, pretrained_sha256, products, options.unfrozen_blocks, progress
    )
    stopwatch.lap("embedding")
    active = active_compatibility_index()
    fitted = fit_version(
        TrainingCatalog(
            [p.sku for p in products],
            [p.category.name for p in products],
            items,
            outfits,
            verdicts_as_rows(products),
        ),
        options,
        progress,
        check_cancelled,
        served=(active[0].name, active[1]) if active else None,
    )
    index, writing_started = fitted.index, time.perf_counter()
    name = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    with ModelVersionWriter(Path(settings.OUTFITS_MODEL_DIR), name) as writer:
        check_cancelled()
        index.save(writer.directory)
        write_fingerprints(writer.directory, products, catalog_as_of)
        depth = options.neighbour_depth
        if options.lists_on_workers and depth:  # the workers read the files just written
            from .fanout import neighbours_on_workers

            index.neighbours = neighbours_on_workers(writer.directory, index, depth, progress)
            index.save_neighbours(writer.directory)
        check_cancelled()  # the last point to give up: what follows is quick
        save_head(fitted.head, writer.directory / HEAD_FILE)
        fitted.category_probe.save(writer.directory / PROBE_FILE)
        fitted.photo_words.save(writer.directory / PHOTO_WORDS_FILE)
        if fitted.items.image_top is not None:
            save_image_tower_top(fitted.items.image_top, writer.directory / IMAGE_TOWER_TOP_FILE)
        seconds = stopwatch.seconds | fitted.manifest["seconds"]  # writing ends the indexing
        seconds["indexing"] = round(seconds["indexing"] + time.perf_counter() - writing_started, 1)
        directory = writer.commit(
            **fitted.manifest
            | {
                "backbone": backbone.name,
                "pretrained": backbone.pretrained,
                "pretrained_sha256": pretrained_sha256,
                "images_embedded": embedded,
                "seconds": seconds,
            }
        )
    progress("indexing", len(products), len(products))
    version = ModelVersion.objects.create(
        name=name,
        directory=directory.name,
        backbone=backbone.name,
        pretrained=backbone.pretrained,
        metrics=fitted.metrics,
        manifest=read_manifest(directory, False),
    )
    return TrainedVersion(version, fitted.comparison)


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


def verdicts_as_rows(products: list[Product]) -> "Verdicts | None":
    """The stylists' verdicts on pairs of these products (rows), or None when there are none:
    good pairs train as positives, bad ones as weighted hard negatives."""
    from .engine.triplets import Verdicts

    row_of = {product.pk: row for row, product in enumerate(products)}
    good, bad = [], []
    for product_id, match_id, verdict in PairVerdict.objects.values_list(
        "product_id", "match_id", "verdict"
    ):
        if product_id in row_of and match_id in row_of:
            pair = (row_of[product_id], row_of[match_id])
            (good if verdict == PairVerdict.Verdict.GOOD else bad).append(pair)
    return Verdicts.of(good, bad) if good or bad else None


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
    with_catalog: bool = True,
    phone_photos: float = PRETRAINING_PHONE_PHOTOS,
) -> list[float]:
    """Build the offline backbone: train the project's small open_clip model contrastively on
    catalog images and their captions (plus `extra_pairs` of image and caption from related
    domains; or on those alone, without the catalog), a `phone_photos` share of the images
    shown as phone photos of themselves, and save it where OUTFITS_PRETRAINED can point. The
    architecture is OUTFITS_BACKBONE's, one of the project's own."""
    from .engine.backbone import OWN_BACKBONES, create_untrained_backbone, save_backbone_checkpoint
    from .engine.pretrain import PretrainingConfig, pretrain_contrastive

    name = settings.OUTFITS_BACKBONE
    if name not in OWN_BACKBONES:
        raise ValueError(
            f"OUTFITS_BACKBONE={name!r} is not one of the project's own architectures "
            f"({', '.join(OWN_BACKBONES)}): pretrain_backbone builds those; a published "
            f"backbone comes with its weights (OUTFITS_PRETRAINED)."
        )
    products = list(embeddable_products()) if with_catalog else []
    if with_catalog and len(products) < 2:
        raise ValueError("Pretraining needs a catalog: import products first (import_catalog).")
    pairs = [(Path(p.image.path), item_text(p)) for p in products] + list(extra_pairs or [])
    if len(pairs) < 2:
        raise ValueError("Pretraining needs at least two image-caption pairs.")
    backbone = create_untrained_backbone(name, seed=SEED)
    losses = pretrain_contrastive(
        backbone,
        [image for image, _ in pairs],
        [caption for _, caption in pairs],
        PretrainingConfig(epochs=epochs, seed=SEED, phone_photos=phone_photos),
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


def evaluate_active_model(
    fitb_path: Path | None,
    compatibility_path: Path | None,
    cooccurrence_weight: float | None = None,
) -> dict[str, Any]:
    """Score task files (Polyvore formats, SKUs as item ids) with the ACTIVE model version.
    Recall@K ranks a question's answer among all active products of its `category`.
    `cooccurrence_weight` replaces the version's blend by direct co-occurrence alone at that
    weight, for this evaluation only."""
    from .engine.evaluate import evaluate_tasks, read_compatibility_tasks, read_fitb_tasks

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
    scorer = index.scorer
    if cooccurrence_weight is not None:
        if not hasattr(scorer, "with_cooccurrence_weight"):
            raise ValueError(
                f"A co-occurrence weight applies to a scorer with a curated blend; {version.name} "
                f"serves {scorer.kind!r}."
            )
        scorer = scorer.with_cooccurrence_weight(cooccurrence_weight)
    results = evaluate_tasks(index.sku_scorer(scorer), fitb, compatibility, members)
    return {
        "model_version": version.name,
        "backbone": version.backbone,
        "scorer": scorer.kind,
        **scorer.options,
        **asdict(results),
    }
