"""manage.py evaluate --fitb FILE.json [--compat FILE.txt] [--json]"""

import json
import math
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from embeddings.engine.cooccurrence import EXPOSURE
from embeddings.engine.evaluate import figure_text
from embeddings.training import evaluate_active_model


class Command(BaseCommand):
    help = (
        "Score the active model on task files in the Polyvore Outfits formats whose item ids "
        "are catalog SKUs: FITB accuracy, compatibility AUC, and Recall@10/50 of each FITB "
        "answer within its `category` when questions carry one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fitb", type=Path, help="fill_in_blank JSON file")
        parser.add_argument("--compat", type=Path, help="compatibility file: label item item …")
        parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
        parser.add_argument(
            "--cooccurrence-weight",
            type=float,
            default=None,
            help="Score with direct co-occurrence alone at this weight (0: content alone) "
            "instead of the version's blend.",
        )

    def handle(
        self,
        *args,
        fitb: Path | None,
        compat: Path | None,
        json: bool,
        cooccurrence_weight: float | None,
        **options,
    ):
        if not fitb and not compat:
            raise CommandError("Give --fitb FILE.json and/or --compat FILE.txt")
        for path in (fitb, compat):
            if path and not path.is_file():
                raise CommandError(f"{path} does not exist")
        try:
            results = evaluate_active_model(fitb, compat, cooccurrence_weight)
        except ValueError as error:
            raise CommandError(str(error)) from error
        if json:
            self.stdout.write(_json_dumps(results))
            return
        recall = results["recall_at"] or {}
        recalls = "  ".join(
            f"Recall@{k} {figure_text(value)}" for k, value in sorted(recall.items())
        )
        self.stdout.write(
            f"model version {results['model_version']} ({results['backbone']}, "
            f"{results['scorer']} scorer, {_blend_text(results)})\n"
            f"FITB accuracy      {figure_text(results['fitb_accuracy'])} "
            f"± {figure_text(results['fitb_standard_error'])}  "
            f"({results['fitb_questions']} questions)\n"
            f"compatibility AUC  {figure_text(results['compatibility_auc'])} "
            f"± {figure_text(results['compatibility_auc_standard_error'])}  "
            f"({results['compatibility_outfits']} outfits)\n"
            f"{recalls or 'Recall@K —'}  "
            f"({results['recall_questions']} questions with a category)\n"
            f"skipped (an item is not in the model): {results['skipped_unknown_items']}"
        )


def _json_dumps(results: dict) -> str:
    def clean(value):
        return None if isinstance(value, float) and math.isnan(value) else value

    return json.dumps({key: clean(value) for key, value in results.items()}, indent=2)


def _blend_text(results: dict) -> str:
    """The weights of the outfits' signals (cooccurrence.SIGNALS) the results were scored at."""
    exposure = results.get("exposure_weights") or [0.0] * len(EXPOSURE)
    weights = [
        results["cooccurrence_weight"],
        results.get("second_order_weight", 0.0),
        results.get("overlap_weight", 0.0),
        *exposure,
    ]
    names = ["co-occurrence", "second order", "outfit overlap", *EXPOSURE]
    return ", ".join(f"{name} {weight:.3g}" for name, weight in zip(names, weights, strict=True))
