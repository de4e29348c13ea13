"""The CSV reader, fuzzed: whatever a spreadsheet writes, we read the same cells back; and
files in the encodings stores export, read through the real import path."""

import csv
import io
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.csv_import import detect_layout, iter_rows, parse_mapping, spreadsheet_safe
from catalog.models import Product

cells = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffd")
    | st.sampled_from([",", ";", "\t", "|", '"', "\n", "\r", "é", "€", "=", " "]),
    max_size=30,
)
# Two columns at least: every import needs two, and one column has no delimiter to detect.
tables = st.integers(min_value=2, max_value=5).flatmap(
    lambda width: st.lists(st.lists(cells, min_size=width, max_size=width), max_size=15)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=tables,
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
    data=st.data(),
)
def test_any_table_a_spreadsheet_writes_reads_back_cell_for_cell(
    tmp_path_factory, rows, delimiter, encoding, data
):
    width = len(rows[0]) if rows else data.draw(st.integers(2, 5))
    header = [f"column_{i}" for i in range(width)]
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter).writerows([header, *rows])
    path = tmp_path_factory.mktemp("fuzz") / "file.csv"
    path.write_text(text.getvalue(), encoding=encoding, newline="")

    layout = detect_layout(path)
    assert layout.header == tuple(header) and layout.delimiter == delimiter
    expected = [[cell.strip() for cell in row] for row in rows if any(cell.strip() for cell in row)]
    read = [[row[column] for column in header] for _, row in iter_rows(path, layout)]
    # The csv module folds \r\n inside quoted cells to \n on some paths: compare like for like.
    assert [[c.replace("\r\n", "\n") for c in r] for r in read] == [
        [c.replace("\r\n", "\n") for c in r] for r in expected
    ]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_the_reader(tmp_path_factory, content):
    from catalog.csv_import import CsvFormatError

    path = tmp_path_factory.mktemp("bytes") / "file.csv"
    path.write_bytes(content)
    try:
        layout = detect_layout(path)
    except CsvFormatError:
        return
    for line, row in iter_rows(path, layout):
        assert line >= 2 and set(row) == set(layout.header)


def test_a_200_mb_file_streams_in_constant_memory(tmp_path: Path):
    path = tmp_path / "big.csv"
    row = "SKU-{:08d},A plain cotton shirt with a long title for padding,Tops,Navy,19.99,true\n"
    with path.open("w") as handle:
        handle.write("sku,title,category,colour,price,in_stock\n")
        block = "".join(row.format(i) for i in range(10_000))
        while handle.tell() < 200 * 1024 * 1024:
            handle.write(block)
    assert path.stat().st_size >= 200 * 1024 * 1024
    tracemalloc.start()
    count = sum(1 for _ in iter_rows(path, detect_layout(path)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count > 2_000_000
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while reading 200 MB"


def test_mapping_text_and_spreadsheet_safety():
    assert parse_mapping("sku=cod, image = file\ncategory=fam") == {
        "sku": "cod",
        "image": "file",
        "category": "fam",
    }
    assert spreadsheet_safe("=1+1") == "'=1+1" and spreadsheet_safe("a=b") == "a=b"


# Real exports: product titles and categories of Polish, Czech and Japanese stores.
POLISH = [
    ("PL-01", "Żółta bluzka z kołnierzem", "Bluzki"),
    ("PL-02", "Spódnica plisowana do kolan", "Spódnice"),
    ("PL-03", "Wełniany płaszcz dwurzędowy", "Płaszcze"),
    ("PL-04", "Skórzane półbuty na obcasie", "Obuwie"),
    ("PL-05", "Bawełniana koszula w kratę", "Koszule"),
    ("PL-06", "Dżinsowe spodnie z wysokim stanem", "Spodnie"),
    ("PL-07", "Pikowana kurtka zimowa, beżowa", "Kurtki"),
    ("PL-08", "Torebka ze skóry naturalnej", "Dodatki"),
]
CZECH = [
    ("CZ-01", "Česká košile s dlouhým rukávem", "Košile"),
    ("CZ-02", "Kožená bunda s límečkem", "Bundy"),
    ("CZ-03", "Bavlněné tričko s potiskem", "Trička"),
    ("CZ-04", "Letní šaty ze lnu, růžové", "Šaty"),
    ("CZ-05", "Zimní kabát s kapucí", "Kabáty"),
    ("CZ-06", "Džínové kalhoty rovného střihu", "Kalhoty"),
    ("CZ-07", "Hedvábný šátek, červený", "Doplňky"),
    ("CZ-08", "Kožené boty na podpatku", "Obuv"),
]
JAPANESE = [
    ("JP-01", "紺色のウールブレザー", "アウター"),
    ("JP-02", "白い綿のシャツ", "トップス"),
    ("JP-03", "黒いスキニーデニム", "ボトムス"),
    ("JP-04", "革のショルダーバッグ", "バッグ"),
    ("JP-05", "花柄のワンピース", "ワンピース"),
]
FRENCH = [("FR-01", "Crème brûlée blouse", "Hauts"), ("FR-02", "Veste côtelée", "Vestes")]


def csv_text(rows: list[tuple[str, str, str]], header: bool = True) -> str:
    return ("sku,title,category\n" if header else "") + "".join(
        f'{sku},"{title}",{category}\n' for sku, title, category in rows
    )


def imported(rows: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    skus = [sku for sku, _, _ in rows]
    return {
        (product.sku, product.title, product.category.name)
        for product in Product.objects.filter(sku__in=skus).select_related("category")
    }


# An ASCII first megabyte (more than the head the layout is read from), then the rest.
ASCII_MEGABYTE = "".join(f"P{i},Plain shirt number {i:06d},Tops\n" for i in range(40_000))


@pytest.mark.parametrize(
    ("rows", "encoding", "detected"),
    [
        (POLISH, "cp1250", "cp1250"),
        (CZECH, "cp1250", "cp1250"),
        (POLISH + CZECH, "utf-8", "utf-8"),
        (FRENCH, "cp1252", "cp1252"),
        (FRENCH, "latin-1", "cp1252"),  # the same bytes for these letters
        (JAPANESE, "shift_jis", "cp932"),  # Windows' Shift-JIS, a superset
        (POLISH + JAPANESE, "utf-16-le", "utf-16-le"),  # no byte order mark
        (CZECH, "utf-16-be", "utf-16-be"),
    ],
)
def test_exports_in_each_encoding_import_letter_for_letter(run_import, rows, encoding, detected):
    job = run_import(csv_text(rows).encode(encoding))
    assert job.status == "succeeded", job.message
    assert (job.encoding, job.created, job.rejected) == (detected, len(rows), 0)
    assert imported(rows) == set(rows)


@pytest.mark.parametrize(
    ("rows", "encoding", "detected"),
    [
        (FRENCH, "utf-8", "utf-8"),
        (FRENCH, "cp1252", "cp1252"),
        (POLISH, "cp1250", "cp1250"),
        (JAPANESE, "shift_jis", "cp932"),
    ],
)
def test_a_late_non_ascii_row_after_an_ascii_first_megabyte_decodes(
    run_import, rows, encoding, detected
):
    head = ("sku,title,category\n" + ASCII_MEGABYTE).encode("ascii")
    assert len(head) > 1 << 20
    job = run_import(head + csv_text(rows, header=False).encode(encoding))
    assert job.status == "succeeded", job.message
    assert (job.encoding, job.rejected) == (detected, 0)
    assert job.created == 40_000 + len(rows)
    assert imported(rows) == set(rows)


def test_a_file_mixing_encodings_rejects_the_odd_rows_and_never_mangles_them(run_import):
    # Mostly Windows-1250, but one row pasted in as UTF-8: read as Windows-1250 it would
    # become "Ĺ»ĂłĹ‚ta" without a word said. The file is read as UTF-8 instead, and the rows
    # that are not UTF-8 are rejected, each naming why.
    late_utf8 = [("U-01", "Żółta bluzka", "Bluzki")]
    content = (
        csv_text(POLISH).encode("cp1250")
        + ASCII_MEGABYTE.encode("ascii")
        + csv_text(late_utf8, header=False).encode("utf-8")
    )
    job = run_import(content)
    assert job.status == "succeeded", job.message
    assert job.encoding == "utf-8"
    assert imported(late_utf8) == set(late_utf8)
    rejections = {r.line: r.reason for r in job.rejections.all()}
    assert set(rejections) == set(range(2, 2 + len(POLISH)))
    assert set(rejections.values()) == {"contains bytes that are not valid utf-8"}
    assert not Product.objects.filter(sku__startswith="PL-").exists()


def test_a_workbook_or_unreadable_bytes_fail_the_file_saying_what_to_do(run_import, tmp_path):
    import zipfile

    workbook = tmp_path / "products.xlsx"
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    job = run_import(workbook.read_bytes(), name="products.csv")
    assert job.status == "failed"
    assert "is an Excel workbook (.xlsx) or another zip archive, not a CSV file" in job.message

    garbage = bytes(range(0x80, 0x100)) * 40  # no code page reads these as text
    job = run_import(b"sku,title,category\nA1," + garbage + b",Tops\n")
    assert job.status == "failed"
    assert "Could not tell the text encoding of upload.csv" in job.message
    assert "Save it as UTF-8" in job.message
    assert Product.objects.count() == 0
