"""Reading merchandisers' CSV files as they come: the encoding (UTF-8 with or without BOM,
UTF-16 with or without BOM, or a legacy code page such as Windows-1252, Windows-1250 or
Shift-JIS, told apart by charset-normalizer) and the delimiter (, ; tab |) are detected, rows
are streamed with the line they start on, and the store's column names are mapped to ours."""

import codecs
import csv
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import charset_normalizer

SAMPLE_BYTES = 1 << 20
SCAN_BLOCK_BYTES = 1 << 18
# charset-normalizer is shown the file's non-ASCII lines, up to this much: the evidence that
# tells code pages apart (ASCII lines read the same in all of them).
EVIDENCE_BYTES = 1 << 16
LONGEST_LINE_BYTES = 1 << 24
DELIMITERS = (",", ";", "\t", "|")
REPLACEMENT = "\ufffd"
# Where charset-normalizer finds several code pages equally likely (a short sample of accented
# Latin letters reads as well in Windows-1250 as in Windows-1252), the one Excel writes most.
PREFERRED_CODE_PAGES = ("cp1252", "cp1250", "cp1251", "cp932")
SINGLE_BYTE_CODE_PAGES = tuple(f"cp{page}" for page in range(1250, 1259))
NOT_CSV_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
)
ASCII_PROBE = bytes(range(0x20, 0x7F)) + b"\t\r\n"
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


@dataclass
class NonAsciiLines:
    """What the file's non-ASCII lines say about its encoding."""

    utf8: int = 0  # lines that are valid UTF-8
    other: int = 0  # lines that are not
    evidence: bytearray = field(default_factory=bytearray)  # the first of the others

    def add(self, line: bytes) -> None:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            self.other += 1
            if len(self.evidence) < EVIDENCE_BYTES:
                self.evidence += line + b"\n"
        else:
            self.utf8 += 1


def codec_name(encoding: str) -> str:
    return codecs.lookup(encoding).name


def reads_ascii_as_ascii(encoding: str) -> bool:
    try:
        return ASCII_PROBE.decode(encoding) == ASCII_PROBE.decode("ascii")
    except (UnicodeDecodeError, LookupError):
        return False


def encoding_from_bom(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 (or -32) without a byte order mark: text whose every other byte is zero."""
    if b"\x00" not in head:
        return None
    best = charset_normalizer.from_bytes(head).best()
    if best is not None and best.encoding.startswith(("utf_16", "utf_32")):
        return codec_name(best.encoding)
    return None


def scan_non_ascii_lines(handle: BinaryIO) -> NonAsciiLines:
    """Every non-ASCII line of the file, read in blocks (ASCII blocks are skipped at C speed).
    Stops early once it has seen lines of both kinds: the file is then taken as UTF-8."""
    found = NonAsciiLines()
    carry = b""
    while True:
        block = handle.read(SCAN_BLOCK_BYTES)
        data = carry + block
        # Whole lines only (a multi-byte character never spans two blocks), all at the end.
        cut = data.rfind(b"\n") + 1 if block else len(data)
        if block and cut == 0 and len(data) < LONGEST_LINE_BYTES:
            carry = data
            continue
        lines, carry = (data[:cut], data[cut:]) if cut else (data, b"")
        if not lines.isascii():  # about 3 ms a 256 kB block of accented lines
            for line in lines.splitlines():
                if not line.isascii():
                    found.add(line)
            if found.utf8 and found.other:
                return found
        if not block:
            return found


# The accented Latin letters of the languages the legacy code pages are written in. Read with
# the wrong code page a word turns into letters no one language uses together ("tøièko": Czech
# "tričko" read as Windows-1252) or into symbols ("¯ó³ta": Polish "Żółta").
LATIN_ALPHABETS = (
    "áčďéěíňóřšťúůýž",  # Czech
    "áäčďéíĺľňóôŕšťúýž",  # Slovak
    "ąćęłńóśźż",  # Polish
    "áéíóöőúüű",  # Hungarian
    "čćđšž",  # Croatian, Bosnian, Serbian, Slovene
    "ăâîșşțţ",  # Romanian
    "çë",  # Albanian
    "äöüß",  # German
    "àâæçéèêëîïôœùûüÿ",  # French
    "áéíñóúü",  # Spanish
    "áâãàçéêíóôõú",  # Portuguese
    "àèéìíîòóù",  # Italian
    "àçèéíïòóúü",  # Catalan
    "áéëèïóöü",  # Dutch
    "æøåéóô",  # Danish, Norwegian
    "åäöéšž",  # Swedish, Finnish
    "áðéíóúýþæö",  # Icelandic
    "çğıöşüâîû",  # Turkish
    "ąčęėįšųūž",  # Lithuanian
    "āčēģīķļņšūž",  # Latvian
    "äöõüšž",  # Estonian
)
WORD_SEPARATORS = re.compile(r"[\s\x00-\x40\x5b-\x60\x7b-\x7f]+")


# Letters of other scripts, by the start of their Unicode names (MICRO SIGN or MODIFIER LETTER
# CARON, which a wrong code page also makes, are not among them).
OTHER_SCRIPTS = (
    "CYRILLIC",
    "GREEK",
    "HEBREW",
    "ARABIC",
    "THAI",
    "HIRAGANA",
    "KATAKANA",
    "HALFWIDTH KATAKANA",
    "CJK",
    "IDEOGRAPHIC",
    "HANGUL",
    "FULLWIDTH",
)
PUNCTUATION_AROUND_WORDS = "¡¿«»‹›“”‘’„‚®©™°€£¥$%#*+!?.,:;'\"()[]{}-–—…/\\"
ONE_RUN_AT_AN_END = re.compile(r"[A-Za-z]*[^A-Za-z]{2,}|[^A-Za-z]{2,}[A-Za-z]*")


def letter_kind(character: str) -> str:
    """'ascii', 'latin' (an accented Latin letter), 'other' (a letter of another script) or
    'symbol'."""
    if character.isascii():
        return "ascii" if character.isalpha() else "symbol"
    category, name = unicodedata.category(character), unicodedata.name(character, "")
    if name.startswith("LATIN") and category in ("Lu", "Ll", "Lt"):
        return "latin"
    if name.startswith(OTHER_SCRIPTS) and category[0] in "LM":
        return "other"
    return "symbol"


def languages_of(word: str) -> Sequence[int]:
    """The languages (indexes into LATIN_ALPHABETS) whose writers could have written `word`:
    those whose alphabet holds its accented letters; all of them for a word of another script
    (Cyrillic, kana…); none for a word with a symbol inside (¯ó³ta) or a lone character of
    another script inside Latin letters (c矌el嶪)."""
    core = word.strip(PUNCTUATION_AROUND_WORDS)  # ¿Qué, Brand®, «Milano»
    kinds = [letter_kind(c) for c in core]
    if "symbol" in kinds or ("latin" in kinds and "other" in kinds):
        return []
    if "other" in kinds:
        whole = "ascii" not in kinds or ONE_RUN_AT_AN_END.fullmatch(core)
        return range(len(LATIN_ALPHABETS)) if whole else []
    accented = {c.lower() for c, kind in zip(core, kinds, strict=True) if kind == "latin"}
    return [i for i, alphabet in enumerate(LATIN_ALPHABETS) if accented <= set(alphabet)]


def share_in_one_language(text: str) -> float:
    """The largest share of the text's non-ASCII words that one language could have written."""
    words = [word for word in WORD_SEPARATORS.split(text) if not word.isascii()]
    if not words:
        return 1.0
    votes = Counter(language for word in words for language in languages_of(word))
    return max(votes.values(), default=0) / len(words)


def legacy_encoding(evidence: bytes, file_name: str) -> str:
    """The code page of lines that are not UTF-8. charset-normalizer proposes the code pages
    that read them without chaos; on a short sample it often ranks a wrong one first (Czech
    as Windows-1252), so the one whose words read true wins, then its ranking; on a tie the
    code page Excel writes most. Only code pages that read ASCII as ASCII qualify, since the
    file's ASCII lines are read with it too."""
    # A second look at the single-byte code pages alone: on a short sample charset-normalizer
    # stops at the first multi-byte one that decodes (Spanish "niño" as Big5 "ni隳").
    candidates = [
        match
        for matches in (
            charset_normalizer.from_bytes(evidence),
            charset_normalizer.from_bytes(evidence, cp_isolation=list(SINGLE_BYTE_CODE_PAGES)),
        )
        for match in matches
        if reads_ascii_as_ascii(match.encoding)
    ]
    if not candidates:
        raise CsvFormatError(
            f"Could not tell the text encoding of {file_name}: its non-ASCII bytes read as no "
            f"known encoding. Save it as UTF-8 (in Excel: CSV UTF-8) and upload it again."
        )
    truth = {id(match): share_in_one_language(str(match)) for match in candidates}
    most_true = max(truth.values())
    candidates = [match for match in candidates if truth[id(match)] == most_true]
    best = candidates[0]
    tied = {
        codec_name(name)
        for match in candidates
        if abs(match.chaos - best.chaos) < 0.01 and abs(match.coherence - best.coherence) < 0.01
        for name in match.could_be_from_charset
    }
    preferred = next((name for name in PREFERRED_CODE_PAGES if name in tied), None)
    return preferred or codec_name(best.encoding)


def detect_encoding(path: Path, file_name: str = "") -> str:
    """The encoding of the whole file, not of its first megabyte: a byte order mark, else
    UTF-16 without one, else UTF-8 if any non-ASCII line is UTF-8 (lines that are not are then
    rejected one by one, never mangled), else the code page of its non-ASCII lines. A file
    of ASCII alone is read as UTF-8, which it is. `file_name` (the uploaded name) is the one
    errors give."""
    file_name = file_name or path.name
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
        for signature, kind in NOT_CSV_SIGNATURES:
            if head.startswith(signature):
                raise CsvFormatError(
                    f"{file_name} is {kind}, not a CSV file: save it from Excel as "
                    f"'CSV UTF-8 (comma delimited)' and upload that"
                )
        declared = encoding_from_bom(head) or utf16_without_bom(head)
        if declared:
            return declared
        handle.seek(0)
        lines = scan_non_ascii_lines(handle)
    if lines.utf8 or not lines.other:
        return "utf-8"
    return legacy_encoding(bytes(lines.evidence), file_name)


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


def detect_layout(path: Path, file_name: str = "") -> CsvLayout:
    """The file's encoding, delimiter and header; errors name it `file_name` (the uploaded
    name: the stored file's is not the merchandiser's)."""
    file_name = file_name or path.name
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if not sample.strip():
        raise CsvFormatError(f"{file_name} is empty: expected a header row and data rows")
    encoding = detect_encoding(path, file_name)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample)
    first_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    delimiter = detect_delimiter(first_line)
    header = next(csv.reader(io.StringIO(first_line), delimiter=delimiter), [])
    header = tuple(name.strip().lstrip("\ufeff") for name in header)
    if not any(header):
        raise CsvFormatError(f"{file_name} has no header row")
    duplicates = sorted({name for name in header if header.count(name) > 1 and name})
    if duplicates:
        raise CsvFormatError(f"{file_name} repeats column(s) {', '.join(duplicates)}")
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
