"""manage.py import_outfits FILE.csv [--mapping …] [--dry-run]"""

from django.core.management.base import BaseCommand, CommandParser

from catalog.management.import_command import add_import_arguments, run_import_command


class Command(BaseCommand):
    help = "Import curated outfits from a CSV: outfit_id,sku[,position], one row per item."

    def add_arguments(self, parser: CommandParser) -> None:
        add_import_arguments(parser)

    def handle(self, *args, **options) -> None:
        run_import_command(self, "outfits", options)
