"""Stopping hopeless trials from their learning curves (numpy and scipy only).

A curve is the validation objective of each epoch so far, a list of floats. A rule
looks at a running trial's curve, the curves of the finished trials and the best
finished score (the incumbent), and says whether to stop the trial now:
`rule.should_stop(curve, finished_curves, incumbent, direction=..., name=...)`
returns None to go on, or a short reason to stop. Rules work internally with
values turned higher-is-better (`direction="min"` flips them) and write their
reasons in the objective's own units.

Three rules:

- `CurveRule`: extrapolates the curve to the epoch the trial would end at and stops
  it when even an optimistic prediction is below the incumbent.
- `MedianRule`: Vizier's median stopping rule.
- `HalvingRule`: asynchronous successive halving (ASHA) used as a stopping rule.

`replay` runs a rule on recorded complete curves, one trial after another, to
measure the epochs it saves and the score it loses.
"""

from __future__ import annotations

import abc
import math
import warnings
from collections.abc import Sequence

import numpy as np


def _sign(direction: str) -> float:
    if direction not in ("max", "min"):
        raise ValueError(f"direction must be 'max' or 'min'. Received: direction={direction!r}")
    return 1.0 if direction == "max" else -1.0


def _oriented(curve: Sequence, sign: float) -> np.ndarray:
    """The curve higher-is-better; missing or non-finite values become -inf."""
    values = np.array([np.nan if v is None else float(v) for v in curve], dtype=float) * sign
    return np.where(np.isfinite(values), values, -np.inf)


def _best(values: np.ndarray) -> float:
    """The best of higher-is-better values (-inf for none)."""
    return float(np.max(values)) if len(values) else -math.inf


def _bests_up_to(finished: list[np.ndarray], epoch: int) -> list[float]:
    """Each finished curve's best value up to `epoch`, of those that ran that long."""
    bests = [_best(c[:epoch]) for c in finished if len(c) >= epoch]
    return [b for b in bests if math.isfinite(b)]


class StoppingRule(abc.ABC):
    """Decides from learning curves whether a running trial should stop.

    Subclasses implement `_check` on higher-is-better values.

    Args:
        min_epochs: no trial is stopped before it has run this many epochs.
    """

    name = "none"

    def __init__(self, min_epochs: int = 3):
        self.min_epochs = min_epochs

    def should_stop(
        self,
        curve: Sequence[float],
        finished_curves: Sequence[Sequence[float]],
        incumbent: float | None,
        *,
        direction: str = "max",
        name: str = "score",
    ) -> str | None:
        """None to go on training, or why the trial should stop now.

        Args:
            curve: the running trial's objective per epoch so far.
            finished_curves: the curves of the finished trials (stopped ones included,
                with the epochs they ran).
            incumbent: the best score of a finished trial, or None before any.
            direction: "max" or "min", the objective's direction.
            name: the objective's name, for the reason.
        """
        sign = _sign(direction)
        if len(curve) < max(self.min_epochs, 1):
            return None
        best = None if incumbent is None or not math.isfinite(incumbent) else sign * incumbent
        finished = [_oriented(c, sign) for c in finished_curves if len(c)]

        def show(value: float) -> str:
            return f"{sign * value:.4g}"

        return self._check(
            _oriented(curve, sign), finished, best, name, show, "<" if sign > 0 else ">"
        )

    @abc.abstractmethod
    def _check(self, y, finished, best, name, show, worse) -> str | None:
        """The rule on higher-is-better values: `y` the curve and `finished` the finished
        curves (arrays, -inf where not finite), `best` the incumbent or None; `show`
        writes a value in the objective's units, `worse` is its "<" or ">"."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def pow3(t, c, a, alpha):
    """The learning-curve model y = c - a * t**(-alpha) (rising to `c` when a > 0)."""
    return c - a * np.power(t, -alpha)


class CurveRule(StoppingRule):
    """Stops a trial whose extrapolated learning curve cannot reach the incumbent.

    The curve so far (epochs t = 1..n) is fitted with `pow3`, y = c - a * t**(-alpha),
    with a >= 0 and 0.01 <= alpha <= 5 (`scipy.optimize.curve_fit`, trust-region
    reflective); if that fit fails, with y = c + b * log(t), b >= 0 (least squares).
    Both only rise or stay flat, so they err on the side of going on. The fit
    predicts the value at the horizon epoch H: the fixed `epochs` when set; else the
    median length of the finished curves, at least n + `patience` (the least an
    early-stopped trial still runs) and at most `max_epochs`.

    Its uncertainty is the larger of the fit's residual standard deviation (over
    n - 3 degrees of freedom, 0 while n <= 3) and the epoch-to-epoch noise of the last
    6 epochs (median |second difference| / (0.6745 * sqrt(6)), the normal-noise
    estimate; a steady rise does not count, a sharp bend does), widened by sqrt(H / n)
    for extrapolating. The trial
    stops when its best value so far and its optimistic prediction,
    prediction + k * uncertainty + margin * |incumbent|, are both below the incumbent.

    Args:
        min_epochs: epochs before the first check.
        k: how many uncertainties the optimistic prediction adds.
        margin: a fraction of |incumbent| added to the optimistic prediction.
        epochs: the trials' fixed number of epochs, or None with early stopping.
        patience: the early-stopping patience.
        max_epochs: most epochs with early stopping.
    """

    name = "curve"

    def __init__(
        self,
        min_epochs: int = 3,
        k: float = 2.0,
        margin: float = 0.01,
        epochs: int | None = None,
        patience: int = 5,
        max_epochs: int = 200,
    ):
        super().__init__(min_epochs)
        self.k = k
        self.margin = margin
        self.epochs = epochs
        self.patience = patience
        self.max_epochs = max_epochs

    def horizon(self, n: int, finished_lengths: Sequence[int]) -> int:
        """The epoch whose value is predicted, when `n` epochs have run."""
        if self.epochs:
            return max(int(self.epochs), n)
        typical = float(np.median(finished_lengths)) if len(finished_lengths) else 0.0
        return max(min(max(int(round(typical)), n + self.patience), self.max_epochs), n)

    def predict(self, y: np.ndarray, horizon: int) -> tuple[float, float]:
        """(prediction at `horizon`, its uncertainty) from the finite values of `y`."""
        t = np.arange(1, len(y) + 1, dtype=float)
        keep = np.isfinite(y)
        t, y = t[keep], y[keep]
        fitted = _fit_pow3(t, y)
        if fitted is not None:
            model, n_params = (lambda x: pow3(x, *fitted)), 3
        else:
            slope, intercept = np.polyfit(np.log(t), y, 1)
            slope = max(float(slope), 0.0)
            intercept = float(np.mean(y - slope * np.log(t)))
            model, n_params = (lambda x: intercept + slope * np.log(x)), 2
        residuals = y - model(t)
        dof = len(y) - n_params
        spread = math.sqrt(float(np.sum(residuals**2)) / dof) if dof > 0 else 0.0
        noise = float(np.median(np.abs(np.diff(y[-6:], 2)))) / (0.6745 * math.sqrt(6))
        scale = math.sqrt(max(horizon, len(y)) / len(y))
        return float(model(float(horizon))), max(spread, noise) * scale

    def _check(self, y, finished, best, name, show, worse):
        n = len(y)
        if best is None or np.sum(np.isfinite(y)) < 3:
            return None
        if _best(y) >= best:
            return None
        horizon = self.horizon(n, [len(c) for c in finished])
        prediction, spread = self.predict(y, horizon)
        if not math.isfinite(prediction):
            return None
        if prediction + self.k * spread + self.margin * abs(best) >= best:
            return None
        return (
            f"predicted final {name} {show(prediction)} +- {spread:.2g} (epoch {horizon}) "
            f"{worse} best {show(best)} at epoch {n}"
        )


def _fit_pow3(t: np.ndarray, y: np.ndarray):
    """pow3's (c, a, alpha) least-squares fit to (t, y), or None when it fails."""
    from scipy.optimize import OptimizeWarning, curve_fit

    rise = max(float(y[-1] - y[0]), 1e-3)
    start = [float(y[-1]) + 0.5 * rise, rise, 0.5]
    bounds = ([-np.inf, 0.0, 0.01], [np.inf, np.inf, 5.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(pow3, t, y, p0=start, bounds=bounds, max_nfev=2000)
    except (RuntimeError, ValueError):
        return None
    return params if np.all(np.isfinite(params)) else None


class MedianRule(StoppingRule):
    """Vizier's median stopping rule.

    At epoch t the trial stops if its best value so far is below the median, over the
    finished trials that ran at least t epochs, of their best value up to epoch t.

    Args:
        min_epochs: epochs before the first check.
        min_history: fewest finished curves reaching epoch t for a check.
    """

    name = "median"

    def __init__(self, min_epochs: int = 3, min_history: int = 2):
        super().__init__(min_epochs)
        self.min_history = min_history

    def _check(self, y, finished, best, name, show, worse):
        t = len(y)
        others = _bests_up_to(finished, t)
        if len(others) < self.min_history:
            return None
        median, mine = float(np.median(others)), _best(y)
        if mine >= median:
            return None
        return (
            f"best {name} {show(mine)} {worse} median {show(median)} of {len(others)} "
            f"finished trials at epoch {t}"
        )


class HalvingRule(StoppingRule):
    """Asynchronous successive halving as a stopping rule.

    Rungs are at epochs min_epochs * eta**k (2, 6, 18, 54, ... by default). When the
    trial reaches a rung it stops unless its best value up to the rung is in the top
    1/eta of the finished trials' best values up to that rung, that is at or above
    their (1 - 1/eta) quantile (linear interpolation, as Ray Tune's ASHA). Between
    rungs it goes on.

    Args:
        eta: the reduction factor.
        min_epochs: the first rung.
        min_history: fewest finished curves reaching a rung for a check there.
    """

    name = "halving"

    def __init__(self, eta: int = 3, min_epochs: int = 2, min_history: int = 2):
        super().__init__(min_epochs)
        self.eta = eta
        self.min_history = min_history

    def is_rung(self, epoch: int) -> bool:
        rung = max(self.min_epochs, 1)
        while rung < epoch:
            rung *= self.eta
        return rung == epoch

    def _check(self, y, finished, best, name, show, worse):
        t = len(y)
        if not self.is_rung(t):
            return None
        others = _bests_up_to(finished, t)
        if len(others) < self.min_history:
            return None
        cutoff, mine = float(np.quantile(others, 1 - 1 / self.eta)), _best(y)
        if mine >= cutoff:
            return None
        return (
            f"best {name} {show(mine)} {worse} {show(cutoff)}, the top 1/{self.eta} cutoff "
            f"of {len(others)} finished trials at rung epoch {t}"
        )


RULES = {"curve": CurveRule, "median": MedianRule, "halving": HalvingRule}


def make_rule(
    name: str | None, *, epochs: int | None = None, patience: int = 5, max_epochs: int = 200
) -> StoppingRule | None:
    """The stopping rule called `name` with its defaults, or None for "none" or None.

    Args:
        name: "curve", "median", "halving", "none" or None.
        epochs, patience, max_epochs: the trials' training settings (the curve rule's
            horizon uses them).

    Raises:
        ValueError: the name is not one of these.
    """
    if name is None or name == "none":
        return None
    if name not in RULES:
        choices = ", ".join(repr(n) for n in RULES)
        raise ValueError(
            f"Unknown stopping rule. Choose one of {choices}, 'none' or None. "
            f"Received: stopping={name!r}"
        )
    if name == "curve":
        return CurveRule(epochs=epochs, patience=patience, max_epochs=max_epochs)
    return RULES[name]()


def replay(
    curves: Sequence[Sequence[float]],
    rule: StoppingRule | None,
    direction: str = "max",
    order: Sequence[int] | None = None,
) -> dict:
    """Simulate `rule` on complete recorded curves run one after another.

    Each trial in `order` (default: as given) is checked after each of its epochs
    against the trials before it; a stopped trial keeps only the epochs it ran, both
    as history for the next and for its score. A trial's score is the best value of
    its (possibly cut) curve, as early stopping with restored best weights keeps.

    Args:
        curves: the objective per epoch of each trial, run to its end.
        rule: the rule, or None to stop nothing.
        direction: "max" or "min".
        order: the indices of `curves` in the order they run.

    Returns:
        {"trials", "stopped" (how many), "stopped_at" (per curve as given: the epoch it
        stopped at, or None), "epochs" (run with the rule), "epochs_full" (all to the
        end), "saved" (1 - epochs / epochs_full), "best" (the best score with the
        rule), "best_full" (without), "regret" (how much worse best is than best_full,
        >= 0)}.
    """
    sign = _sign(direction)
    order = list(range(len(curves))) if order is None else list(order)
    finished: list[list[float]] = []
    stopped_at: list[int | None] = [None] * len(curves)
    incumbent = None  # in the objective's units, as the rule takes it
    for index in order:
        curve = list(curves[index])
        for t in range(1, len(curve)):
            if rule is not None and rule.should_stop(
                curve[:t], finished, incumbent, direction=direction
            ):
                curve, stopped_at[index] = curve[:t], t
                break
        finished.append(curve)
        score = _best(_oriented(curve, sign))
        if math.isfinite(score) and (incumbent is None or score > sign * incumbent):
            incumbent = sign * score
    ran = [len(c) for c in finished]
    full = [len(curves[i]) for i in order]
    best = max((_best(_oriented(c, sign)) for c in finished), default=None)
    best_full = max((_best(_oriented(curves[i], sign)) for i in order), default=None)
    return {
        "trials": len(order),
        "stopped": sum(s is not None for s in stopped_at),
        "stopped_at": stopped_at,
        "epochs": sum(ran),
        "epochs_full": sum(full),
        "saved": 1 - sum(ran) / sum(full) if sum(full) else 0.0,
        "best": None if best is None else sign * best,
        "best_full": None if best_full is None else sign * best_full,
        "regret": None if best is None else best_full - best,
    }
