"""The contracts between strategies, search spaces and the search loop.

A strategy sees only the `SearchSpace` protocol and the finished trials, so every
strategy runs on every space, and keeps no state that the trials cannot rebuild.
Strategies never import Keras or TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from automl.errors import InputError


class SearchSpace(Protocol):
    """What a strategy may ask of a space of architectures."""

    def sample(self, rng: np.random.Generator) -> Any:
        """A random architecture."""

    def neighbours(self, arch: Any, rng: np.random.Generator) -> list:
        """Architectures one step away from `arch` (in random order)."""

    def to_graph(self, arch: Any) -> Any:
        """A graph the kernels in `automl.kernels` accept."""

    def key(self, arch: Any) -> str:
        """A canonical string: equal for equal architectures."""

    def dumps(self, arch: Any) -> str:
        """The architecture as a JSON string."""

    def loads(self, text: str) -> Any:
        """Inverse of `dumps`."""


@dataclass(frozen=True)
class Observation:
    """A finished trial as a strategy sees it: the architecture, its score (higher is
    better) and, where measured, its training seconds per epoch."""

    arch: Any
    score: float
    trial_id: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Proposal:
    """What a strategy proposes: an architecture, and the trained parent it grows from."""

    arch: Any
    parent: Observation | None = None


class Strategy:
    """Proposes the next architecture from the finished trials.

    Subclasses override `propose`. A strategy is stateless between calls: all it
    knows comes from `history`, so a resumed search proposes as the original would.
    """

    name = "strategy"

    def propose(
        self,
        space: SearchSpace,
        history: Sequence[Observation],
        rng: np.random.Generator,
        pending: Sequence[Any] = (),
    ) -> Proposal:
        raise NotImplementedError(f"{type(self).__name__} must implement propose().")

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def seen_keys(space: SearchSpace, history: Sequence[Observation], pending=()) -> set:
        return {space.key(o.arch) for o in history} | {space.key(a) for a in pending}


def screen_scores(space: SearchSpace, archs: Sequence[Any]) -> np.ndarray:
    """The space's training-free scores of `archs` (its `screen`), -inf where not finite."""
    scores = np.asarray(space.screen(list(archs)), dtype=float)
    return np.where(np.isfinite(scores), scores, -np.inf)


def fresh_sample(space: SearchSpace, seen: set, rng: np.random.Generator, tries: int = 100):
    """An unseen default of the space (`space.initial()`, if it has one), else a random one.

    Returns the last one drawn if the space seems exhausted.
    """
    for arch in getattr(space, "initial", list)():
        if space.key(arch) not in seen:
            return arch
    arch = space.sample(rng)
    for _ in range(tries):
        if space.key(arch) not in seen:
            return arch
        arch = space.sample(rng)
    return arch


# The proposal strategies `get_strategy` builds, by name, as "module:Class": algorithms
# that propose architectures on any `SearchSpace` (graphs, NAS-Bench-201 cells). The
# strategies a user names in `strategy=` are listed in `automl.engine.registry`; each
# of its graph strategies runs the proposal strategy of the same name.
PROPOSAL_STRATEGIES: dict[str, str] = {
    "random": "automl.search.strategies.random:RandomSearch",
    "evolution": "automl.search.strategies.evolution:RegularizedEvolution",
    "bayesian": "automl.search.strategies.bayesian:BayesianOptimization",
    "naswot": "automl.search.strategies.naswot:ScreeningSearch",
}


def register_strategy(name: str, target: str) -> None:
    """Make `get_strategy(name)` return an instance of `module:Class`."""
    PROPOSAL_STRATEGIES[name] = target


def get_strategy(name: str, **kwargs) -> Strategy:
    """A strategy by name, for example `get_strategy("random")`.

    Raises:
        InputError: the name is unknown, or the strategy refuses `kwargs`.
    """
    import importlib

    if name not in PROPOSAL_STRATEGIES:
        raise InputError(f"Unknown strategy {name!r}. Choose one of {sorted(PROPOSAL_STRATEGIES)}.")
    module, cls = PROPOSAL_STRATEGIES[name].split(":")
    try:
        return getattr(importlib.import_module(module), cls)(**kwargs)
    except (TypeError, ValueError) as err:
        raise InputError(f"Strategy {name!r} cannot take {kwargs}: {err}") from None
