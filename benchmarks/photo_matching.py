"""Match a photo, measured on the Mango catalog: a sample of catalog products, each shown to a
trained version's photo path (engine/photo.py) as its own catalog photo and as a phone photo of
it (engine/degrade.py), with or without its category. Reports how often the category is
recognised (by the version's probe, and by a probe refitted without the sampled products: on
images it never saw) and how much of the product page's rows the photo's rows repeat
(overlap@10 for each complementary category), with the photo's text half its category's words
alone or with the words its picture goes with (engine/photo_words.py, refitted without the
sampled products too). A shopper photographing a product they bought here should see what its
page shows.

    .venv/bin/python benchmarks/photo_matching.py --version var/models/<version> \\
        [--sample 300] [--seed 0] [--results FILE]
"""

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.transfer_study import MANGO, load_catalog  # noqa: E402
from embeddings.engine.artifacts import read_manifest  # noqa: E402
from embeddings.engine.category_probe import fit_category_probe  # noqa: E402
from embeddings.engine.degrade import phone_photo  # noqa: E402
from embeddings.engine.encode import encode_images, encode_texts  # noqa: E402
from embeddings.engine.index import CompatibilityIndex  # noqa: E402
from embeddings.engine.photo import PhotoEncoder  # noqa: E402
from embeddings.engine.photo_words import fit_photo_words  # noqa: E402

ROW = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", type=Path, required=True, help="a trained version's folder")
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "photo_matching.json")
    arguments = parser.parse_args()

    index = CompatibilityIndex.load(arguments.version)
    encoder = PhotoEncoder.load(arguments.version, read_manifest(arguments.version, False))
    skus, images, texts, _ = load_catalog(arguments.data)
    image_of = dict(zip(skus, images, strict=True))
    text_of = dict(zip(skus, texts, strict=True))
    known = [sku for sku in index.skus if sku in image_of]
    rng = np.random.default_rng(arguments.seed)
    sample = [known[i] for i in rng.choice(len(known), arguments.sample, replace=False)]

    started = time.perf_counter()
    backbone_vectors = encode_images(encoder.backbone, [image_of[sku] for sku in known])
    sampled = set(sample)
    rest = [row for row, sku in enumerate(known) if sku not in sampled]
    held_out_probe = fit_category_probe(
        backbone_vectors[rest], [index.category_of(known[row]) for row in rest]
    )
    text_vectors = encode_texts(encoder.backbone, [text_of[known[row]] for row in rest])
    words = {
        "category": None,
        "category + picture": fit_photo_words(backbone_vectors[rest], text_vectors),
    }
    print(
        f"# probe refitted without the sample in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )

    conditions = {
        "catalog photo": lambda image, number: image,
        "phone photo": lambda image, number: phone_photo(image, arguments.seed + number),
    }
    rows = []
    for (condition, make), given, (spoken, photo_words) in itertools.product(
        conditions.items(), (False, True), words.items()
    ):
        encoder.photo_words = photo_words
        right_probe, right_held_out, overlaps = [], [], []
        for number, sku in enumerate(sample):
            category = index.category_of(sku)
            with Image.open(image_of[sku]) as image:
                photo = make(image.convert("RGB"), number)
            with torch.inference_mode():
                _, pretrained_vector = encoder._image_vectors(photo)
            query = encoder.encode(photo, category if given else None)
            right_probe.append(query.category == category)
            guess = held_out_probe.predict(pretrained_vector.numpy())[0]
            right_held_out.append(guess == category)
            for other in index.complements_of(category):
                page = {s for s, _ in index.nearest(sku, other, ROW)}
                if not page:
                    continue
                found = index.nearest_to_vector(query.vector, query.category, other, ROW + 1)
                shown = [s for s, _ in found if s != sku][:ROW]
                overlaps.append(len(page.intersection(shown)) / len(page))
        row = {
            "condition": condition,
            "category": "given" if given else "recognised",
            "words": spoken,
            "category_accuracy_version_probe": float(np.mean(right_probe)),
            "category_accuracy_held_out_probe": float(np.mean(right_held_out)),
            "overlap_at_10": float(np.mean(overlaps)),
            "rows_compared": len(overlaps),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(f"\n{len(sample)} products, a row of {ROW} per complementary category\n")
    print(
        "| photo | category | words | recognised by the version's probe | by a probe that never "
        "saw the product | overlap@10 with the product page |"
    )
    print("|---|---|---|---:|---:|---:|")
    for row in rows:
        recognised = row["category"] == "recognised"
        print(
            f"| {row['condition']} | {row['category']} | {row['words']} "
            f"| {row['category_accuracy_version_probe']:.3f} "
            f"| {row['category_accuracy_held_out_probe']:.3f} "
            f"| {row['overlap_at_10']:.3f} |"
            if recognised
            else f"| {row['condition']} | {row['category']} | {row['words']} | | "
            f"| {row['overlap_at_10']:.3f} |"
        )
    arguments.results.write_text(
        json.dumps({"arguments": vars(arguments), "rows": rows}, default=str, indent=1)
    )


if __name__ == "__main__":
    main()
