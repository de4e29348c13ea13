"""A shopper's photo of a garment they own, embedded into a model version's compatibility space
(the space of its catalog's item vectors), so the catalog's indexes can say what goes with it;
and the garment's category recognised (the version's category probe) when the shopper does not
say it."""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .artifacts import file_sha256
from .backbone import (
    IMAGE_TOWER_TOP_FILE,
    Backbone,
    BackboneUnavailable,
    ImageTowerTop,
    load_backbone,
    load_image_tower_top,
    trunk_tokens,
)
from .category_probe import PROBE_FILE, CategoryProbe
from .encode import encode_texts, image_vectors_from_tokens
from .index import ITEMS_FILE
from .photo_words import PHOTO_WORDS_FILE, PhotoWords
from .text import describe
from .train import HEAD_FILE, load_head

logger = logging.getLogger(__name__)

# Zero-shot prompts, averaged per category (CLIP's prompt ensembling). The bare name is how a
# category appears in the captions the offline backbone is pretrained on (see text.describe).
CATEGORY_PROMPTS = ("a photo of a {}", "{}")


@dataclass(frozen=True)
class PhotoQuery:
    vector: np.ndarray  # (D,) float32 unit vector of the compatibility space
    category: str
    category_guessed: bool  # True: the shopper gave none, `guess_category` chose it


def _normalised(vectors: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(vectors.float(), dim=-1)


class PhotoEncoder:
    """A model version's way from an image to its compatibility space: the backbone it was
    trained from (with its fine-tuned image-tower top, when it has one) and its compatibility
    head. A photo's item vector is its image vector beside the text vector of the words such a
    picture goes with (photo_words) and its category's: a photo has no title, colour or
    attributes of its own."""

    def __init__(self, backbone: Backbone, directory: Path, categories: Sequence[str]) -> None:
        if not categories:
            raise ValueError(f"Model version {directory.name} has no categories")
        self.backbone = backbone
        self.directory = directory
        self.categories = list(categories)
        self.head = load_head(directory / HEAD_FILE)
        visual = backbone.model.visual
        top_file = directory / IMAGE_TOWER_TOP_FILE
        self.tuned_top: ImageTowerTop | None = None
        self.pretrained_top: ImageTowerTop | None = None
        self.frozen_blocks = 0
        if top_file.is_file():
            self.tuned_top = load_image_tower_top(top_file, backbone)
            # The untuned blocks stay beside the tuned ones: zero-shot category guessing needs
            # the image–text alignment of pretraining, which compatibility tuning may bend.
            self.pretrained_top = ImageTowerTop(visual, self.tuned_top.block_count).eval()
            self.frozen_blocks = len(visual.transformer.resblocks) - self.tuned_top.block_count
        # Versions trained since the probe existed carry one; older ones guess zero-shot.
        probe_file = directory / PROBE_FILE
        self.category_probe = CategoryProbe.load(probe_file) if probe_file.is_file() else None
        # Versions trained before photo words have their photos described by category alone.
        words_file = directory / PHOTO_WORDS_FILE
        self.photo_words = PhotoWords.load(words_file) if words_file.is_file() else None
        self._category_text: dict[str, torch.Tensor] = {}
        self._prompt_vectors: torch.Tensor | None = None  # (C, D), one row per category

    @classmethod
    def load(cls, directory: Path, manifest: dict[str, Any]) -> "PhotoEncoder":
        """The encoder of the model version in `directory`, whose manifest (`read_manifest`)
        names its backbone. Raises BackboneUnavailable when those weights cannot be loaded or
        are no longer the ones the version was trained from; never uses random weights."""
        name = manifest.get("name", directory.name)
        try:
            backbone = load_backbone(manifest["backbone"], manifest.get("pretrained") or "")
        except BackboneUnavailable as error:
            raise BackboneUnavailable(
                f"Cannot embed photos with model version {name}: {error}"
            ) from error
        expected = manifest.get("pretrained_sha256")
        checkpoint = Path(backbone.pretrained)
        # A checkpoint rewritten in place (pretrain_backbone again) gives image vectors the
        # version's head was never trained on: matches would be silently wrong.
        if expected and checkpoint.is_file() and file_sha256(checkpoint) != expected:
            raise BackboneUnavailable(
                f"Cannot embed photos with model version {name}: backbone checkpoint "
                f"{checkpoint} has changed since the version was trained from it. Restore that "
                f"file or train a new version from the current one."
            )
        items = json.loads((directory / ITEMS_FILE).read_text())
        names = items.get("category_names") or items["categories"]  # saved before: per item
        encoder = cls(backbone, directory, sorted(set(names)))
        logger.info(
            "photo encoder of %s: %s, %d tuned image blocks",
            name,
            backbone.name,
            encoder.tuned_top.block_count if encoder.tuned_top else 0,
        )
        return encoder

    @property
    def dim(self) -> int:
        """Dimensions of the compatibility space."""
        return int(self.head.config.output_dim)

    def _image_vectors(self, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """The image half of the photo's item vector, as the version's catalog got it, and the
        pretrained backbone's image vector (for zero-shot), both unit, (1, E)."""
        pixels = self.backbone.preprocess(image.convert("RGB")).unsqueeze(0)
        if self.tuned_top is None or self.pretrained_top is None:
            vector = _normalised(self.backbone.model.encode_image(pixels))
            return vector, vector
        # Rounded like the catalog's cached trunk tokens (float16), so a catalog image gives
        # back its own stored vector.
        tokens = trunk_tokens(self.backbone.model.visual, pixels, self.frozen_blocks)
        tokens = tokens.half().float()
        return _normalised(self.tuned_top(tokens)), _normalised(self.pretrained_top(tokens))

    def _category_prompt_vectors(self) -> torch.Tensor:
        if self._prompt_vectors is None:
            prompts = [
                template.format(category.lower())
                for category in self.categories
                for template in CATEGORY_PROMPTS
            ]
            vectors = torch.from_numpy(encode_texts(self.backbone, prompts))
            per_category = vectors.reshape(len(self.categories), len(CATEGORY_PROMPTS), -1)
            self._prompt_vectors = _normalised(per_category.mean(dim=1))
        return self._prompt_vectors

    def _closest_category(self, backbone_vector: torch.Tensor) -> str:
        if self.category_probe is not None:
            return self.category_probe.predict(backbone_vector.numpy())[0]
        similarities = self._category_prompt_vectors() @ backbone_vector[0]
        return self.categories[int(similarities.argmax())]

    def _category_text_vector(self, category: str) -> torch.Tensor:
        """The text half of a photo's item vector: its category in words, as `describe` puts
        it for a product with no title, colour or attributes."""
        vector = self._category_text.get(category)
        if vector is None:
            text = describe(title="", colour="", category=category, attributes={})
            vector = torch.from_numpy(encode_texts(self.backbone, [text]))
            if category in self.categories:  # what shoppers type is not kept
                self._category_text[category] = vector
        return vector

    @torch.inference_mode()
    def guess_category(self, image: Image.Image) -> str:
        """The version's category of the image: by its category probe, or zero-shot (the
        category whose prompts are closest) for a version without one."""
        _, backbone_vector = self._image_vectors(image)
        return self._closest_category(backbone_vector)

    @property
    def catalog_frozen_blocks(self) -> int | None:
        """What a catalog image is embedded to before `encode_catalog`: the tokens after this
        many frozen blocks (a version with a tuned top), or None: the image vector itself."""
        return self.frozen_blocks if self.tuned_top is not None else None

    @torch.inference_mode()
    def encode_catalog(self, images: np.ndarray, descriptions: Sequence[str]) -> np.ndarray:
        """Catalog products in the compatibility space, as the version's training put its
        catalog there: `images` are their embedded images (encode_trunk_tokens' tokens after
        `catalog_frozen_blocks`, or encode_images' vectors when that is None), `descriptions`
        their words (item_text). (N, D) float32."""
        if self.tuned_top is not None:
            image_vectors = image_vectors_from_tokens(self.tuned_top, torch.from_numpy(images))
        else:
            image_vectors = images
        texts = encode_texts(self.backbone, list(descriptions))
        items = torch.from_numpy(np.concatenate([image_vectors, texts], axis=1))
        return self.head(items).numpy().astype(np.float32)

    @torch.inference_mode()
    def encode_words(self, descriptions: Sequence[str]) -> np.ndarray:
        """Products without a picture in the compatibility space, from their words alone: the
        text vector stands in for the image half too (CLIP puts images and texts in one space;
        the nearest a description comes to a picture). (N, D) float32."""
        texts = torch.from_numpy(encode_texts(self.backbone, list(descriptions)))
        return self.head(torch.cat([texts, texts], dim=1)).numpy().astype(np.float32)

    @torch.inference_mode()
    def encode(
        self, image: Image.Image, category: str | None = None, *, description: str | None = None
    ) -> PhotoQuery:
        """The photo in the compatibility space. Without `category` it is guessed. A category
        the version never saw is still described in words; its pairs get plain cosine.
        `description` replaces the words of the text half (a catalog product's own, say);
        by default they are the category's and those its picture goes with (photo_words)."""
        image_vector, backbone_vector = self._image_vectors(image)
        guessed = category is None
        if category is None:
            category = self._closest_category(backbone_vector)
        if description is None:
            text_vector = self._category_text_vector(category)
            if self.photo_words is not None:  # its category's words, and its picture's
                words = self.photo_words.predict(backbone_vector.numpy())
                text_vector = _normalised(text_vector + torch.from_numpy(words))
        else:
            text_vector = torch.from_numpy(encode_texts(self.backbone, [description]))
        item = torch.cat([image_vector, text_vector], dim=1)
        vector = self.head(item)[0].numpy().astype(np.float32)
        return PhotoQuery(vector, category, guessed)
