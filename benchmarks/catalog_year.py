"""Does the catalog year say what the model does not? Mango's picture files are named by the
catalog they come from (images/2019_…, images/2023_…), and stylists build an outfit from one
catalog: a product's year, as a store would keep its season, could be a signal of its own.
This probe reads, on the split's FITB questions, how often the right and the wrong answers
share the question items' year, how many questions the active version loses to an answer of
another year, and what a bonus of β × (share of question items of the candidate's year) added
to its scores would answer (served, and content alone).

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/catalog_year.py \\
        --split /tmp/mango-split --results /tmp/catalog_year.json
"""

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version, code_version, machine  # noqa: E402
from benchmarks.mango_split import MANGO, read_mango  # noqa: E402
from embeddings.engine.evaluate import FitbTask, Scorer, read_fitb_tasks  # noqa: E402

BONUSES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0)


def catalog_years(data: Path) -> dict[str, str]:
    """Each product's catalog year, from its picture's file name (images/YEAR_MODEL_COLOUR.jpg)."""
    with (data / "products.csv").open(newline="") as handle:
        return {
            row["cod_modelo_color"]: Path(row["des_filename"]).name.split("_")[0]
            for row in csv.DictReader(handle)
        }


def one_catalog_share(data: Path, year_of: dict[str, str]) -> tuple[int, int]:
    """Outfits whose products all come from one catalog year, and outfits."""
    outfits = read_mango(data)[1].values()
    return sum(len({year_of[sku] for sku in items}) == 1 for items in outfits), len(outfits)


def probe(score: Scorer, tasks: Sequence[FitbTask], year_of: dict[str, str]) -> dict:
    """The questions' year shares, the losses to another year and FITB at each bonus."""
    scores, same, right = [], [], []
    for task in tasks:
        years = [year_of[item] for item in task.question]
        scores.append(np.asarray(score(task.question, task.answers), dtype=np.float64))
        same.append([sum(y == year_of[a] for y in years) / len(years) for a in task.answers])
        right.append(task.correct)
    s, share, correct = np.array(scores), np.array(same), np.array(right)
    chosen = s.argmax(axis=1)
    lost = np.flatnonzero(chosen != correct)
    right_share = share[np.arange(len(correct)), correct]
    wrong = np.ones_like(share, dtype=bool)
    wrong[np.arange(len(correct)), correct] = False
    return {
        "questions": len(tasks),
        "right_answers_of_the_questions_year": float((right_share >= 0.5).mean()),
        "wrong_answers_of_the_questions_year": float((share[wrong] >= 0.5).mean()),
        "lost": len(lost),
        "lost_to_another_year": int(sum(share[i, chosen[i]] < 0.5 for i in lost)),
        "fitb_by_bonus": {
            str(beta): float(((s + beta * share).argmax(axis=1) == correct).mean())
            for beta in BONUSES
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--results", type=Path, required=True)
    arguments = parser.parse_args()
    version, index = active_version()
    year_of = catalog_years(arguments.data)
    single, outfits = one_catalog_share(arguments.data, year_of)
    found: dict = {
        "machine": machine(),
        "code": code_version(),
        "model_version": version.name,
        "scorer": index.scorer.kind,
        "outfits_of_one_year": single,
        "outfits": outfits,
    }
    for label, scorer in (
        ("served", index.scorer),
        ("content", index.scorer.with_cooccurrence_weight(0)),
    ):
        for name in ("warm", "cold"):
            tasks = read_fitb_tasks(arguments.split / f"{name}_fitb.json")
            found[f"{label}_{name}"] = result = probe(index.sku_scorer(scorer), tasks, year_of)
            print(
                f"{label} {name}: lost {result['lost']} of {result['questions']}, "
                f"{result['lost_to_another_year']} to another year; FITB by bonus "
                + ", ".join(f"{b} {v:.3f}" for b, v in result["fitb_by_bonus"].items())
            )
    arguments.results.write_text(json.dumps(found, indent=2))
    print(f"{single} of {outfits} outfits from one catalog year; results in {arguments.results}")


if __name__ == "__main__":
    main()
