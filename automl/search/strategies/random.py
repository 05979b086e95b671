"""Random search: fresh random architectures, or random steps from trained ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from automl.search.base import Observation, Proposal, SearchSpace, Strategy, fresh_sample


class RandomSearch(Strategy):
    """Uniform random search over a space.

    Args:
        mutate_probability: chance, once trials have finished, of growing the
            candidate from a random trained architecture by 1 to `max_steps`
            random neighbour steps (so it can inherit its parent's weights)
            instead of sampling a fresh one.
        max_steps: most neighbour steps from the parent.
    """

    name = "random"

    def __init__(self, mutate_probability: float = 0.5, max_steps: int = 3):
        self.mutate_probability = mutate_probability
        self.max_steps = max_steps

    def get_config(self) -> dict:
        return {"mutate_probability": self.mutate_probability, "max_steps": self.max_steps}

    def propose(
        self,
        space: SearchSpace,
        history: Sequence[Observation],
        rng: np.random.Generator,
        pending=(),
    ) -> Proposal:
        seen = self.seen_keys(space, history, pending)
        mutate = rng.random() < self.mutate_probability  # drawn always: a fresh sample does
        if history and mutate:  # not depend on whether some trial has finished
            parent = history[int(rng.integers(len(history)))]
            arch = parent.arch
            for _ in range(int(rng.integers(1, self.max_steps + 1))):
                children = space.neighbours(arch, rng)
                if not children:
                    break
                arch = children[0]
            if space.key(arch) not in seen:
                return Proposal(arch, parent)
        return Proposal(fresh_sample(space, seen, rng))
