"""A refreshed version's arrays as rows over a linked file: read exactly as the whole array."""

import numpy as np
import pytest

from embeddings import layered as layered_module
from embeddings.layered import Layer, LayeredRows, load_rows, save_rows


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
