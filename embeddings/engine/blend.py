"""How much the outfits' evidence weighs beside the content score, learned from a training's
held-out blanks: a conditional logit (a softmax over each question's answers, as discrete
choice models and listwise learning to rank fit it) over the content score and each of
cooccurrence.SIGNALS. Served as content + Σ weight · signal, each weight the logit's over the
content score's. A grid of weights chosen by accuracy on one blank per held-out outfit did
this before: it could not weigh the exposure signals and chose unsteadily (docs/model.md,
"A learned blend")."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .cooccurrence import SIGNALS, CoOccurrence
from .evaluate import FitbTask, Scorer

logger = logging.getLogger(__name__)

RIDGE = 1e-3  # on standardised features: keeps every weight finite where a signal separates
NEWTON_STEPS = 100


@dataclass(frozen=True)
class BlankSignals:
    """The outfits' signals of each question's answers, computed once for every scorer whose
    blend is fitted on these questions (the walk is the costly part: ~10 s for Mango's
    9,666 blanks, the content score 0.3 s)."""

    tasks: list[FitbTask]  # the questions kept: all of the first's size
    signals: np.ndarray  # (questions, answers, len(SIGNALS))


def blank_signals(
    evidence: CoOccurrence, row_of: Mapping[str, int], tasks: Sequence[FitbTask]
) -> BlankSignals:
    """Each of SIGNALS for the answers of `tasks` whose items `row_of` knows and whose size is
    the first's."""
    kept = [
        task
        for task in tasks
        if len(task.answers) == len(tasks[0].answers)
        and all(item in row_of for item in [*task.question, *task.answers])
    ]
    signals = [
        evidence.signals(
            [row_of[sku] for sku in task.question], [row_of[sku] for sku in task.answers]
        ).T
        for task in kept
    ]
    if not signals:
        return BlankSignals([], np.zeros((0, 0, len(SIGNALS))))
    return BlankSignals(kept, np.stack(signals).astype(np.float64))


def blend_features(content: Scorer, blanks: BlankSignals) -> tuple[np.ndarray, np.ndarray]:
    """(questions, answers, 1 + len(SIGNALS)): the content score, then each signal; and each
    question's right answer."""
    if not blanks.tasks:
        return np.zeros((0, 0, 1 + len(SIGNALS))), np.zeros(0, dtype=np.int64)
    scores = np.stack(
        [np.asarray(content(task.question, task.answers), np.float64) for task in blanks.tasks]
    )
    return (
        np.concatenate([scores[:, :, None], blanks.signals], axis=2),
        np.array([task.correct for task in blanks.tasks]),
    )


def conditional_logit(features: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The weights w maximising the mean log-probability of each right answer under
    softmax(features @ w) over its question's answers, less RIDGE / 2 · |w|² on standardised
    features (Newton's method: the objective is concave)."""
    scale = features.reshape(-1, features.shape[2]).std(axis=0) + 1e-9
    z = features / scale
    w = np.zeros(features.shape[2])
    for _ in range(NEWTON_STEPS):
        logits = z @ w
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        expected = np.einsum("qa,qaf->qf", p, z)
        gradient = (z[np.arange(len(z)), right] - expected).mean(axis=0) - RIDGE * w
        centred = z - expected[:, None, :]
        hessian = np.einsum("qa,qaf,qag->fg", p, centred, centred) / len(z)
        step = np.linalg.solve(hessian + RIDGE * np.eye(len(w)), gradient)
        w += step
        if np.abs(step).max() < 1e-9:
            break
    else:
        logger.warning("the blend's logit did not converge in %d steps", NEWTON_STEPS)
    return w / scale


def fitted_blend(features: np.ndarray, right: np.ndarray) -> tuple[float, ...]:
    """The weights of SIGNALS over the content score's (0, content alone, where there are no
    questions or the fit is not finite). Where content says nothing the logit's content
    weight is near 0 or below: it is floored at a hundredth of the largest, so the outfits'
    evidence decides, each weight at most 100 times the content's. The direct signal's weight
    is at least 0: a product page's row and a refresh read it as a bonus that only raises
    (refresh.py, index.ranked_with_partners)."""
    if not len(right):
        return (0.0,) * len(SIGNALS)
    w = conditional_logit(features, right)
    if not np.isfinite(w).all():
        logger.warning("the blend's fit is not finite: the version serves content alone")
        return (0.0,) * len(SIGNALS)
    floor = 0.01 * np.abs(w).max()
    if w[0] < floor:
        logger.warning(
            "the held-out blanks give the content score a weight of %.3g: floored at %.3g",
            w[0],
            floor,
        )
    weights = w[1:] / max(w[0], floor, 1e-12)
    weights[0] = max(weights[0], 0.0)
    return tuple(float(x) for x in weights)
