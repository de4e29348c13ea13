"""Row diversity, measured on the Mango catalog: the rows product pages serve (the served path,
outfits.recommendations.goes_well_with_each) for the items of the split's held-out outfits,
under each match-diversity setting. For each setting:

- near-duplicates: rows showing two colourways of one garment (Mango's SKU is the garment's
  model code, a dash, the colour code), rows showing two products of one look (twins by
  outfits.row_facts.look_key: the same picture, or the same title and colour where the title
  is the catalog's own), and rows showing two of one title and colour (what the twins rule
  was before the import's made-up titles were told apart: Mango's titles are all made up);
- variety: distinct colours in a row;
- what diversity costs: how often the held-out outfit's own mate is in the anchor's row of the
  mate's category (hit@N, N = the page's row), cold and warm, with standard errors.

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/row_diversity.py \\
        --split /tmp/mango-split [--diversity 0 0.3 0.6] [--styles model|none] \\
        [--results docs/row_diversity.json]

--styles model gives every product its Mango model code as its style first (what a catalog
with a style column imports: colourways share it); --styles none clears the styles; without
the option the products are measured as they are.

OUTFITS_VAR_DIR must hold the imported Mango catalog and an active version (docs/model.md,
"Reproduce").
"""

import argparse
import json
import math
import os
import sys
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import code_version, machine  # noqa: E402


def garment_of(sku: str) -> str:
    """Mango's SKU is <model>-<colour>: the colourways of a garment share the model."""
    return sku.split("-")[0]


def give_styles(styles: str) -> None:
    """Every product's style: its garment (the model code), or none."""
    from catalog.models import Product

    products = list(Product.objects.only("pk", "sku", "style"))
    for product in products:
        product.style = garment_of(product.sku) if styles == "model" else ""
    Product.objects.bulk_update(products, ["style"], batch_size=2000)


def held_out_pairs(split: Path, name: str) -> list[tuple[str, str]]:
    """Every ordered pair of items of the split's positive held-out outfits (label 1)."""
    pairs = []
    for line in (split / f"{name}_compat.txt").read_text().splitlines():
        label, *items = line.split()
        if label == "1":
            pairs += [(a, b) for a in items for b in items if a != b]
    return pairs


def measure(pairs: dict[str, list[tuple[str, str]]], diversity: float) -> dict:
    from django.test import override_settings

    from catalog.models import Product
    from outfits.recommendations import goes_well_with_each
    from outfits.serving import current_snapshot

    try:
        from outfits.row_facts import look_key
    except ImportError:  # the code before look_key (to measure it): one title and colour

        def look_key(card) -> tuple[str, ...]:
            return (card.title.casefold(), card.colour.casefold())

    anchors = sorted({a for found in pairs.values() for a, _ in found})
    products = {p.sku: p for p in Product.objects.filter(sku__in=anchors)}
    rows: dict[str, dict[str, list[str]]] = {}
    with override_settings(OUTFITS_MATCH_DIVERSITY=diversity):
        for start in range(0, len(anchors), 100):
            chunk = [products[sku] for sku in anchors[start : start + 100] if sku in products]
            for product, answer in zip(chunk, goes_well_with_each(chunk), strict=True):
                rows[product.sku] = {
                    group.category.name: [m.product.sku for m in group.matches]
                    for group in answer.groups
                }
    facts = {
        p.sku: (p.title.casefold(), p.colour.casefold(), p.category.name)
        for p in Product.objects.select_related("category")
    }
    snapshot = current_snapshot()
    look = {sku: look_key(card) for sku in facts if (card := snapshot.product(sku)) is not None}
    shown = [row for by_category in rows.values() for row in by_category.values() if len(row) > 1]
    if not shown:
        raise SystemExit("No row of two or more matches: is a version active?")
    colourways = sum(
        any(garment_of(a) == garment_of(b) for a, b in combinations(row, 2)) for row in shown
    )
    twins = sum(any(look[a] == look[b] for a, b in combinations(row, 2)) for row in shown)
    same_words = sum(
        any(facts[a][:2] == facts[b][:2] for a, b in combinations(row, 2)) for row in shown
    )
    colours = [len({facts[sku][1] for sku in row}) / len(row) for row in shown]
    result: dict = {
        "diversity": diversity,
        "rows": len(shown),
        "rows_with_two_colourways_of_a_garment": colourways / len(shown),
        "rows_with_two_of_one_look": twins / len(shown),
        "rows_with_two_of_one_title_and_colour": same_words / len(shown),
        "distinct_colours_per_item": sum(colours) / len(colours),
    }
    for name, found in pairs.items():
        hits = [
            b in rows.get(a, {}).get(facts[b][2], []) for a, b in found if a in rows and b in facts
        ]
        rate = sum(hits) / max(1, len(hits))
        result[f"{name}_hit"] = rate
        result[f"{name}_hit_se"] = math.sqrt(rate * (1 - rate) / len(hits))
        result[f"{name}_pairs"] = len(hits)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--diversity", type=float, nargs="+", default=[0.0, 0.3, 0.6])
    parser.add_argument("--styles", choices=["model", "none"])
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "row_diversity.json")
    arguments = parser.parse_args()
    if "OUTFITS_VAR_DIR" not in os.environ:
        raise SystemExit("Set OUTFITS_VAR_DIR to the var folder holding the imported catalog.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")
    import django

    django.setup()
    from django.conf import settings

    if arguments.styles:
        give_styles(arguments.styles)  # before the first answer builds the serving snapshot
    pairs = {name: held_out_pairs(arguments.split, name) for name in ("cold", "warm")}
    results = [measure(pairs, diversity) for diversity in arguments.diversity]
    size = settings.OUTFITS_MATCHES_PER_CATEGORY
    print(
        f"\n| diversity | rows | two colourways of a garment | two of one look "
        f"| two of one title and colour | distinct colours / item | cold hit@{size} "
        f"| warm hit@{size} |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['diversity']} | {r['rows']:,} "
            f"| {r['rows_with_two_colourways_of_a_garment']:.3f} "
            f"| {r['rows_with_two_of_one_look']:.3f} "
            f"| {r['rows_with_two_of_one_title_and_colour']:.3f} "
            f"| {r['distinct_colours_per_item']:.3f} "
            f"| {r['cold_hit']:.4f} ± {r['cold_hit_se']:.4f} "
            f"| {r['warm_hit']:.4f} ± {r['warm_hit_se']:.4f} |"
        )
    arguments.results.write_text(
        json.dumps(
            {
                "machine": machine(),
                "code": code_version(),
                "row": size,
                "styles": arguments.styles,
                "runs": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
