"""What every CSV import shares: reading rows with their line numbers, and the report of what
was created, updated, left unchanged or rejected (with line, column, value and reason)."""

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class CsvFormatError(ValueError):
    """The file as a whole cannot be imported (no header, a required column missing…)."""


@dataclass(frozen=True)
class RejectedRow:
    line: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}={self.value!r}: {self.reason}"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    def reject(self, line: int, column: str, value: str, reason: str) -> None:
        self.rejected.append(RejectedRow(line, column, value, reason))

    @property
    def rejected_lines(self) -> int:
        return len({row.line for row in self.rejected})

    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.rejected_lines} rejected"
        )


def read_csv_rows(
    path: Path, required_columns: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number where the row starts, row) with values stripped; header checked first."""
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        if not header:
            raise CsvFormatError(f"{path.name} is empty: expected a header row")
        reader.fieldnames = header
        missing = [column for column in required_columns if column not in header]
        if missing:
            raise CsvFormatError(
                f"{path.name} lacks required column(s) {', '.join(missing)}; "
                f"found: {', '.join(header)}"
            )
        next_line = reader.line_num + 1
        for row in reader:
            values = {key: (value or "").strip() for key, value in row.items() if key is not None}
            yield next_line, values
            next_line = reader.line_num + 1
