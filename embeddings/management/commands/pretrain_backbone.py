"""manage.py pretrain_backbone [--epochs N] [--output FILE]"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from embeddings.engine.progress import TerminalProgress
from embeddings.training import pretrain_backbone, read_caption_pairs


class Command(BaseCommand):
    help = (
        "Build the offline backbone: train the project's small open_clip model contrastively on "
        "catalog images and titles, and save it as an open_clip checkpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--epochs", type=int, default=20)
        parser.add_argument(
            "--output",
            type=Path,
            default=Path(settings.OUTFITS_PRETRAINED),
            help="Checkpoint to write (default: OUTFITS_PRETRAINED).",
        )
        parser.add_argument(
            "--pairs",
            type=Path,
            default=None,
            help="Extra image-caption pairs from a related domain: a CSV whose image paths are "
            "relative to its folder (e.g. fashion-product-images/styles.csv).",
        )
        parser.add_argument("--pairs-image-column", default="image")
        parser.add_argument(
            "--pairs-caption-columns",
            default="productDisplayName",
            help="Comma-separated columns joined into the caption.",
        )

    def handle(self, *args, epochs: int, output: Path, pairs: Path | None, **options) -> None:
        if epochs < 1:
            raise CommandError("--epochs must be at least 1")
        bar = TerminalProgress()
        try:
            extra = (
                read_caption_pairs(
                    pairs,
                    options["pairs_image_column"],
                    [c.strip() for c in options["pairs_caption_columns"].split(",") if c.strip()],
                )
                if pairs
                else []
            )
            if pairs:
                self.stdout.write(f"{len(extra)} extra image-caption pairs from {pairs}")
            losses = pretrain_backbone(output, epochs, progress=bar, extra_pairs=extra)
        except ValueError as error:
            raise CommandError(str(error)) from error
        finally:
            bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Backbone saved to {output} "
                f"(contrastive loss {losses[0]:.3f} -> {losses[-1]:.3f})."
            )
        )
