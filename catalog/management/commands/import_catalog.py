"""manage.py import_catalog FILE.csv [--images DIR]"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.csv_import import CsvFormatError, ImportReport
from catalog.services import import_catalog
from embeddings.progress import TerminalProgress


def line_count(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def print_report(command: BaseCommand, report: ImportReport, shown: int = 20) -> None:
    for row in report.rejected[:shown]:
        command.stderr.write(f"  rejected {row}")
    if len(report.rejected) > shown:
        command.stderr.write(f"  … and {len(report.rejected) - shown} more rejected rows")
    command.stdout.write(command.style.SUCCESS(report.summary()))


class Command(BaseCommand):
    help = "Import products from a CSV: sku,title,category,image[,colour,price,in_stock,…]."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv_file", type=Path)
        parser.add_argument(
            "--images",
            type=Path,
            default=None,
            help="Folder that relative image paths are read from (default: the CSV's folder).",
        )

    def handle(self, *args, csv_file: Path, images: Path | None, **options) -> None:
        if not csv_file.is_file():
            raise CommandError(f"{csv_file} does not exist")
        total = line_count(csv_file)
        bar = TerminalProgress()
        try:
            report = import_catalog(
                csv_file, images, progress=lambda line: bar("importing catalog", line, total)
            )
        except CsvFormatError as error:
            raise CommandError(str(error)) from error
        finally:
            bar.close()
        print_report(self, report)
