import math

import pytest
import torch

from embeddings.engine.backbone import create_untrained_backbone
from embeddings.engine.pretrain import PretrainingConfig, TrainingDiverged, pretrain_contrastive


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


def test_divergence_stops_with_a_clear_message(small_catalog):
    images, captions = catalog_pairs(small_catalog)
    backbone = create_untrained_backbone()
    with torch.no_grad():
        backbone.model.visual.conv1.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="diverged at epoch 1"):
        pretrain_contrastive(backbone, images, captions, PretrainingConfig(epochs=1, batch_size=16))
