"""manage.py train [--epochs N] [--unfreeze-blocks N] [--async]"""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from embeddings.models import TrainingRun
from embeddings.progress import TerminalProgress
from embeddings.services import execute_training_run, start_training_run


class Command(BaseCommand):
    help = "Train, evaluate and activate a new compatibility model version."

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
            "--async",
            dest="run_async",
            action="store_true",
            help="Enqueue the training on the Celery `training` queue and return at once.",
        )

    def handle(
        self, *args, epochs: int | None, unfreeze_blocks: int | None, run_async: bool, **options
    ) -> None:
        if epochs is not None and epochs < 1:
            raise CommandError("--epochs must be at least 1")
        if unfreeze_blocks is not None and unfreeze_blocks < 0:
            raise CommandError("--unfreeze-blocks must be 0 or more")
        options = {"epochs": epochs, "unfrozen_blocks": unfreeze_blocks}
        if run_async:
            with transaction.atomic():
                run = start_training_run(**options)
            self.stdout.write(f"Training run {run.pk} queued.")
            return
        run = TrainingRun.objects.create(options=options)
        bar = TerminalProgress()
        try:
            run = execute_training_run(run.pk, progress=bar)
        finally:
            bar.close()
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"Training failed: {run.message}")
        metrics = ", ".join(
            f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
            for key, value in run.metrics.items()
        )
        seconds = run.model_version.manifest.get("seconds", {})
        stages = ", ".join(f"{stage} {value:.0f} s" for stage, value in seconds.items())
        self.stdout.write(self.style.SUCCESS(f"{run.message} {metrics}"))
        self.stdout.write(f"Time: {sum(seconds.values()):.0f} s ({stages}).")
