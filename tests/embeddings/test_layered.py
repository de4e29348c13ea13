"""A refreshed version's arrays as rows over a linked file: read exactly as the whole array."""

import numpy as np
import pytest

from embeddings.engine import layered as layered_module
from embeddings.engine.layered import Layer, LayeredRows, RowEdits, load_rows, save_rows


@pytest.fixture
def layered():
    """A (12, 3, 4) table: 10 base rows, rows 2 and 7 replaced, rows 10 and 11 added."""
    rng = np.random.default_rng(5)
    whole = rng.integers(0, 100, size=(12, 3, 4)).astype(np.int32)
    base = whole[:10].copy()
    base[[2, 7]] = -5  # what the overlay replaces
    rows = np.array([2, 7, 10, 11])
    return LayeredRows(base, rows, whole[rows]), whole


@pytest.mark.parametrize(
    "key",
    [
        3,
        2,
        11,
        -1,
        np.int64(7),
        slice(None),
        slice(1, 11, 3),
        [7, 0, 11, 7],
        np.array([[2, 3], [10, 1]]),
        (7, 1, slice(None, 2)),
        (np.array([2, 4, 10]), 0),
        np.arange(12) % 3 == 0,
    ],
)
def test_rows_read_as_the_whole_array(layered, key):
    rows, whole = layered
    np.testing.assert_array_equal(rows[key], whole[key])


def test_the_whole_array_and_its_shape(layered):
    rows, whole = layered
    assert rows.shape == whole.shape and len(rows) == 12 and rows.dtype == whole.dtype
    np.testing.assert_array_equal(np.asarray(rows), whole)
    copy = np.zeros_like(whole)
    copy[:] = rows  # as a refresh copies a loaded version's table
    np.testing.assert_array_equal(copy, whole)


def test_saved_beside_its_base_and_loaded_back(tmp_path, layered, monkeypatch):
    monkeypatch.setattr(layered_module, "LAYERED_UP_TO", 0.5)  # 4 of 12 rows differ
    rows, whole = layered
    np.save(tmp_path / "base.npy", rows.base)
    base, layer = load_rows(tmp_path / "base.npy")
    assert isinstance(base, np.ndarray) and len(layer.rows) == 0
    save_rows(tmp_path / "table.npy", rows, Layer(tmp_path / "base.npy", rows.rows))
    loaded, layer = load_rows(tmp_path / "table.npy")
    assert isinstance(loaded, LayeredRows)
    np.testing.assert_array_equal(layer.rows, [2, 7, 10, 11])
    np.testing.assert_array_equal(np.asarray(loaded), whole)
    assert (tmp_path / "table.npy").stat().st_ino == (tmp_path / "base.npy").stat().st_ino


@pytest.mark.parametrize("base_kind", ["array", "layered"])
def test_row_edits_write_as_a_copy_and_leave_the_base_alone(layered, base_kind):
    rows, whole = layered
    base = rows if base_kind == "layered" else whole.copy()
    untouched = np.asarray(base).copy()
    edits = RowEdits(base, 15, fill=-1)  # 3 rows added
    edits.copies = edits.copies[:3]  # room for the added rows only: it must grow
    expected = np.concatenate([whole, np.full((3, 3, 4), -1, dtype=np.int32)])
    # Writes as a refresh makes them: whole rows, a row's slot, rows by their own slots.
    for key, value in [
        (np.array([3, 12]), 0),
        ((5, 1, slice(None, 2)), 77),
        ((np.array([0, 9, 3]), np.array([2, 0, 1]), slice(None, 3)), 55),
        ((np.array([13]), 2, slice(None)), np.array([[1, 2, 3, 4]])),
        ((np.int64(9), 0, 3), whole[9, 0, 3]),  # written, unchanged
    ]:
        edits[key] = value
        expected[key] = value
    for key in [4, 5, (9, 0), np.arange(15), (np.array([14, 2, 5, 7]), 1, slice(1, 3))]:
        np.testing.assert_array_equal(edits[key], expected[key])
    result, written = edits.layered()
    np.testing.assert_array_equal(np.asarray(result), expected)
    assert written.tolist() == [0, 3, 5, 9, 12, 13, 14]  # or added
    np.testing.assert_array_equal(np.asarray(base), untouched)
