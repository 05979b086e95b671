"""Bayesian optimisation on graph kernels with a tree-structured annealing acquisition search.

After `n_initial` random proposals, each proposal fits a Gaussian process on the
finished trials (a graph kernel from `automl.kernels`, scores standardised,
hyperparameters refit by marginal likelihood) and searches the space for the
unseen architecture with the best acquisition (UCB, mu + beta * sigma, or
expected improvement). The search is the Auto-Keras one: best-first over a tree
rooted at every trained architecture, children from `space.neighbours`, each pop
accepted with the simulated-annealing probability exp((a - a_best) / T), T from
`t0` cooled by `cooling` per pop until `t_min`. The returned proposal names the
trained root it grew from, so a morphism child starts from that root's weights.

The strategy keeps no state: the GP is rebuilt from the history each time, so a
resumed search proposes exactly as the original would.
"""

from __future__ import annotations

import heapq
import importlib
import math
from collections.abc import Sequence

import numpy as np

from automl.search.base import Observation, Proposal, SearchSpace, Strategy, fresh_sample

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
        kernel_params: keyword arguments of the kernel.
        acquisition: "ucb" or "ei".
        beta: UCB exploration weight.
        n_initial: random proposals before the first GP.
        t0, cooling, t_min: the annealing schedule.
    """

    name = "bayesian"

    def __init__(self, kernel: str = DEFAULT_KERNEL, kernel_params: dict | None = None,
                 acquisition: str = "ucb", beta: float = 2.576, n_initial: int = 10,
                 t0: float = 1.0, cooling: float = 0.9, t_min: float = 1e-4):  # fmt: skip
        if acquisition not in ("ucb", "ei"):
            raise ValueError(f"acquisition must be 'ucb' or 'ei'. Received: {acquisition!r}.")
        if kernel not in KERNELS:
            raise ValueError(f"Unknown kernel {kernel!r}. Choose one of {sorted(KERNELS)}.")
        self.kernel = kernel
        self.kernel_params = dict(kernel_params or {})
        self.acquisition = acquisition
        self.beta = beta
        self.n_initial = n_initial
        self.t0, self.cooling, self.t_min = t0, cooling, t_min

    def get_config(self) -> dict:
        return {"kernel": self.kernel, "kernel_params": self.kernel_params,
                "acquisition": self.acquisition, "beta": self.beta,
                "n_initial": self.n_initial, "t0": self.t0, "cooling": self.cooling,
                "t_min": self.t_min}  # fmt: skip

    # ------------------------------------------------------------------ model
    def fit_gp(self, space: SearchSpace, history: Sequence[Observation]):
        """A GP on the history's graphs and scores (standardised inside the GP)."""
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * make_kernel(
            self.kernel, **self.kernel_params
        ) + WhiteKernel(1e-2, (1e-6, 1.0))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0,
                                      random_state=0)  # fmt: skip
        gp.fit([space.to_graph(o.arch) for o in history], np.array([o.score for o in history]))
        return gp

    def acquire(self, gp, graphs: list, best: float) -> np.ndarray:
        """Acquisition values (higher is better) of graphs."""
        mu, sigma = gp.predict(graphs, return_std=True)
        if self.acquisition == "ucb":
            return mu + self.beta * sigma
        from scipy.stats import norm

        sigma = np.maximum(sigma, 1e-12)
        z = (mu - best) / sigma
        return (mu - best) * norm.cdf(z) + sigma * norm.pdf(z)

    # ------------------------------------------------------------------ search
    def propose(
        self,
        space: SearchSpace,
        history: Sequence[Observation],
        rng: np.random.Generator,
        pending=(),
    ) -> Proposal:
        seen = self.seen_keys(space, history, pending)
        if len(history) < max(self.n_initial, 2):
            return Proposal(fresh_sample(space, seen, rng))
        gp = self.fit_gp(space, history)
        best_score = max(o.score for o in history)
        root_values = self.acquire(gp, [space.to_graph(o.arch) for o in history], best_score)
        scale = float(np.std([o.score for o in history])) or 1.0
        heap = [(-v, i, o.arch, o) for i, (v, o) in enumerate(zip(root_values, history))]
        heapq.heapify(heap)
        counter = len(heap)
        visited = set(seen)
        best = None  # (value, arch, root)
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
                    values = self.acquire(gp, [space.to_graph(c) for c in children], best_score)
                    for child, child_value in zip(children, values):
                        heapq.heappush(heap, (-child_value, counter, child, root))
                        counter += 1
                        if best is None or child_value > best[0]:
                            best = (float(child_value), child, root)
            temperature *= self.cooling
        if best is None:
            return Proposal(fresh_sample(space, seen, rng))
        return Proposal(best[1], best[2])
