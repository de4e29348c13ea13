"""Reading merchandisers' CSV files as they come: the encoding (UTF-8 with or without BOM,
UTF-16, Windows-1252/Latin-1) and the delimiter (, ; tab |) are detected, rows are streamed
with the line they start on, and the store's column names are mapped to ours."""

import codecs
import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_BYTES = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
REPLACEMENT = "\ufffd"
csv.field_size_limit(10 * 1024 * 1024)  # a description may be long; a 10 MB cell is not sane


class CsvFormatError(ValueError):
    """The file as a whole cannot be imported (empty, no header, a required column missing…)."""


@dataclass(frozen=True)
class RejectedRow:
    line: int
    column: str
    value: str
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    def reject(self, line: int, column: str, value: str, reason: str) -> None:
        self.rejected.append(RejectedRow(line, column, value, reason))

    @property
    def rejected_lines(self) -> int:
        return len({row.line for row in self.rejected})


@dataclass(frozen=True)
class CsvLayout:
    encoding: str
    delimiter: str
    header: tuple[str, ...]


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # The sample may end inside a multi-byte character: an incremental decoder allows that.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"  # decodes any byte: the last resort


def detect_delimiter(header_line: str) -> str:
    """The candidate that splits the header most often (outside quotes); a comma if none."""
    counts = {d: 0 for d in DELIMITERS}
    quoted = False
    for character in header_line:
        if character == '"':
            quoted = not quoted
        elif not quoted and character in counts:
            counts[character] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def detect_layout(path: Path) -> CsvLayout:
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if not sample.strip():
        raise CsvFormatError(f"{path.name} is empty: expected a header row and data rows")
    encoding = detect_encoding(sample)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample)
    first_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    delimiter = detect_delimiter(first_line)
    header = next(csv.reader(io.StringIO(first_line), delimiter=delimiter), [])
    header = tuple(name.strip().lstrip("\ufeff") for name in header)
    if not any(header):
        raise CsvFormatError(f"{path.name} has no header row")
    duplicates = sorted({name for name in header if header.count(name) > 1 and name})
    if duplicates:
        raise CsvFormatError(f"{path.name} repeats column(s) {', '.join(duplicates)}")
    return CsvLayout(encoding, delimiter, header)


def iter_rows(path: Path, layout: CsvLayout) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line where the row starts, {column: stripped value}) in constant memory. Missing
    trailing cells read as ""; a row with bytes undecodable in the file's encoding carries
    U+FFFD, which callers reject."""
    with path.open(newline="", encoding=layout.encoding, errors="replace") as handle:
        reader = csv.reader(handle, delimiter=layout.delimiter)
        next(reader, None)  # the header, already read by detect_layout
        next_line = reader.line_num + 1
        for cells in reader:
            line, next_line = next_line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue  # blank lines are not rows
            yield (
                line,
                {
                    column: (cells[i].strip() if i < len(cells) else "")
                    for i, column in enumerate(layout.header)
                },
            )


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs: `=cmd|…` becomes `'=cmd|…` (CSV
    injection), since rejected values are exactly the untrusted ones."""
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


def parse_mapping(text: str) -> dict[str, str]:
    """`sku=cod_modelo_color, image=des_filename` → {"sku": "cod_modelo_color", …}."""
    mapping: dict[str, str] = {}
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        field_name, separator, column = part.partition("=")
        if not separator or not field_name.strip() or not column.strip():
            raise CsvFormatError(f"Column mapping {part.strip()!r} is not of the form field=column")
        mapping[field_name.strip()] = column.strip()
    return mapping


@dataclass(frozen=True)
class ColumnMap:
    """Which file column feeds each of our fields; every other column is kept as-is."""

    field_columns: dict[str, str]
    extra_columns: tuple[str, ...]

    def fields(self, row: Mapping[str, str]) -> dict[str, str]:
        return {name: row[column] for name, column in self.field_columns.items()}

    def extras(self, row: Mapping[str, str]) -> dict[str, str]:
        return {column: row[column] for column in self.extra_columns if row[column] != ""}


def resolve_columns(
    layout: CsvLayout,
    mapping: Mapping[str, str],
    known_fields: Sequence[str],
    required_fields: Sequence[str],
    file_name: str,
) -> ColumnMap:
    unknown_fields = sorted(set(mapping) - set(known_fields))
    if unknown_fields:
        raise CsvFormatError(
            f"Column mapping names unknown field(s) {', '.join(unknown_fields)}; "
            f"the fields are {', '.join(known_fields)}"
        )
    absent = sorted(column for column in mapping.values() if column not in layout.header)
    if absent:
        raise CsvFormatError(
            f"Column mapping names column(s) {', '.join(absent)} that {file_name} lacks; "
            f"its columns are {', '.join(layout.header)}"
        )
    field_columns = {name: column for name, column in mapping.items()}
    for name in known_fields:
        if name not in field_columns and name in layout.header:
            field_columns[name] = name
    missing = [name for name in required_fields if name not in field_columns]
    if missing:
        delimiter = {"\t": "tab"}.get(layout.delimiter, layout.delimiter)
        raise CsvFormatError(
            f"{file_name} lacks required column(s) {', '.join(missing)} (columns found, split "
            f"on {delimiter!r}: {', '.join(layout.header)}). Rename them, or map them, e.g. "
            f"{missing[0]}=<your column>"
        )
    used = set(field_columns.values())
    return ColumnMap(field_columns, tuple(c for c in layout.header if c not in used and c))
