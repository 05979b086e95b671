"""Temperature scaling of an ensemble's class probabilities, and how well they are calibrated.

One temperature T is fitted on the validation predictions of the members (Guo et
al., 2017): each member's log-probabilities are divided by T and passed through a
softmax, and the members' results are averaged with their weights,

    p(x) = sum_i w_i softmax(log p_i(x) / T),

with T minimising the negative log-likelihood (NLL) of the validation targets. T > 1
softens overconfident members, T < 1 sharpens underconfident ones. Since
softmax(log softmax(z) / T) = softmax(z / T), the final model applies T to the
members' logits. `calibrate` keeps T only when it lowers the validation NLL by more
than `MIN_GAIN` of it, differs from 1 by more than `MIN_CHANGE`, and keeps the
validation accuracy (T can move the argmax of a weighted sum of several members).

The expected calibration error (ECE) sorts the predictions into `BINS` equal-width
bins of confidence (the top probability) and averages |accuracy - confidence| over the
bins, each weighted by its share of the predictions. Numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from automl.engine.selection import EPSILON, nll

BINS = 15
# the temperatures searched: on a validation set with few or no errors the NLL keeps
# falling as T goes to 0, so T stays at or above 0.25 (logits times 4 at most; digits28
# trials fit 0.34 to 0.52, digits searches with one or two validation errors hit 0.05)
BOUNDS = (0.25, 20.0)
MIN_GAIN = 0.01  # the share of the validation NLL a temperature must save
MIN_CHANGE = 0.05  # how far from 1 (in |log T|) a temperature must be


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def combine(
    predictions: Sequence[np.ndarray], weights: Sequence[float], temperature: float = 1.0
) -> np.ndarray:
    """sum_i w_i softmax(log p_i / T): the members' probabilities at temperature T, weighted."""
    out = 0.0
    for p, w in zip(predictions, weights):
        logs = np.log(np.clip(np.asarray(p, np.float64), EPSILON, 1.0))
        out = out + w * softmax(logs / temperature)
    return out


def expected_calibration_error(
    probabilities: np.ndarray, targets: np.ndarray, bins: int = BINS
) -> float:
    """The ECE of class probabilities (samples, classes) on class indices `targets`."""
    probabilities = np.asarray(probabilities, np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(targets).reshape(-1)
    # bin b holds confidences in (b / bins, (b + 1) / bins]
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            ece += inside.mean() * gap
    return float(ece)


def fit_temperature(
    predictions: Sequence[np.ndarray], weights: Sequence[float], targets: np.ndarray
) -> float:
    """The temperature in `BOUNDS` that minimises the validation NLL of `combine`."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(targets).reshape(-1).astype(np.int64)

    def loss(log_t: float) -> float:
        return nll(combine(predictions, weights, float(np.exp(log_t))), labels)

    found = minimize_scalar(loss, bounds=np.log(BOUNDS), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


def _correct(probabilities: np.ndarray, labels: np.ndarray) -> int:
    return int(np.sum(probabilities.argmax(axis=1) == labels))


def calibrate(
    predictions: Sequence[np.ndarray], weights: Sequence[float], targets: np.ndarray
) -> dict:
    """Fit a temperature and measure the calibration before and after.

    Returns:
        {"temperature": T kept (1.0 when not worth it), "fitted_temperature",
        "nll_before", "nll_after", "ece_before", "ece_after"}, the "after" values at
        the temperature kept.
    """
    labels = np.asarray(targets).reshape(-1).astype(np.int64)
    before = combine(predictions, weights)
    fitted = fit_temperature(predictions, weights, labels)
    scaled = combine(predictions, weights, fitted)
    nll_before = nll(before, labels)
    worth = (
        nll_before - nll(scaled, labels) > MIN_GAIN * nll_before
        and abs(np.log(fitted)) > MIN_CHANGE
        and _correct(scaled, labels) >= _correct(before, labels)
    )
    kept = fitted if worth else 1.0
    after = combine(predictions, weights, kept)
    return {
        "temperature": kept,
        "fitted_temperature": fitted,
        "nll_before": nll_before,
        "nll_after": nll(after, labels),
        "ece_before": expected_calibration_error(before, labels),
        "ece_after": expected_calibration_error(after, labels),
    }
