"""manage.py export_matches [--format jsonl|csv] [--output FILE] [filters…]"""

import os
import sys
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from outfits.exports import FORMATS, export_lines
from outfits.match_filters import InvalidFilter, MatchFilters, filters_from_text
from outfits.serving import current_snapshot


class Command(BaseCommand):
    help = (
        "Export every active product's matches (per category, with scores, why and the rec_id "
        "that attributes events to the model version) as JSON Lines or CSV, for email "
        "campaigns and ads feeds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument(
            "--output",
            default="-",
            help="File to write (written whole, then renamed into place: a failed export "
            "leaves the previous file); '-' (default): standard output.",
        )
        parser.add_argument("--limit", type=int, default=None, help="matches per category")
        parser.add_argument("--category", default="", help="only these, comma-separated")
        parser.add_argument("--exclude", default="", help="SKUs never shown, comma-separated")
        parser.add_argument("--attributes", default="", help="e.g. gender:female,line:woman")
        parser.add_argument("--boost", default="", help="new_arrivals, in_stock, attribute:value")
        parser.add_argument(
            "--include-out-of-stock", action="store_true", help="match out-of-stock products too"
        )
        parser.add_argument(
            "--base-url", default="", help="prefix of product URLs, e.g. https://shop.example.com"
        )

    def handle(self, *args, **options) -> None:
        if options["limit"] is not None and not 1 <= options["limit"] <= 50:
            raise CommandError("--limit must be between 1 and 50")
        filters = self.filters(options)
        output: str = options["output"]
        started = time.monotonic()
        reported = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - reported[0] >= 5 or done == total:
                reported[0] = now
                rate = done / max(now - started, 1e-9)
                self.stderr.write(
                    f"exported {done:,} of {total:,} products ({rate:,.0f}/s, "
                    f"about {(total - done) / max(rate, 1e-9):.0f} s left)"
                )

        lines = export_lines(
            options["format"], options["limit"], filters, options["base_url"], progress
        )
        if output == "-":
            for line in lines:
                sys.stdout.write(line)
            return
        target = Path(output)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", newline="", dir=target.parent, delete=False
        ) as handle:
            try:
                handle.writelines(lines)
            except BaseException:
                handle.close()
                Path(handle.name).unlink(missing_ok=True)
                raise
        os.chmod(handle.name, 0o644)  # as a file written in place would be, not 0600
        os.replace(handle.name, target)
        self.stderr.write(f"wrote {target} in {time.monotonic() - started:.1f} s")

    def filters(self, options: dict) -> MatchFilters:
        known = current_snapshot().rules.category_by_name_or_slug
        wanted = [c.strip() for c in options["category"].split(",") if c.strip()]
        unknown = [c for c in wanted if c.casefold() not in known]
        if unknown:
            raise CommandError(f"unknown category: {', '.join(unknown)}")
        try:
            return filters_from_text(
                [known[c.casefold()].name for c in wanted],
                not options["include_out_of_stock"],
                options["exclude"],
                options["attributes"],
                options["boost"],
            )
        except InvalidFilter as invalid:
            raise CommandError(str(invalid)) from None
