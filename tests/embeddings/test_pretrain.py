import dataclasses
import math

import pytest
import torch
from django.core.management import CommandError, call_command
from PIL import Image

from embeddings.engine.backbone import create_untrained_backbone
from embeddings.engine.pretrain import (
    ImageCaptionPairs,
    PretrainingConfig,
    TrainingDiverged,
    pretrain_contrastive,
)


def catalog_pairs(catalog):
    import csv

    with catalog.products_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    return [catalog.products_csv.parent / r["image"] for r in rows], [r["title"] for r in rows]


def test_contrastive_pretraining_lowers_the_loss(small_catalog):
    images, captions = catalog_pairs(small_catalog)
    backbone = create_untrained_backbone()
    losses = pretrain_contrastive(
        backbone, images, captions, PretrainingConfig(epochs=4, batch_size=16)
    )
    assert len(losses) == 4 and all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]
    assert not backbone.model.training


def test_pretraining_reports_progress_every_batch_not_only_every_epoch(small_catalog):
    """An epoch of the real recipe takes minutes: the line on the terminal must move within it."""
    images, captions = catalog_pairs(small_catalog)
    reports = []
    losses = pretrain_contrastive(
        create_untrained_backbone(),
        images,
        captions,
        PretrainingConfig(epochs=2, batch_size=4),
        lambda stage, done, total, **info: reports.append((stage, done, total, info)),
    )
    batches = len(images) // 4
    assert [done for _, done, _, _ in reports] == list(range(2 * batches + 1))
    assert {(stage, total) for stage, _, total, _ in reports} == {
        ("pretraining backbone", 2 * batches)
    }
    assert "loss" not in reports[0][3]  # nothing trained yet
    # The report at each epoch's end carries that epoch's mean loss.
    assert reports[batches][3]["loss"] == pytest.approx(losses[0])
    assert reports[-1][3]["loss"] == pytest.approx(losses[1])


def test_divergence_stops_with_a_clear_message(small_catalog):
    images, captions = catalog_pairs(small_catalog)
    backbone = create_untrained_backbone()
    with torch.no_grad():
        backbone.model.visual.conv1.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="diverged at epoch 1"):
        pretrain_contrastive(backbone, images, captions, PretrainingConfig(epochs=1, batch_size=16))


def test_phone_photos_show_the_asked_share_of_images_as_photos(small_catalog):
    images, captions = catalog_pairs(small_catalog)
    # The evaluation transform (no random crop), so an untouched image gives its exact tensor.
    backbone = dataclasses.replace(
        create_untrained_backbone(), train_preprocess=create_untrained_backbone().preprocess
    )
    untouched = ImageCaptionPairs(images, captions, backbone, phone_photos=0.0)
    packshots = [untouched[i][0] for i in range(len(images))]
    with Image.open(images[0]) as image:
        assert torch.equal(packshots[0], backbone.preprocess(image.convert("RGB")))

    every = ImageCaptionPairs(images, captions, backbone, phone_photos=1.0, seed=5)
    photos = [every[i][0] for i in range(len(images))]
    assert all(not torch.equal(p, q) for p, q in zip(photos, packshots, strict=True))
    again = ImageCaptionPairs(images, captions, backbone, phone_photos=1.0, seed=5)
    assert all(torch.equal(again[i][0], photos[i]) for i in range(len(images)))

    half = ImageCaptionPairs(images, captions, backbone, phone_photos=0.5, seed=1)
    shown = [
        not torch.equal(half[i % len(images)][0], packshots[i % len(images)]) for i in range(400)
    ]
    assert 0.4 < sum(shown) / len(shown) < 0.6


def test_phone_photos_share_must_be_between_0_and_1(small_catalog):
    images, captions = catalog_pairs(small_catalog)
    with pytest.raises(ValueError, match="share of images, 0 to 1"):
        ImageCaptionPairs(images, captions, create_untrained_backbone(), phone_photos=1.5)
    with pytest.raises(CommandError, match="--phone-photos is a share"):
        call_command("pretrain_backbone", "--phone-photos", "2")


def test_pretraining_shows_half_of_the_images_as_phone_photos_unless_told_otherwise():
    from embeddings.management.commands.pretrain_backbone import Command

    parser = Command().create_parser("manage.py", "pretrain_backbone")
    assert parser.parse_args([]).phone_photos == PretrainingConfig().phone_photos == 0.5
    assert parser.parse_args(["--phone-photos", "0"]).phone_photos == 0.0


def test_pretraining_with_phone_photos_lowers_the_loss(small_catalog):
    images, captions = catalog_pairs(small_catalog)
    losses = pretrain_contrastive(
        create_untrained_backbone(),
        images,
        captions,
        PretrainingConfig(epochs=4, batch_size=16, phone_photos=0.5),
    )
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
