"""Regularized evolution (Real et al., 2019): tournament selection with ageing.

The population is the `population_size` most recent finished trials, so the
oldest member dies each time a child is added; a child is a random neighbour of
the best of `sample_size` members drawn at random. Everything is read from the
history, so the strategy keeps no state of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from automl.search.base import Observation, Proposal, SearchSpace, Strategy, fresh_sample


class RegularizedEvolution(Strategy):
    """Args:
    population_size: members alive at once (the initial random population too).
    sample_size: tournament size.
    """

    name = "evolution"

    def __init__(self, population_size: int = 10, sample_size: int = 3):
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                "sample_size must be between 1 and population_size. Received: "
                f"sample_size={sample_size}, population_size={population_size}."
            )
        self.population_size = population_size
        self.sample_size = sample_size

    def get_config(self) -> dict:
        return {"population_size": self.population_size, "sample_size": self.sample_size}

    def propose(
        self,
        space: SearchSpace,
        history: Sequence[Observation],
        rng: np.random.Generator,
        pending=(),
    ) -> Proposal:
        seen = self.seen_keys(space, history, pending)
        if len(history) < self.population_size:
            return Proposal(fresh_sample(space, seen, rng))
        population = list(history[-self.population_size :])
        picks = rng.choice(len(population), size=self.sample_size, replace=False)
        parent = max((population[i] for i in picks), key=lambda o: o.score)
        for child in space.neighbours(parent.arch, rng):
            if space.key(child) not in seen:
                return Proposal(child, parent)
        return Proposal(fresh_sample(space, seen, rng))
