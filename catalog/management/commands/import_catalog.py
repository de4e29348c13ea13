"""manage.py import_catalog FILE.csv [--images DIR] [--mapping …] [--dry-run] [--full]"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from catalog.management.import_command import add_import_arguments, run_import_command


class Command(BaseCommand):
    help = (
        "Import products from a CSV: sku and category required; title, group, colour, price, "
        "in_stock, image optional; other columns are kept as attributes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_import_arguments(parser)
        parser.add_argument(
            "--images",
            type=Path,
            default=None,
            help="Folder that relative image paths are read from (default: the CSV's folder).",
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="A full catalog: deactivate active products the file omits.",
        )
        parser.add_argument(
            "--no-new-categories",
            action="store_true",
            help="Reject rows whose category does not exist yet.",
        )

    def handle(
        self, *args, images: Path | None, full: bool, no_new_categories: bool, **options
    ) -> None:
        extra = {"images_folder": str(images.resolve())} if images else {}
        run_import_command(
            self,
            "catalog",
            options,
            deactivate_missing=full,
            create_categories=not no_new_categories,
            **extra,
        )
