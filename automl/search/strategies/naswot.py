"""Training-free search: propose the candidate with the best screening score (NASWOT).

A baseline for the trained strategies: each proposal draws a pool of candidates
(the space's unseen defaults, `n_samples` fresh samples, and neighbours of the
`n_parents` best trained architectures) and proposes the one the space's `screen`
scores highest, a score computed on the untrained network (the NASWOT score of
Mellor et al., 2021: see `automl.search.screening`). A neighbour keeps its trained parent,
so it starts from the parent's weights. The strategy only ranks; the engine builds
and scores the networks, so this module imports no Keras.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from automl.search.base import Observation, Proposal, SearchSpace, Strategy, screen_scores


class ScreeningSearch(Strategy):
    """Args:
    n_samples: fresh random candidates per proposal.
    n_parents: best trained architectures whose neighbours join the pool.
    """

    name = "naswot"

    def __init__(self, n_samples: int = 8, n_parents: int = 2):
        if n_samples < 1 or n_parents < 0:
            raise ValueError(
                f"n_samples must be >= 1 and n_parents >= 0. Received: "
                f"n_samples={n_samples!r}, n_parents={n_parents!r}."
            )
        self.n_samples = n_samples
        self.n_parents = n_parents

    def get_config(self) -> dict:
        return {"n_samples": self.n_samples, "n_parents": self.n_parents}

    def propose(
        self,
        space: SearchSpace,
        history: Sequence[Observation],
        rng: np.random.Generator,
        pending=(),
    ) -> Proposal:
        if getattr(space, "screen", None) is None:
            raise ValueError(
                f"Strategy 'naswot' needs a space that can screen candidates; "
                f"{type(space).__name__} has no `screen`."
            )
        seen = self.seen_keys(space, history, pending)
        pool: dict[str, Proposal] = {}

        def add(arch, parent=None) -> None:
            key = space.key(arch)
            if key not in seen and key not in pool:
                pool[key] = Proposal(arch, parent)

        for arch in getattr(space, "initial", list)():
            add(arch)
        for _ in range(self.n_samples):
            add(space.sample(rng))
        for parent in sorted(history, key=lambda o: -o.score)[: self.n_parents]:
            for child in space.neighbours(parent.arch, rng):
                add(child, parent)
        if not pool:  # the space seems exhausted: any sample
            return Proposal(space.sample(rng))
        proposals = list(pool.values())
        return proposals[int(np.argmax(screen_scores(space, [p.arch for p in proposals])))]
