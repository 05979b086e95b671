"""keras-tuner `Tuner`: builds a trial's graph, inherits its parent's weights, trains, scores.

The tuner only runs trials. It builds the Keras model with the task's `build_fn`
(preprocessing + graph + compile), starts a morphism child from its parent's
saved weights, trains with early stopping inside compiled Keras steps on
`tf.data` input, saves the best weights in the trial's directory and reports the
score: the validation metric of the epoch whose weights are kept (early stopping
restores the best epoch, so the score describes the saved model; with a fixed
number of epochs the kept epoch is the last). A trial whose score is not finite
(training diverged) raises keras-tuner's `FailedTrialError`: keras-tuner records
it as FAILED, with the reason as its message, and the search goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import keras
import numpy as np
from keras_tuner.engine import base_tuner
from keras_tuner.errors import FailedTrialError

from automl.engine.oracle import ARCH, PARENT, StrategyOracle
from automl.engine.project import read_json, write_json
from automl.graph.architecture import ArchitectureGraph
from automl.training import fit_trial, load_weights

WEIGHTS_FILE = "model.weights.h5"
SUMMARY_FILE = "summary.json"


class GraphTuner(base_tuner.BaseTuner):
    """Runs the trials an `StrategyOracle` proposes.

    Args:
        oracle: the oracle.
        build_fn: graph -> compiled `keras.Model` (the task's preprocessing included).
        epochs: fixed epochs per trial, or None for early stopping.
        patience: early-stopping patience in epochs.
        max_epochs: most epochs per trial with early stopping.
        noise_std: noise added to inherited weights to break symmetry.
        log: callable taking one progress line, or None for silence.
        directory, project_name, overwrite: as in keras-tuner.
    """

    def __init__(self, oracle: StrategyOracle, build_fn: Callable, *, epochs: int | None = None,
                 patience: int = 5, max_epochs: int = 200, noise_std: float = 0.0,
                 log: Callable[[str], None] | None = None, directory=None,
                 project_name=None, overwrite=False):  # fmt: skip
        self.build_fn = build_fn
        self.epochs = epochs
        self.patience = patience
        self.max_epochs = max_epochs
        self.noise_std = noise_std
        self.log = log
        super().__init__(oracle, directory=directory, project_name=project_name,
                         overwrite=overwrite)  # fmt: skip

    # ------------------------------------------------------------------ files
    def weights_path(self, trial_id: str) -> str:
        return os.path.join(self.get_trial_dir(trial_id), WEIGHTS_FILE)

    def trial_summary(self, trial_id: str) -> dict:
        return read_json(os.path.join(self.get_trial_dir(trial_id), SUMMARY_FILE), {})

    def trial_graph(self, trial_id: str) -> ArchitectureGraph:
        trial = self.oracle.get_trial(trial_id)
        return ArchitectureGraph.from_json(trial.hyperparameters.values[ARCH])

    def load_model(self, trial) -> keras.Model:
        """The trained model of a finished trial."""
        model = self.build_fn(self.trial_graph(trial.trial_id))
        load_weights(model, self.weights_path(trial.trial_id))
        return model

    # ------------------------------------------------------------------ trials
    def _start_model(self, trial_id: str, graph: ArchitectureGraph, parent_id: str):
        model = self.build_fn(graph)
        if not parent_id or not os.path.exists(self.weights_path(parent_id)):
            return model, ""
        from automl.morphism.weights import inherit_weights

        parent_graph = self.trial_graph(parent_id)
        parent = self.build_fn(parent_graph)
        load_weights(parent, self.weights_path(parent_id))
        rng = np.random.default_rng([self.oracle.search_seed, int(trial_id)])
        inherit_weights(parent, parent_graph, model, graph, noise_std=self.noise_std, rng=rng)
        return model, parent_id

    def run_trial(self, trial, train_data, validation_data):
        """Train the trial's model and save its weights and summary; returns its score.

        Raises:
            FailedTrialError: the score of the kept epoch is not finite.
        """
        start = time.time()
        values = trial.hyperparameters.values
        graph = ArchitectureGraph.from_json(values[ARCH])
        keras.utils.set_random_seed(self.oracle.search_seed * 1000 + int(trial.trial_id))
        model, parent = self._start_model(trial.trial_id, graph, values.get(PARENT, ""))
        name = self.oracle.objective.name
        scores, kept = fit_trial(model, train_data, validation_data, objective=name,
                                 direction=self.oracle.objective.direction, epochs=self.epochs,
                                 max_epochs=self.max_epochs, patience=self.patience,
                                 deadline=self.oracle.deadline)  # fmt: skip
        score = float(scores[kept])  # the epoch whose weights the model keeps
        if not np.isfinite(score):
            raise FailedTrialError(
                f"The trial's {name} is {score} at epoch {kept + 1}: training diverged."
            )
        model.save_weights(self.weights_path(trial.trial_id))
        summary = {"key": graph.key(), "params": graph.count_params(), "epochs": len(scores),
                   "best_epoch": kept + 1, "score": score,
                   "seconds": round(time.time() - start, 2), "parent": parent,
                   "strategy": values.get("strategy", "")}  # fmt: skip
        write_json(os.path.join(self.get_trial_dir(trial.trial_id), SUMMARY_FILE), summary)
        if self.log:
            grown = f", grown from trial {parent}" if parent else ""
            self.log(f"trial {trial.trial_id}: {name}={score:.4f} ({summary['params']:,} params, "
                     f"{summary['epochs']} epochs, {summary['seconds']:.1f} s{grown})")  # fmt: skip
        return {name: score}

    def save_model(self, trial_id, model, step=0):
        model.save_weights(self.weights_path(trial_id))
