"""Greedy forward selection of ensemble members (Caruana et al., 2004), numpy only.

Each candidate is given by its predictions on the validation data: class
probabilities (samples, classes) for classification, targets (samples, outputs) in
the units of the validation targets for regression. The selection starts from the
best single candidate by accuracy (or MSE; the earlier of equals, so the search's
best trial when the candidates come best first). Then, round after round, it adds
(with replacement) the candidate whose addition most improves the validation score
of the average of the chosen predictions, each counted as often as it was chosen;
once there are `size` distinct members, only they can be added again. It stops when
no addition improves the score, or after `max_rounds` additions.

The score of a classification ensemble is its accuracy, ties broken by its negative
log-likelihood (NLL): an addition that keeps the accuracy joins only if it lowers the
NLL by more than `NLL_TOLERANCE`. A regression ensemble is scored by its mean squared
error, which an addition must lower by more than `MSE_TOLERANCE` of itself. Ties
between candidates go to the earlier one, so the result depends on the inputs alone.

Example:
    >>> y = np.array([0, 1])
    >>> good = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> chosen = greedy_selection(y, [good, good[:, ::-1]], "classification", size=3)
    >>> chosen.members, chosen.counts
    ([0], [1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NLL_TOLERANCE = 1e-4  # nats per sample an addition that keeps the accuracy must save
MSE_TOLERANCE = 1e-4  # share of the mean squared error an addition must save
EPSILON = 1e-12  # probabilities are clipped to [EPSILON, 1] before their log


@dataclass(frozen=True)
class Score:
    """A validation score: accuracy and NLL (classification), or the MSE (regression)."""

    task: str
    value: float  # accuracy, or mean squared error
    nll: float = float("nan")  # classification only

    def better_than(self, other: Score) -> bool:
        """Whether this score improves on `other` by more than the tolerances."""
        if self.task == "classification":
            return self.value > other.value or (
                self.value == other.value and self.nll < other.nll - NLL_TOLERANCE
            )
        return self.value < other.value - MSE_TOLERANCE * other.value

    def key(self) -> tuple:
        """A sort key: lower is better."""
        if self.task == "classification":
            return (-self.value, self.nll)
        return (self.value,)


@dataclass(frozen=True)
class Selection:
    """The result of `greedy_selection`.

    Attributes:
        members: indices of the chosen candidates, in the order they joined.
        counts: how many times each member was chosen.
        score: the validation score of the weighted average.
        best_single: the validation score of the best single candidate.
    """

    members: list[int]
    counts: list[int]
    score: Score
    best_single: Score

    @property
    def weights(self) -> list[float]:
        """Each member's weight: its count over the total count."""
        total = sum(self.counts)
        return [c / total for c in self.counts]


def nll(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of the class indices `targets`."""
    picked = probabilities[np.arange(len(targets)), np.asarray(targets, dtype=np.int64)]
    return float(-np.mean(np.log(np.clip(picked, EPSILON, 1.0))))


def score(targets: np.ndarray, predictions: np.ndarray, task: str) -> Score:
    """The validation score of `predictions` of `targets` for `task`.

    Args:
        targets: class indices (samples,) for classification; targets (samples,) or
            (samples, outputs) for regression.
        predictions: class probabilities, or predicted targets.
        task: "classification" or "regression".
    """
    if task == "classification":
        labels = np.asarray(targets).reshape(-1).astype(np.int64)
        accuracy = float(np.mean(np.argmax(predictions, axis=1) == labels))
        return Score(task, accuracy, nll(predictions, labels))
    errors = np.asarray(predictions, np.float64) - np.asarray(targets, np.float64).reshape(
        predictions.shape
    )
    return Score(task, float(np.mean(errors**2)))


def greedy_selection(
    targets: np.ndarray,
    predictions: Sequence[np.ndarray],
    task: str,
    size: int,
    max_rounds: int = 25,
) -> Selection:
    """Choose ensemble members by greedy forward selection with replacement.

    Args:
        targets: the validation targets (class indices for classification).
        predictions: each candidate's validation predictions, best candidate first;
            all of the same shape, one row per target.
        task: "classification" or "regression".
        size: the most distinct members.
        max_rounds: the most additions after the first member.

    Returns:
        The chosen members, their counts and scores.

    Raises:
        ValueError: no candidates, a size below 1, or predictions of different shapes.
    """
    if not predictions or size < 1:
        raise ValueError(
            f"Need at least one candidate and size >= 1. "
            f"Received: {len(predictions)} candidates, size={size}."
        )
    stacked = [np.asarray(p, np.float64) for p in predictions]
    shapes = {p.shape for p in stacked}
    if len(shapes) != 1 or next(iter(shapes))[0] != len(targets):
        raise ValueError(
            f"Every candidate needs one prediction per target ({len(targets)}). "
            f"Received shapes: {sorted(shapes)}."
        )
    singles = [score(targets, p, task) for p in stacked]
    first = min(range(len(stacked)), key=lambda i: (singles[i].key()[0], i))
    counts = {first: 1}
    total = stacked[first].copy()
    current = singles[first]
    for _ in range(max_rounds):
        n = sum(counts.values()) + 1
        best, best_score = None, None
        for i, p in enumerate(stacked):
            if i not in counts and len(counts) >= size:
                continue
            trial = score(targets, (total + p) / n, task)
            if best_score is None or trial.key() < best_score.key():
                best, best_score = i, trial
        if best is None or not best_score.better_than(current):
            break
        counts[best] = counts.get(best, 0) + 1
        total += stacked[best]
        current = best_score
    members = list(counts)
    return Selection(members, [counts[i] for i in members], current, singles[first])
