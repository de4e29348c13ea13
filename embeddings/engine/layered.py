"""A model version's catalog-sized arrays (item vectors, computed neighbours and their scores)
as a refresh saves them: the file of the array it was refreshed from, hard-linked, and beside
it only the rows that differ (replaced or added). A refresh then writes, and every process
hashes, what changed instead of the whole catalog (a 1M catalog's three arrays: 1.7 GB), and
web processes keep mapping the file they already hold in the page cache. Past LAYERED_UP_TO
of an array's rows the array is written whole again. numpy only."""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np

ROWS_SUFFIX = ".rows.npy"  # beside item_vectors.npy: item_vectors.npy.rows.npy
OVERLAY_SUFFIX = ".overlay.npy"
# An array saved as its base file and the rows that differ while they are at most this share
# of its rows; past it, whole. (1,000 newcomers entered 7% of a 1M catalog's lists on the
# freshness benchmark, 29% on refresh_cost's, whose lists are approximate. The base's
# replaced rows stay mapped unused.)
LAYERED_UP_TO = 0.5


@dataclass(frozen=True)
class Layer:
    """Where an array's rows come from: `base`, a whole array's file, but the `rows`
    (ascending) that differ from it, replaced or added."""

    base: Path
    rows: np.ndarray

    def with_rows(self, rows: "np.ndarray | Sequence[int]") -> "Layer":
        """This layer with `rows` differing too."""
        return Layer(self.base, np.union1d(self.rows, np.asarray(rows, dtype=np.int64)))


class LayeredRows:
    """A read-only array: `base`'s rows, but those in `rows` (ascending) replaced, or added
    after the base's last, by `overlay`'s (one each, in order). Indexed by rows as an ndarray
    is (a row, a slice or an array of rows, then the rest of a tuple: `table[row, slot, :8]`);
    np.asarray() gives the whole array."""

    def __init__(
        self, base: "np.ndarray | LayeredRows", rows: np.ndarray, overlay: np.ndarray
    ) -> None:
        self.base, self.rows, self.overlay = base, np.asarray(rows, dtype=np.int64), overlay
        count = max(len(base), int(self.rows[-1]) + 1 if len(self.rows) else 0)
        self.shape: tuple[int, ...] = (count, *base.shape[1:])
        self.dtype: np.dtype = base.dtype
        self.ndim: int = base.ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):  # noqa: ANN001, ANN204  (numpy's own indexing keys)
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(rows, int | np.integer):
            row = int(rows) % self.shape[0]
            at = int(np.searchsorted(self.rows, row))
            if at < len(self.rows) and self.rows[at] == row:
                found = self.overlay[at]
            else:
                found = self.base[row]
            return found[rest] if rest else found
        if isinstance(rows, slice):
            rows = np.arange(self.shape[0])[rows]
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if rows.ndim == 1 and _basic(rest):  # only the elements asked for: `scores[rows, 2, 7]`
            return self._gathered(rows % self.shape[0], rest)
        found = self._gathered(rows.ravel() % self.shape[0]).reshape(rows.shape + self.shape[1:])
        return found[(slice(None),) * rows.ndim + rest] if rest else found

    def _gathered(self, rows: np.ndarray, rest: tuple = ()) -> np.ndarray:
        at = np.minimum(np.searchsorted(self.rows, rows), max(len(self.rows) - 1, 0))
        replaced = self.rows[at] == rows if len(self.rows) else np.zeros(len(rows), dtype=bool)
        return _merged(self.base, rows, ~replaced, self.overlay, at[replaced], rest)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:  # noqa: ANN001
        whole = np.empty(self.shape, dtype=self.dtype)
        whole[: len(self.base)] = self.base
        whole[self.rows] = self.overlay
        return whole if dtype is None else whole.astype(dtype)


class RowEdits:
    """A writable copy of `base` (an array, or LayeredRows) grown to `count` rows, the added
    ones `fill`, that copies a row of the base only when it is first written: a refresh edits
    the lists its newcomers enter without copying the million others. Indexed by rows first
    as an ndarray is (then ints and slices when read; anything numpy takes when written);
    layered() gives the result."""

    def __init__(self, base: "np.ndarray | LayeredRows", count: int, fill: float) -> None:
        self.base, self.fill = base, fill
        self.shape: tuple[int, ...] = (count, *base.shape[1:])
        self.dtype: np.dtype = base.dtype
        self.ndim: int = base.ndim
        self.place = np.full(count, -1, dtype=np.int64)  # a row's copy in `copies`; -1: none
        self.copies = np.empty((max(count - len(base), 1024), *self.shape[1:]), self.dtype)
        self.copied = 0
        self._own(np.arange(len(base), count))  # the added rows: written from the start

    def __len__(self) -> int:
        return self.shape[0]

    def _own(self, rows: np.ndarray) -> np.ndarray:
        """The places of `rows` in `copies`, copying the rows not copied yet."""
        fresh = rows[self.place[rows] < 0]
        if len(fresh) > 1 and not (np.diff(fresh) > 0).all():  # most come ascending, once each
            fresh = np.unique(fresh)
        if len(fresh):
            end = self.copied + len(fresh)
            if end > len(self.copies):
                grown = np.empty((max(end, 2 * len(self.copies)), *self.shape[1:]), self.dtype)
                grown[: self.copied] = self.copies[: self.copied]
                self.copies = grown
            old = fresh[fresh < len(self.base)]  # first: `fresh` ascends
            self.copies[self.copied : self.copied + len(old)] = self.base[old]
            self.copies[self.copied + len(old) : end] = self.fill
            self.place[fresh] = np.arange(self.copied, end)
            self.copied = end
        return self.place[rows]

    def __getitem__(self, key):  # noqa: ANN001, ANN204  (numpy's own indexing keys)
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(rows, int | np.integer):
            place = int(self.place[rows])
            found = self.copies[place] if place >= 0 else self.base[int(rows)]
            return found[rest] if rest else found
        rows = self._rows(rows)
        if rows.ndim != 1 or not _basic(rest):
            raise IndexError("RowEdits are read by a row or a list of rows, then ints and slices")
        places = self.place[rows]
        return _merged(self.base, rows, places < 0, self.copies, places[places >= 0], rest)

    def __setitem__(self, key, value) -> None:  # noqa: ANN001
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(rows, int | np.integer):
            places: int | np.ndarray = int(self._own(np.asarray([rows]))[0])
        else:
            rows = self._rows(rows)
            places = self._own(rows.ravel()).reshape(rows.shape)
        self.copies[(places, *rest)] = value  # after _own: it may have grown `copies`

    def _rows(self, rows) -> np.ndarray:  # noqa: ANN001
        if isinstance(rows, slice):
            return np.arange(self.shape[0])[rows]
        rows = np.asarray(rows)
        return np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64, copy=False)

    def layered(self) -> tuple[LayeredRows, np.ndarray]:
        """The edited array, and its rows that were written (or added): the others are the
        base's."""
        rows = np.flatnonzero(self.place >= 0)
        return LayeredRows(self.base, rows, self.copies[self.place[rows]]), rows


# A catalog-sized array as an index holds it: whole (an ndarray, memory-mapped or not) or a
# file with the rows that differ beside it; and as a refresh edits it.
Rows: TypeAlias = np.ndarray | LayeredRows
EditedRows: TypeAlias = np.ndarray | RowEdits


def _basic(rest: tuple) -> bool:
    return all(isinstance(part, int | np.integer | slice) for part in rest)


def _merged(
    base: "np.ndarray | LayeredRows",
    rows: np.ndarray,
    from_base: np.ndarray,
    copies: np.ndarray,
    places: np.ndarray,
    rest: tuple,
) -> np.ndarray:
    """`rows`' elements `rest`: from `base` where `from_base`, else from `copies` at `places`
    (in order)."""
    ours = np.asarray(copies[(places, *rest)])
    found = np.empty((len(rows), *ours.shape[1:]), dtype=copies.dtype)
    found[~from_base] = ours
    if from_base.any():
        found[from_base] = np.asarray(base[(rows[from_base], *rest)])
    return found


def rows_file(path: Path) -> Path:
    return path.with_name(path.name + ROWS_SUFFIX)


def overlay_file(path: Path) -> Path:
    return path.with_name(path.name + OVERLAY_SUFFIX)


def save_rows(path: Path, array: "np.ndarray | LayeredRows", layer: Layer | None) -> None:
    """`array` saved at `path`: as `layer`'s base file, linked, and the rows that differ from
    it beside, when the base still fits (same shape of a row, no more rows than `array`,
    every row after its last among the differing ones) and they are few (LAYERED_UP_TO);
    else whole."""
    if layer is not None and _layerable(array, layer):
        os.link(layer.base, path)
        np.save(rows_file(path), layer.rows)
        np.save(overlay_file(path), np.asarray(array[layer.rows]))
        return
    np.save(path, np.asarray(array))


def _layerable(array: "np.ndarray | LayeredRows", layer: Layer) -> bool:
    if not layer.base.is_file() or len(layer.rows) > LAYERED_UP_TO * len(array):
        return False
    base = np.load(layer.base, mmap_mode="r")  # its header only
    added = len(array) - len(base)
    return (
        base.shape[1:] == array.shape[1:]
        and base.dtype == array.dtype
        and added >= 0
        and int(np.count_nonzero(layer.rows >= len(base))) == added
    )


def load_rows(path: Path) -> tuple["np.ndarray | LayeredRows", Layer]:
    """The array saved at `path` (save_rows), memory-mapped, and its layer: what a refresh of
    it starts from."""
    base = np.asarray(np.load(path, mmap_mode="r"))
    if not rows_file(path).is_file():
        return base, Layer(path, np.empty(0, dtype=np.int64))
    rows = np.load(rows_file(path))
    overlay = np.asarray(np.load(overlay_file(path), mmap_mode="r"))
    return LayeredRows(base, rows, overlay), Layer(path, rows)
