"""manage.py import_outfits FILE.csv"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.csv_import import CsvFormatError
from catalog.management.commands.import_catalog import line_count, print_report
from embeddings.progress import TerminalProgress
from outfits.services import import_outfits


class Command(BaseCommand):
    help = "Import curated outfits from a CSV: outfit_id,sku[,position], one row per item."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv_file", type=Path)

    def handle(self, *args, csv_file: Path, **options) -> None:
        if not csv_file.is_file():
            raise CommandError(f"{csv_file} does not exist")
        total = line_count(csv_file)
        bar = TerminalProgress()
        try:
            report = import_outfits(
                csv_file, progress=lambda line: bar("importing outfits", line, total)
            )
        except CsvFormatError as error:
            raise CommandError(str(error)) from error
        finally:
            bar.close()
        print_report(self, report)
