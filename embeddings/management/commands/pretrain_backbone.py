"""manage.py pretrain_backbone [--epochs N] [--output FILE]"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from embeddings.engine.degrade import PRETRAINING_PHONE_PHOTOS
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
            action="append",
            default=[],
            metavar="CSV[:COLUMNS]",
            help="Extra image-caption pairs from a related domain (repeatable, one source domain "
            "each): a CSV whose image paths are relative to its folder, optionally followed by "
            "the comma-separated columns joined into its captions, e.g. "
            "hm/articles.csv:prod_name,colour_group_name,detail_desc "
            "(default columns: --pairs-caption-columns).",
        )
        parser.add_argument("--pairs-image-column", default="image")
        parser.add_argument(
            "--pairs-caption-columns",
            default="productDisplayName",
            help="Comma-separated columns joined into the caption of a --pairs CSV that names "
            "none.",
        )
        parser.add_argument(
            "--phone-photos",
            type=float,
            default=PRETRAINING_PHONE_PHOTOS,
            metavar="SHARE",
            help="Share of images (0 to 1) shown as a shopper's phone photo of themselves "
            "(the product on a surface, turned, lit warm or cool), so photos match like their "
            "packshots (default %(default)s; 0: catalog images as they are).",
        )
        parser.add_argument(
            "--no-catalog",
            action="store_true",
            help="Pretrain on the --pairs alone, without the catalog's own images and captions.",
        )

    def handle(self, *args, epochs: int, output: Path, pairs: list[str], **options) -> None:
        if epochs < 1:
            raise CommandError("--epochs must be at least 1")
        if not 0.0 <= options["phone_photos"] <= 1.0:
            raise CommandError("--phone-photos is a share of the images, from 0 to 1")
        if options["no_catalog"] and not pairs:
            raise CommandError("--no-catalog needs at least one --pairs CSV to train on")
        bar = TerminalProgress()
        try:
            extra = []
            for source in pairs:
                csv_path, columns = split_pairs_source(source, options["pairs_caption_columns"])
                found = read_caption_pairs(csv_path, options["pairs_image_column"], columns)
                self.stdout.write(f"{len(found)} extra image-caption pairs from {csv_path}")
                extra += found
            losses = pretrain_backbone(
                output,
                epochs,
                progress=bar,
                extra_pairs=extra,
                with_catalog=not options["no_catalog"],
                phone_photos=options["phone_photos"],
            )
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


def split_pairs_source(source: str, default_columns: str) -> tuple[Path, list[str]]:
    """'path.csv:col1,col2' -> (path.csv, [col1, col2]); a bare path takes the default columns."""
    path, _, columns = source.rpartition(":") if ".csv:" in source else (source, "", "")
    return Path(path), [c.strip() for c in (columns or default_columns).split(",") if c.strip()]
