"""The CSV reader, fuzzed: whatever a spreadsheet writes, we read the same cells back."""

import csv
import io
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.csv_import import detect_layout, iter_rows, parse_mapping, spreadsheet_safe

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
