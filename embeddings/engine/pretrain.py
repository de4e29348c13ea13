"""Contrastive image–text training of a backbone (the CLIP objective). This is how the project
builds its own backbone offline, on catalog images and their titles or on any image–caption
pairs from a related domain, when no pretrained CLIP weights can be downloaded."""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from open_clip.loss import ClipLoss
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .backbone import Backbone
from .degrade import PRETRAINING_PHONE_PHOTOS, phone_photo
from .progress import Progress, no_progress

logger = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the weights are unusable."""


@dataclass(frozen=True)
class PretrainingConfig:
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    warmup_fraction: float = 0.1
    seed: int = 0
    # The share of images shown as a shopper's phone photo of themselves (degrade.phone_photo,
    # drawn anew each time), so such a photo lands near its packshot and its caption.
    phone_photos: float = PRETRAINING_PHONE_PHOTOS


class ImageCaptionPairs(Dataset):
    def __init__(
        self,
        image_paths: Sequence[Path],
        captions: Sequence[str],
        backbone: Backbone,
        phone_photos: float = 0.0,
        seed: int = 0,
    ) -> None:
        if len(image_paths) != len(captions):
            raise ValueError(f"{len(image_paths)} images but {len(captions)} captions")
        if not 0.0 <= phone_photos <= 1.0:
            raise ValueError(f"phone_photos is a share of images, 0 to 1, not {phone_photos}")
        self.image_paths = list(image_paths)
        self.tokens = backbone.tokenizer(list(captions))
        self.preprocess = backbone.train_preprocess
        self.phone_photos = phone_photos
        # Drawn in the loading process (the loader has no workers): workers would each copy
        # this generator and draw the same photos.
        self.random = np.random.default_rng(seed)
        size = getattr(backbone.model.visual, "image_size", 224)
        # The photo is staged at twice the input side: what the backbone sees, 5x cheaper than
        # at the packshot's own size.
        self.staging_side = 2 * (max(size) if isinstance(size, tuple | list) else int(size))

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(self.image_paths[index]) as image:
            rgb = image.convert("RGB")
        if self.phone_photos and self.random.random() < self.phone_photos:
            rgb.thumbnail((self.staging_side, self.staging_side))
            rgb = phone_photo(rgb, int(self.random.integers(2**31)))
        return self.preprocess(rgb), self.tokens[index]


def pretrain_contrastive(
    backbone: Backbone,
    image_paths: Sequence[Path],
    captions: Sequence[str],
    config: PretrainingConfig = PretrainingConfig(),
    progress: Progress = no_progress,
) -> list[float]:
    """Train the whole backbone so each image is closest to its own caption; returns the mean
    loss of every epoch. The model is left in eval mode."""
    pairs = ImageCaptionPairs(
        image_paths, captions, backbone, phone_photos=config.phone_photos, seed=config.seed
    )
    generator = torch.Generator().manual_seed(config.seed)
    # drop_last keeps every batch a real contrastive problem (a batch of one has no negatives).
    loader = DataLoader(
        pairs,
        batch_size=min(config.batch_size, len(pairs)),
        shuffle=True,
        drop_last=True,
        generator=generator,
    )
    model = backbone.model
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    total_steps = max(1, config.epochs * len(loader))
    warmup_steps = max(1, int(config.warmup_fraction * total_steps))

    def learning_rate_factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        decay_steps = max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / decay_steps)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor)
    loss_function = ClipLoss()
    epoch_losses: list[float] = []
    # Reported in batches, not epochs: an epoch of the real recipe takes minutes.
    progress("pretraining backbone", 0, total_steps)  # the clock of its time left starts
    model.train()
    try:
        for epoch in range(config.epochs):
            loss_sum, step = 0.0, 0
            for step, (images, tokens) in enumerate(loader, start=1):
                image_features, text_features, logit_scale = model(images, tokens)[:3]
                loss = loss_function(image_features, text_features, logit_scale)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"Backbone pretraining diverged at epoch {epoch + 1} (loss {loss.item()}); "
                        f"lower the learning rate ({config.learning_rate})."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                with torch.no_grad():  # CLIP clamps the temperature the same way
                    model.logit_scale.clamp_(0, math.log(100))
                loss_sum += loss.item()
                progress(  # the loss so far in this epoch
                    "pretraining backbone",
                    epoch * len(loader) + step,
                    total_steps,
                    loss=loss_sum / step,
                )
            epoch_losses.append(loss_sum / max(1, step))
            logger.debug(
                "pretraining epoch %d/%d loss %.4f", epoch + 1, config.epochs, epoch_losses[-1]
            )
    finally:
        model.eval()
    return epoch_losses
