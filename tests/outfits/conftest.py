"""A hand-made shop: a few products and a model version whose vectors are chosen by hand, so a
test knows which products must match, which are near-duplicates and which categories clash."""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from catalog.models import Category, Product
from embeddings import versions
from embeddings.engine.artifacts import ModelVersionWriter, read_manifest
from embeddings.engine.index import CompatibilityIndex
from embeddings.models import ModelVersion
from outfits.models import Outfit, OutfitItem


def unit(*components: float) -> list[float]:
    vector = np.asarray(components, dtype=np.float32)
    return list(vector / np.linalg.norm(vector))


# sku: (category, vector). The top T1 is e0, so a product's score with T1 is its first
# component. P2 is a near-duplicate of P1; P3 is a little less compatible but different.
ITEMS = {
    "T1": ("Tops", unit(1, 0, 0, 0)),
    "T2": ("Tops", unit(0.2, 0.9, 0.1, 0.2)),
    "T3": ("Tops", unit(0.6, 0, 0, 0.8)),
    "P1": ("Trousers", unit(0.8, 0.6, 0, 0)),
    "P2": ("Trousers", unit(0.79, 0.61, 0, 0)),
    "P3": ("Trousers", unit(0.75, 0, 0.66, 0)),
    "P4": ("Trousers", unit(0.3, 0, 0, 0.95)),
    "K1": ("Skirts", unit(0.85, 0, 0.527, 0)),
    "K2": ("Skirts", unit(0.4, 0.9, 0, 0)),
    "S1": ("Shoes", unit(0.9, 0, 0, 0.436)),
    "S2": ("Shoes", unit(0.5, 0, 0.866, 0)),
    "S3": ("Shoes", unit(0.3, 0.954, 0, 0)),
    "B1": ("Bags", unit(0.7, 0.714, 0, 0)),
    "B2": ("Bags", unit(0.6, 0, 0, 0.8)),
}
# Trousers and skirts never share an outfit: they are not complementary.
OUTFITS = [["T1", "P4", "S1", "B1"], ["T2", "K1", "S2"], ["T3", "P3", "S1", "B2"]]


@dataclass
class HandmadeShop:
    version: ModelVersion
    products: dict[str, Product]

    def __getitem__(self, sku: str) -> Product:
        return self.products[sku]


def write_version(skus: list[str], name: str, settings) -> ModelVersion:
    """A model version of the given ITEMS, written and activated as training would."""
    row = {sku: i for i, sku in enumerate(skus)}
    index = CompatibilityIndex.build(
        skus,
        [ITEMS[s][0] for s in skus],
        np.asarray([ITEMS[s][1] for s in skus], dtype=np.float32),
        [[row[s] for s in outfit if s in row] for outfit in OUTFITS],
    )
    with ModelVersionWriter(Path(settings.OUTFITS_MODEL_DIR), name) as writer:
        index.save(writer.directory)
        directory = writer.commit(backbone="handmade", item_count=len(skus))
    version = ModelVersion.objects.create(
        name=name,
        directory=directory.name,
        backbone="handmade",
        manifest=read_manifest(directory, False),
    )
    versions.activate(version)
    return version


@pytest.fixture
def handmade_version(settings):
    """Writes and activates another hand-made version: `handmade_version(skus, name)`."""
    return lambda skus, name: write_version(skus, name, settings)


@pytest.fixture
def handmade_shop(db, settings) -> HandmadeShop:
    categories = {
        name: Category.objects.create(name=name)
        for name in sorted({category for category, _ in ITEMS.values()})
    }
    products = {
        sku: Product.objects.create(
            sku=sku,
            title=f"{category} {sku}",
            category=categories[category],
            price=Decimal("10") * (1 + i % 5),
        )
        for i, (sku, (category, _)) in enumerate(ITEMS.items())
    }
    for number, skus in enumerate(OUTFITS):
        outfit = Outfit.objects.create(external_id=f"O{number}")
        for position, sku in enumerate(skus):
            OutfitItem.objects.create(outfit=outfit, product=products[sku], position=position)
    settings.OUTFITS_MATCHES_PER_CATEGORY = 3
    version = write_version(list(ITEMS), "handmade-1", settings)
    return HandmadeShop(version, products)
