"""A cost model for cost-aware acquisition: seconds per epoch predicted from an architecture.

Expected improvement per second (Snoek, Larochelle and Adams, "Practical Bayesian
Optimization of Machine Learning Algorithms", 2012) divides a candidate's expected
improvement by its predicted cost, so a time-limited search prefers a cheap
promising candidate to an expensive one that promises a little more. The cost here
is the measured seconds per epoch of the finished trials, learned as a linear
regression in log space on the space's `cost_features` (for layer graphs: log
parameters, multiply-adds and activations, `automl.search.cost`):

    log(seconds) = b + w . features

With fewer than `min_fit` timed trials the slope is fixed to 1 on the first
feature after the parameters (multiply-adds: time proportional to compute) and
only b is fitted; with more, w comes from ridge regression (penalty `ridge` on
standardised features), so the model can learn that this machine's time follows
the activations more than the compute. Costs are returned relative to the median
measured cost, so the acquisition values keep the scale of the scores.

The features come from a graph's shapes alone (no Keras): training time per epoch grows
with the multiply-adds of a forward pass and with the activations the backward pass
keeps, not with the parameter count alone: a 3x3 convolution on a 28x28 map costs
784 times its weights, a dense layer once.

The rest is the time arithmetic of a search, from the summaries of trained trials
(`summary.json`: seconds, epochs, epoch timings, build seconds, folds): what a new
trial needs to start (`seconds_to_start`), what the final model's builds and refit
will take (`final_seconds`, `refit_seconds`, `final_model_seconds`), and a proposal's
predicted cost relative to the finished trials (`relative_cost`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from automl.graph.architecture import ArchitectureGraph

# what an augment layer's bilinear resampling and contrast cost per output value, in
# multiply-adds (four gathered pixels, their weights, the contrast scale)
AUGMENT_OPS_PER_VALUE = 12


class CostModel:
    """Seconds per epoch of architectures, learned from timed ones.

    Args:
        min_fit: timed trials needed before every feature's weight is fitted.
        ridge: the ridge penalty on standardised features.
    """

    def __init__(self, min_fit: int = 5, ridge: float = 1.0):
        self.min_fit = min_fit
        self.ridge = ridge

    @classmethod
    def from_history(cls, space, history) -> CostModel | None:
        """The model fitted on the timed observations of `history` (`Observation.seconds`),
        with the space's `cost_features`; None when none is timed or the space has none."""
        timed = [o for o in history if o.seconds]
        if not timed or not hasattr(space, "cost_features"):
            return None
        return cls().fit([space.cost_features(o.arch) for o in timed], [o.seconds for o in timed])

    def fit(self, features: Sequence[np.ndarray], seconds: Sequence[float]) -> CostModel:
        """Fit on the features and measured seconds per epoch of finished trials (>= 1)."""
        x = np.asarray(features, dtype=float)
        y = np.log(np.maximum(np.asarray(seconds, dtype=float), 1e-6))
        self.reference_ = float(np.median(y))
        self.prior_ = len(y) < self.min_fit  # the slope is the prior's, not fitted
        if self.prior_:
            column = min(1, x.shape[1] - 1)
            self.weights_ = np.zeros(x.shape[1])
            self.weights_[column] = 1.0
            self.mean_, self.scale_ = np.zeros(x.shape[1]), np.ones(x.shape[1])
            self.bias_ = float(np.mean(y - x[:, column]))
            return self
        self.mean_ = x.mean(0)
        self.scale_ = np.where(x.std(0) > 1e-9, x.std(0), 1.0)
        z = (x - self.mean_) / self.scale_
        gram = z.T @ z + self.ridge * np.eye(z.shape[1])
        self.weights_ = np.linalg.solve(gram, z.T @ (y - y.mean()))
        self.bias_ = float(y.mean())
        return self

    def log_seconds(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Predicted log seconds per epoch."""
        z = (np.asarray(features, dtype=float) - self.mean_) / self.scale_
        return self.bias_ + z @ self.weights_

    def relative_cost(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Predicted seconds per epoch relative to the median finished trial's (1: as costly)."""
        return np.exp(self.log_seconds(features) - self.reference_)


def multiply_adds(graph: ArchitectureGraph) -> int:
    """Multiply-adds of one forward pass of one sample, approximately.

    A layer's weights are applied once per output position: for a node whose output
    is a feature map (H, W, C) that is its parameter count times H * W (exact for
    convolutions, close for batch normalisation), for a sequence (T, C) its parameter
    count times T, otherwise its parameter count. Text layers count their work: a bag
    one per token (L), an embedding one lookup per output value (T * units), an
    attention layer its projections and attention weights (4 T C^2 + 2 T^2 C). An
    augment layer, which acts in training only, counts its resampling
    (`AUGMENT_OPS_PER_VALUE` per output value): little beside the convolutions after it.
    """
    total = 0
    for node_id in graph.order:
        node = graph.node(node_id)
        shape = graph.shape(node_id)
        if node.type == "bag":
            total += graph.shape(node.inputs[0])[0]
        elif node.type == "embedding":
            total += math.prod(shape)
        elif node.type == "attention":
            steps, channels = shape
            total += 4 * steps * channels * channels + 2 * steps * steps * channels
        elif node.type == "augment":
            total += AUGMENT_OPS_PER_VALUE * math.prod(shape)
        else:
            positions = math.prod(shape[:-1]) if len(shape) in (2, 3) else 1
            total += graph.node_params(node_id) * positions
    return int(total)


def activations(graph: ArchitectureGraph) -> int:
    """Values all layers output for one sample (what training keeps for the backward pass)."""
    return int(sum(math.prod(graph.shape(i)) for i in graph.order))


def cost_features(graph: ArchitectureGraph) -> np.ndarray:
    """log(1 + x) of (parameters, multiply-adds, activations) per sample."""
    counts = [graph.count_params(), multiply_adds(graph), activations(graph)]
    return np.log1p(np.array(counts, dtype=float))


def relative_cost(space, arch, history) -> float:
    """`arch`'s predicted seconds per epoch relative to the median finished trial's
    (`CostModel`); 1 where the space has no cost features, or before `min_fit` trials
    are timed: the model's prior (time proportional to compute) overstates the cost of
    growing a model as small as a linear one, whose epochs take the same fixed time per
    batch."""
    model = CostModel.from_history(space, history)
    if model is None or model.prior_:
        return 1.0
    return float(model.relative_cost([space.cost_features(arch)])[0])


# ---------------------------------------------------------------------- trial time
def epoch_costs(summary: dict) -> tuple[float, float]:
    """(first epoch, each later epoch) in seconds, from a trained trial's summary.

    The first epoch includes tracing the model's steps. Summaries without epoch
    timings give the mean seconds per epoch for both.
    """
    if "epoch_seconds" in summary:
        return float(summary["first_epoch_seconds"]), float(summary["epoch_seconds"])
    mean = float(summary.get("seconds", 0.0)) / max(int(summary.get("epochs", 1)), 1)
    return mean, mean


def seconds_to_start(summaries: list[dict], epochs: int = 2) -> float:
    """Seconds a new trial needs for `epochs` epochs (of each cross-validation fold): the
    median over trained trials (0 before any)."""

    def cost(summary: dict) -> float:
        first, later = epoch_costs(summary)  # the model is traced once, for the first fold
        return first + later * (epochs * int(summary.get("folds", 1)) - 1)

    costs = [cost(s) for s in summaries if s.get("seconds") is not None]
    return float(np.median(costs)) if costs else 0.0


def refit_epochs(summary: dict) -> int:
    """Epochs the final refit of a trial runs: half its best epoch count, 1 to 20."""
    return max(1, min(int(summary.get("best_epoch", 1)) // 2, 20))


def refit_seconds(summary: dict) -> float:
    """Seconds refitting a trial on train + validation data takes, from its measured epoch
    times: tracing, then `refit_epochs` on a quarter more data (with a 10% margin)."""
    first, later = epoch_costs(summary)
    return 1.1 * (max(first - later, 0.0) + refit_epochs(summary) * later * 1.25)


def final_builds(folds: int) -> int:
    """How many times the final model builds a member's graph, in units of its own build."""
    return 6 * folds if folds else 2


def final_seconds(summaries: list[dict], members: int, sign: float) -> float:
    """Seconds building the final model will take: each of the best `members` trials
    (by `sign` * score) is built twice (loaded, then in the ensemble). A cross-validated
    one counts 6 builds per fold: twice per fold, once to load the folds' weights, and
    its fold copies inside larger models build slower (27 s measured against 9 s for
    11 plain builds, on iris)."""
    done = [s for s in summaries if s.get("score") is not None and "build_seconds" in s]
    best = sorted(done, key=lambda s: -sign * float(s["score"]))[:members]
    builds = [final_builds(int(s.get("folds", 0))) for s in best]
    return sum(float(s["build_seconds"]) * n for s, n in zip(best, builds))


def final_model_seconds(
    summaries: list[dict], members: int, sign: float, refit: bool = False
) -> float:
    """Seconds building the final model from the best `members` trials will take
    (`final_seconds`), and with `refit`, refitting the best one (`refit_seconds`)."""
    seconds = final_seconds(summaries, members, sign)
    scored = [s for s in summaries if s.get("score") is not None and s.get("seconds")]
    if refit and scored:
        best = max(scored, key=lambda s: sign * float(s["score"]))
        seconds += refit_seconds(best)
    return seconds
