"""manage.py train [--epochs N] [--unfreeze-blocks N] [--pretrained FILE] [--scorer KIND]
[--async]"""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from embeddings.engine.evaluate import figure_text
from embeddings.engine.progress import TerminalProgress
from embeddings.engine.scorers import SCORER_CHOICES
from embeddings.models import TrainingRun
from embeddings.training_runs import (
    COMPARED_METRICS,
    TrainingAlreadyRunning,
    TrainingNotQueued,
    create_training_run,
    execute_training_run,
    start_training_run,
)


class Command(BaseCommand):
    help = (
        "Train and evaluate a new compatibility model version; activate it if it beats the "
        "active one (OUTFITS_ACTIVATION_MARGIN)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--epochs", type=int, default=None, help="Head training epochs.")
        parser.add_argument(
            "--unfreeze-blocks",
            type=int,
            default=None,
            help="Fine-tune the backbone's last N image blocks with the head "
            "(default: OUTFITS_UNFROZEN_BLOCKS; 0 keeps the backbone frozen).",
        )
        parser.add_argument(
            "--pretrained",
            default=None,
            help="Backbone checkpoint to start from: OUTFITS_PRETRAINED (the default) or a "
            "weights file in var/backbones/.",
        )
        parser.add_argument(
            "--scorer",
            choices=SCORER_CHOICES,
            default=None,
            help="The score the version serves (default: OUTFITS_SCORER): type_aware (pairs), "
            "outfit_transformer (an outfit-level model reads outfits whole) or auto (both "
            "trained, the better on the held-out outfits served).",
        )
        parser.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="Enqueue the training on the Celery `training` queue and return at once.",
        )

    def handle(
        self,
        *args,
        epochs: int | None,
        unfreeze_blocks: int | None,
        pretrained: str | None,
        scorer: str | None,
        run_async: bool,
        **options,
    ) -> None:
        run_options = {
            "epochs": epochs,
            "unfrozen_blocks": unfreeze_blocks,
            "pretrained": pretrained,
            "scorer": scorer,
        }
        try:
            with transaction.atomic():
                if run_async:
                    run = start_training_run(**run_options)
                else:
                    run = create_training_run(**run_options)
        except (TrainingAlreadyRunning, TrainingNotQueued, ValueError) as refused:
            raise CommandError(str(refused)) from None
        if run_async:
            self.stdout.write(f"Training run {run.pk} queued.")
            return
        bar = TerminalProgress()
        try:
            run = execute_training_run(run.pk, progress=bar)
        finally:
            bar.close()
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"Training {run.status}: {run.message}")
        self.stdout.write(self.style.SUCCESS(run.message))
        active = run.comparison.get("active", {})
        self.stdout.write(
            f"{'':12} {'new':>7}" + (f"  {run.comparison['active_version']}" if active else "")
        )
        for key in COMPARED_METRICS:
            new = run.comparison.get("new", run.metrics).get(key)
            line = f"{key:12} {figure_text(new):>7}"
            if active:
                line += f"  {figure_text(active.get(key))}"
            self.stdout.write(line)
        kinds = [k for k in SCORER_CHOICES if f"fitb_{k}" in run.metrics]
        if run.metrics.get("scorer"):
            compared = ", ".join(
                f"{k} {figure_text(run.metrics.get(f'fitb_cold_{k}'))}"
                f" / {figure_text(run.metrics.get(f'fitb_warm_{k}'))}"
                for k in kinds
            )
            self.stdout.write(
                f"Serves the {run.metrics['scorer']} scorer"
                + (
                    f" (held-out FITB, new arrivals / known items: {compared}; the outfit model"
                    " serves unless the pairs lead on either beyond noise)."
                    if len(kinds) > 1
                    else "."
                )
            )
        seconds = run.model_version.manifest.get("seconds", {})
        stages = ", ".join(f"{stage} {value:.0f} s" for stage, value in seconds.items())
        self.stdout.write(f"Time: {sum(seconds.values()):.0f} s ({stages}).")
