"""keras-tuner `Oracle` adapter: drives any `Strategy` over any `SearchSpace`.

The oracle only proposes and records. Each trial's architecture travels as a JSON
string in the trial's hyperparameter values, so keras-tuner's own trial files are
the whole search state: reopening the directory with `overwrite=False` rebuilds
everything, and trials that were running when the process died go back on the
queue. Proposals draw from `np.random.default_rng([seed, trial_number])`, so the
same seed proposes the same architectures.
"""

from __future__ import annotations

import time

import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from automl.search.base import Observation, SearchSpace, Strategy

ARCH = "architecture"
PARENT = "parent_trial"


class StrategyOracle(keras_tuner.Oracle):
    """Asks a strategy for each new trial.

    Args:
        strategy: the `Strategy` that proposes architectures.
        space: the `SearchSpace` the architectures live in.
        objective: a `keras_tuner.Objective` (name and direction of the score).
        max_trials: number of trials in all (finished ones from a resumed search count).
        seed: seed of the proposals.
        time_limit: seconds after `start_clock()` past which no new trial starts.
    """

    def __init__(self, strategy: Strategy, space: SearchSpace, objective, max_trials: int,
                 seed: int = 0, time_limit: float | None = None):  # fmt: skip
        super().__init__(objective=objective, max_trials=max_trials, seed=seed + 1,
                         max_consecutive_failed_trials=3)  # fmt: skip
        self.strategy = strategy
        self.space = space
        self.search_seed = seed
        self.time_limit = time_limit
        self.deadline: float | None = None
        self.verbose = 0  # automl prints its own progress

    def start_clock(self) -> None:
        self.deadline = time.time() + self.time_limit if self.time_limit else None

    def time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.time()

    def _sign(self) -> float:
        return -1.0 if self.objective.direction == "min" else 1.0

    def observations(self) -> list[Observation]:
        """Finished trials in trial order, with scores turned higher-is-better."""
        out = []
        for trial_id in sorted(self.trials):
            trial = self.trials[trial_id]
            if trial.status == trial_module.TrialStatus.COMPLETED and trial.score is not None:
                arch = self.space.loads(trial.hyperparameters.values[ARCH])
                out.append(Observation(arch, self._sign() * float(trial.score), trial_id))
        return out

    def populate_space(self, trial_id: str) -> dict:
        if self.time_left() <= 0:
            return {"status": trial_module.TrialStatus.STOPPED}
        pending = [
            self.space.loads(t.hyperparameters.values[ARCH]) for t in self.ongoing_trials.values()
        ]
        rng = np.random.default_rng([self.search_seed, len(self.trials)])
        proposal = self.strategy.propose(self.space, self.observations(), rng, pending)
        parent = proposal.parent.trial_id if proposal.parent is not None else ""
        values = {ARCH: self.space.dumps(proposal.arch), PARENT: parent or "",
                  "strategy": self.strategy.name}  # fmt: skip
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def reload(self):
        super().reload()
        self.verbose = 0
