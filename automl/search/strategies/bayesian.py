"""Bayesian optimisation on graph kernels with a tree-structured annealing acquisition search.

After `n_initial` random proposals, each proposal fits a Gaussian process on the
finished trials (`GraphGP`: covariance c * k + s * I with k a graph kernel from
`automl.kernels`, scores standardised, c, s and k's own hyperparameters by maximum
marginal likelihood) and searches the space for the unseen architecture with the
best acquisition (expected improvement, or UCB mu + beta * sigma). The search is
that of Auto-Keras (Jin, Song and Hu, "Auto-Keras: An Efficient Neural
Architecture Search System", KDD 2019): best-first over a tree rooted at every
trained architecture, children from `space.neighbours` (those already trained,
pending or visited are skipped by `space.key`), each pop expanded with the
simulated-annealing probability exp((a - a_best) / (T * std of the scores)), T from
`t0` cooled by `cooling` per pop until `t_min`. The returned proposal names the
trained root it grew from, so a morphism child starts from that root's weights.

Defaults, and why (chosen on the NAS-Bench-201 CIFAR-100 table with
`automl benchmark nb201`):

- Scores below the median of the history are raised to the median before the
  fit (`floor_quantile`). A long tail of bad scores would otherwise set the scale
  of the standardised scores, so the GP would spend itself on telling bad
  architectures apart instead of good ones, which is all the search needs. This
  matters most for the more specific WL h=2 features (the kernel's default).
- Expected improvement: UCB with beta = 2.576 (the Auto-Keras choice, still
  selectable) explores too much for budgets of 50 to 150.
- `n_initial` 10: fewer random points leave the first GPs too little to go on.

Measured results: benchmarks/README.md.

Two options use more than the scores, for searches where trials cost real time:

- `cost_aware`: expected improvement per predicted second (EI / cost**`cost_exponent`),
  the cost a regression of the finished trials' seconds per epoch on the space's
  `cost_features` (`automl.search.cost`). Without it a time-limited search tends to
  grow every child to the size cap, where EI is largest and each trial slowest.
- `screen_top`: the `screen_top` candidates of highest acquisition are scored by the
  space's `screen` (a training-free score such as NASWOT, `automl.search.screening`) and
  those below the median score of the group are dropped before the best is taken.

The strategy keeps no state: the GP and the cost model are rebuilt from the history
each time, so a resumed search proposes exactly as the original would.
"""

from __future__ import annotations

import heapq
import importlib
import itertools
import math
from collections.abc import Sequence

import numpy as np

from automl.search.base import (
    Observation,
    Proposal,
    SearchSpace,
    Strategy,
    fresh_sample,
    screen_scores,
)
from automl.search.cost import CostModel

KERNELS = {
    "wl": "automl.kernels.wl:WLKernel",
    "edit_distance": "automl.kernels.edit_distance:EditDistanceKernel",
}
DEFAULT_KERNEL = "wl"


def make_kernel(name: str, **params):
    """A graph kernel by name (`wl` or `edit_distance`)."""
    if name not in KERNELS:
        raise ValueError(f"Unknown kernel {name!r}. Choose one of {sorted(KERNELS)}.")
    module, cls = KERNELS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**params)


class BayesianOptimization(Strategy):
    """GP-based proposals over any `SearchSpace` whose `to_graph` the kernels accept.

    Args:
        kernel: "wl" (Weisfeiler-Lehman) or "edit_distance" (Auto-Keras).
        kernel_params: keyword arguments of the kernel (None: its defaults).
        acquisition: "ei" (expected improvement) or "ucb".
        beta: UCB exploration weight.
        n_initial: random proposals before the first GP.
        floor_quantile: scores below this quantile of the history are raised to it
            before the GP fit (0 fits the raw scores).
        noise_bounds: range of the noise variance relative to the signal variance.
        t0, cooling, t_min: the annealing schedule.
        cost_aware: divide the acquisition by the predicted seconds per epoch (relative
            to the median trial's) to the power `cost_exponent`; needs a space with
            `cost_features` and timed trials (`Observation.seconds`).
        cost_exponent: 1 is EI per second; 0 ignores the cost.
        screen_top: how many of the best candidates the space's `screen` scores before
            the choice (0: no screening; needs a space with a `screen`).
    """

    name = "bayesian"

    def __init__(
        self,
        kernel: str = DEFAULT_KERNEL,
        kernel_params: dict | None = None,
        acquisition: str = "ei",
        beta: float = 2.576,
        n_initial: int = 10,
        floor_quantile: float = 0.5,
        noise_bounds=(1e-6, 1.0),
        t0: float = 1.0,
        cooling: float = 0.9,
        t_min: float = 1e-4,
        cost_aware: bool = False,
        cost_exponent: float = 1.0,
        screen_top: int = 0,
    ):
        if acquisition not in ("ucb", "ei"):
            raise ValueError(f"acquisition must be 'ucb' or 'ei'. Received: {acquisition!r}.")
        if kernel not in KERNELS:
            raise ValueError(f"Unknown kernel {kernel!r}. Choose one of {sorted(KERNELS)}.")
        if not 0.0 <= floor_quantile < 1.0:
            raise ValueError(f"floor_quantile must be in [0, 1). Received: {floor_quantile!r}.")
        self.kernel = kernel
        self.kernel_params = dict(kernel_params or {})
        self.acquisition = acquisition
        self.beta = beta
        self.n_initial = n_initial
        self.floor_quantile = floor_quantile
        self.noise_bounds = tuple(noise_bounds)
        if screen_top < 0 or cost_exponent < 0:
            raise ValueError(
                f"screen_top and cost_exponent must be >= 0. Received: "
                f"screen_top={screen_top!r}, cost_exponent={cost_exponent!r}."
            )
        self.t0, self.cooling, self.t_min = t0, cooling, t_min
        self.cost_aware = bool(cost_aware)
        self.cost_exponent = float(cost_exponent)
        self.screen_top = int(screen_top)

    def get_config(self) -> dict:
        return {
            "kernel": self.kernel,
            "kernel_params": self.kernel_params,
            "acquisition": self.acquisition,
            "beta": self.beta,
            "n_initial": self.n_initial,
            "floor_quantile": self.floor_quantile,
            "noise_bounds": list(self.noise_bounds),
            "t0": self.t0,
            "cooling": self.cooling,
            "t_min": self.t_min,
            "cost_aware": self.cost_aware,
            "cost_exponent": self.cost_exponent,
            "screen_top": self.screen_top,
        }

    # ------------------------------------------------------------------ model
    def fit_gp(self, space: SearchSpace, history: Sequence[Observation]) -> GraphGP:
        """A GP on the history's graphs and scores."""
        y = np.array([o.score for o in history])
        if self.floor_quantile:
            y = np.maximum(y, np.quantile(y, self.floor_quantile))
        gp = GraphGP(make_kernel(self.kernel, **self.kernel_params), self.noise_bounds)
        return gp.fit([space.to_graph(o.arch) for o in history], y)

    def fit_cost(self, space: SearchSpace, history: Sequence[Observation]) -> CostModel | None:
        """The cost model of the timed trials (None unless `cost_aware` and there are some)."""
        return CostModel.from_history(space, history) if self.cost_aware else None

    def acquire(self, gp, graphs: list, best: float, cost: np.ndarray | None = None) -> np.ndarray:
        """Acquisition values (higher is better) of graphs; divided by `cost`**`cost_exponent`
        when relative costs are given."""
        mu, sigma = gp.predict(graphs, return_std=True)
        if self.acquisition == "ucb":
            values = mu + self.beta * sigma
        else:
            from scipy.stats import norm

            sigma = np.maximum(sigma, 1e-12)
            z = (mu - best) / sigma
            values = (mu - best) * norm.cdf(z) + sigma * norm.pdf(z)
        if cost is None:
            return values
        return values / np.maximum(cost, 1e-3) ** self.cost_exponent

    # ------------------------------------------------------------------ search
    def propose(
        self,
        space: SearchSpace,
        history: Sequence[Observation],
        rng: np.random.Generator,
        pending=(),
    ) -> Proposal:
        seen = self.seen_keys(space, history, pending)
        cost_model = self.fit_cost(space, history)
        if len(history) < max(self.n_initial, 2):
            return Proposal(self.initial_sample(space, history, seen, rng, cost_model))
        gp = self.fit_gp(space, history)
        best_score = max(o.score for o in history)

        def acquire(archs: list) -> np.ndarray:
            cost = None
            if cost_model is not None:
                cost = cost_model.relative_cost([space.cost_features(a) for a in archs])
            return self.acquire(gp, [space.to_graph(a) for a in archs], best_score, cost)

        root_values = acquire([o.arch for o in history])
        scale = float(np.std([o.score for o in history])) or 1.0
        heap = [(-v, i, o.arch, o) for i, (v, o) in enumerate(zip(root_values, history))]
        heapq.heapify(heap)
        counter = len(heap)
        visited = set(seen)
        best = None  # (value, arch, root)
        scored = []  # every (value, arch, root) the search valued
        temperature = self.t0
        while heap and temperature > self.t_min:
            value, _, arch, root = heapq.heappop(heap)
            value = -value
            accept = best is None or rng.random() < math.exp(
                min(0.0, (value - best[0]) / (temperature * scale))
            )
            if accept:
                children = [c for c in space.neighbours(arch, rng) if space.key(c) not in visited]
                if children:
                    visited.update(space.key(c) for c in children)
                    for child, child_value in zip(children, acquire(children)):
                        heapq.heappush(heap, (-child_value, counter, child, root))
                        counter += 1
                        scored.append((float(child_value), child, root))
                        if best is None or child_value > best[0]:
                            best = (float(child_value), child, root)
            temperature *= self.cooling
        if best is None:
            return Proposal(fresh_sample(space, seen, rng))
        if self.screen_top and getattr(space, "screen", None) is not None:
            best = self.screened(space, scored)
        return Proposal(best[1], best[2])

    def initial_sample(
        self,
        space: SearchSpace,
        history: Sequence[Observation],
        seen: set,
        rng: np.random.Generator,
        cost_model: CostModel | None,
    ):
        """A proposal before the first GP: the space's unseen default, else a fresh sample;
        with screening, once a trial has finished, the best screened of `screen_top`
        samples (with a cost model, of those predicted no costlier than the median
        finished trial, if any). The first trial is never screened: it is the default,
        or the plain sample a search without screening would train."""
        defaults = [a for a in getattr(space, "initial", list)() if space.key(a) not in seen]
        if defaults or not history or not self.screen_top or getattr(space, "screen", None) is None:
            return fresh_sample(space, seen, rng)
        pool = {}
        for _ in range(self.screen_top):
            arch = fresh_sample(space, seen | set(pool), rng)
            pool.setdefault(space.key(arch), arch)
        archs = list(pool.values())
        if cost_model is not None:
            cost = cost_model.relative_cost([space.cost_features(a) for a in archs])
            archs = [a for a, c in zip(archs, cost) if c <= 1.0] or archs
        return archs[int(np.argmax(screen_scores(space, archs)))]

    def screened(self, space: SearchSpace, scored: list) -> tuple:
        """The best-valued of the `screen_top` top candidates whose screening score is at
        least the median of theirs (all of them when no score is finite)."""
        top = sorted(scored, key=lambda t: -t[0])[: self.screen_top]
        scores = screen_scores(space, [arch for _, arch, _ in top])
        finite = scores[np.isfinite(scores)]
        if not len(finite):
            return top[0]
        cut = float(np.median(finite))
        return next(t for t, score in zip(top, scores) if score >= cut)


def _lml(candidate) -> float:
    return -np.inf if candidate is None else candidate[0]


class GraphGP:
    """Exact GP regression with covariance c * k + s * I on standardised scores.

    k is a graph kernel from `automl.kernels` (unit diagonal). The model is that of
    scikit-learn's `ConstantKernel * k + WhiteKernel` with `normalize_y`, fitted by
    maximum marginal likelihood, but faster: c has a closed form given the noise
    ratio r = s / c, and one eigendecomposition of the Gram matrix per setting of
    k's own hyperparameters makes the likelihood O(n) for each r, so r (log grid over
    `noise_bounds`) and k's continuous hyperparameters (log grid over their bounds)
    are searched exhaustively instead of by a local optimiser. Predictions are of
    the noise-free score.
    """

    def __init__(self, kernel, noise_bounds=(1e-6, 1.0), grid: int = 15):
        self.kernel = kernel
        self.noise_bounds = noise_bounds
        self.grid = grid

    def fit(self, graphs: list, y) -> GraphGP:
        y = np.asarray(y, dtype=float)
        self.mean_, self.std_ = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.mean_) / self.std_
        self.graphs_ = list(graphs)
        ratios = np.geomspace(*self.noise_bounds, 4 * self.grid)
        bounds = self.kernel.bounds  # log-space bounds of the free hyperparameters
        best = None
        for theta in itertools.product(*[np.linspace(lo, hi, self.grid) for lo, hi in bounds]):
            best = max(best, self._fit_one(np.array(theta), z, ratios), key=_lml)
        if len(bounds):  # refine around the best grid point, one grid step either side
            step = (bounds[:, 1] - bounds[:, 0]) / (self.grid - 1)
            centre = best[1].theta
            for theta in itertools.product(
                *[np.linspace(c - h, c + h, 5) for c, h in zip(centre, step)]
            ):
                theta = np.clip(theta, bounds[:, 0], bounds[:, 1])
                best = max(best, self._fit_one(theta, z, ratios), key=_lml)
        self.log_marginal_likelihood_value_, self.kernel_, self._vectors, self._d = best[:4]
        self.amplitude_, self.noise_ = best[4], best[4] * best[5]
        self._weights = self._vectors @ ((self._vectors.T @ z) / self._d)
        return self

    def _fit_one(self, theta: np.ndarray, z: np.ndarray, ratios: np.ndarray) -> tuple:
        """The best noise ratio for kernel hyperparameters theta, with its likelihood."""
        from sklearn.base import clone

        kernel = clone(self.kernel).clone_with_theta(theta)
        lam, vectors = np.linalg.eigh(kernel(self.graphs_))
        a2 = (vectors.T @ z) ** 2
        d = np.maximum(lam, 0.0)[None, :] + ratios[:, None]
        amplitude = np.maximum((a2 / d).sum(1) / len(z), 1e-12)  # 0 when every score is equal
        lml = -0.5 * (len(z) * np.log(amplitude) + np.log(d).sum(1))
        i = int(np.argmax(lml))
        return lml[i], kernel, vectors, d[i], amplitude[i], ratios[i]

    def predict(self, graphs: list, return_std: bool = False):
        """Posterior mean (and standard deviation) of the score of each graph."""
        cross = self.kernel_(graphs, self.graphs_)
        mu = self.mean_ + self.std_ * (cross @ self._weights)
        if not return_std:
            return mu
        projected = cross @ self._vectors
        var = self.amplitude_ * (self.kernel_.diag(graphs) - (projected**2 / self._d).sum(1))
        return mu, self.std_ * np.sqrt(np.maximum(var, 0.0))
