"""A cost model for cost-aware acquisition: seconds per epoch predicted from an architecture.

Expected improvement per second (Snoek, Larochelle and Adams, "Practical Bayesian
Optimization of Machine Learning Algorithms", 2012) divides a candidate's expected
improvement by its predicted cost, so a time-limited search prefers a cheap
promising candidate to an expensive one that promises a little more. The cost here
is the measured seconds per epoch of the finished trials, learned as a linear
regression in log space on the space's `cost_features` (for layer graphs: log
parameters, multiply-adds and activations, `automl.graph.cost`):

    log(seconds) = b + w . features

With fewer than `min_fit` timed trials the slope is fixed to 1 on the first
feature after the parameters (multiply-adds: time proportional to compute) and
only b is fitted; with more, w comes from ridge regression (penalty `ridge` on
standardised features), so the model can learn that this machine's time follows
the activations more than the compute. Costs are returned relative to the median
measured cost, so the acquisition values keep the scale of the scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
