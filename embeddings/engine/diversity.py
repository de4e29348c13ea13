"""Diverse rows of matches: maximal marginal relevance over the items' own vectors, so near
duplicates (the same top in three colours) do not fill a row. Pure numpy."""

from collections.abc import Sequence

import numpy as np

from .layered import Rows


def most_relevant_and_diverse(
    candidates: list[tuple[int, float]], vectors: np.ndarray, count: int, relevance: float
) -> list[tuple[int, float]]:
    """Maximal marginal relevance: pick, one at a time, the candidate (row, score) with the best
    relevance·score − (1 − relevance)·(its highest cosine with those already picked), so near
    duplicates (the same top in three colours) do not fill a row."""
    return most_relevant_and_diverse_rows([candidates], vectors, count, relevance)[0]


def most_relevant_and_diverse_rows(
    rows: list[list[tuple[int, float]]], vectors: Rows, count: int, relevance: float
) -> list[list[tuple[int, float]]]:
    """`most_relevant_and_diverse` for several rows (one per category) at once: the rows are
    padded into one array, so each pick is a few numpy calls for all of them, not for each."""
    picked = diverse_positions(rows, vectors, count, relevance)
    return [[row[p] for p in positions] for row, positions in zip(rows, picked, strict=True)]


def diverse_positions(
    rows: Sequence[Sequence[tuple[int, float]]], vectors: Rows, count: int, relevance: float
) -> list[list[int]]:
    """most_relevant_and_diverse_rows()'s picks as their positions in each row."""
    width = max(map(len, rows), default=0)
    lengths = np.asarray([len(candidates) for candidates in rows], dtype=np.int64)
    valid = np.arange(width) < lengths[:, np.newaxis]
    ids = np.zeros(valid.shape, dtype=np.int64)
    scores = np.zeros(valid.shape, dtype=np.float32)
    for i, candidates in enumerate(rows):
        if candidates:
            ids[i, : len(candidates)], scores[i, : len(candidates)] = zip(*candidates, strict=True)
    return diverse_picks(ids, scores, valid, vectors, count, relevance)


def diverse_picks(
    ids: np.ndarray,
    scores: np.ndarray,
    valid: np.ndarray,
    vectors: Rows,
    count: int,
    relevance: float,
) -> list[list[int]]:
    """diverse_positions() of rows given as arrays, (rows, width) each: the items' rows of
    `vectors`, their scores, and which of them may be picked (best first among those)."""
    if ids.shape[1] <= 1 or relevance >= 1:
        return [np.flatnonzero(row)[:count].tolist() for row in valid]
    relevant = np.where(valid, relevance * scores, -np.inf).astype(np.float32)
    embedded = vectors[ids]
    similarity = embedded @ embedded.transpose(0, 2, 1)  # (rows, width, width)
    every = np.arange(len(ids))
    redundancy = np.zeros(valid.shape, dtype=np.float32)  # highest cosine with those picked
    picks: list[np.ndarray] = []
    for step in range(min(count, ids.shape[1])):
        value = relevant - (1 - relevance) * redundancy
        if picks:
            value[every[:, np.newaxis], np.stack(picks, axis=1)] = -np.inf
        best = np.argmax(value, axis=1)
        picks.append(best)
        closest = similarity[every, best]
        redundancy = closest if step == 0 else np.maximum(redundancy, closest)
    available = valid.sum(axis=1).tolist()
    picked = np.stack(picks, axis=1).tolist() if picks else [[] for _ in available]
    return [row[:kept] for row, kept in zip(picked, available, strict=True)]
