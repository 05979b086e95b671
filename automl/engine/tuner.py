"""keras-tuner `Tuner`: builds a trial's graph, inherits its parent's weights, trains, scores.

The tuner only runs trials. It builds the Keras model with the task's `build_fn`
(preprocessing + graph + compile), starts a morphism child from its parent's
saved weights, trains with early stopping inside compiled Keras steps on input
made for that trial (seeded by the trial, so a resumed search trains it the same
way), saves the best weights in the trial's directory with their SHA-256, and
reports the score: the validation metric of the epoch whose weights are kept
(early stopping restores the best epoch, so the score describes the saved model;
with a fixed number of epochs the kept epoch is the last).

A trial that cannot finish raises keras-tuner's `FailedTrialError`: keras-tuner
records it as FAILED with the reason as its message, and the search goes on. That
covers a loss that became NaN (training stops at that batch), running out of
memory (the model-size cap drops below the model's size), and a parent whose
weights file is missing or damaged (the parent is marked FAILED too). Any other
exception in a trial is recorded the same way by keras-tuner.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import keras
import numpy as np
from keras_tuner.engine import base_tuner
from keras_tuner.errors import FailedTrialError

from automl.engine.oracle import ARCH, PARENT, SUMMARY_FILE, StrategyOracle
from automl.engine.project import DamagedFileError, checksum, read_json, write_json
from automl.graph.architecture import ArchitectureGraph
from automl.training import TrainingDiverged, fit_trial, is_out_of_memory, load_checked_weights

WEIGHTS_FILE = "model.weights.h5"


class GraphTuner(base_tuner.BaseTuner):
    """Runs the trials an `StrategyOracle` proposes.

    Args:
        oracle: the oracle.
        build_fn: graph -> compiled `keras.Model` (the task's preprocessing included).
        make_dataset: (inputs, targets, shuffle) -> what `model.fit` takes; called in each
            trial after its seed is set.
        epochs: fixed epochs per trial, or None for early stopping.
        patience: early-stopping patience in epochs.
        max_epochs: most epochs per trial with early stopping.
        noise_std: noise added to inherited weights to break symmetry.
        log: callable taking one progress line, or None for silence.
        directory, project_name, overwrite: as in keras-tuner.
    """

    def __init__(self, oracle: StrategyOracle, build_fn: Callable, make_dataset: Callable, *,
                 epochs: int | None = None,
                 patience: int = 5, max_epochs: int = 200, noise_std: float = 0.0,
                 log: Callable[[str], None] | None = None, directory=None,
                 project_name=None, overwrite=False):  # fmt: skip
        self.build_fn = build_fn
        self.make_dataset = make_dataset
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
        """The trained model of a finished trial.

        Raises:
            DamagedFileError: its weights file is missing or fails its checksum.
        """
        model = self.build_fn(self.trial_graph(trial.trial_id))
        load_checked_weights(model, self.weights_path(trial.trial_id),
                             self.trial_summary(trial.trial_id).get("weights_sha256"))  # fmt: skip
        return model

    def save(self):
        """Save the oracle and the tuner's state, atomically."""
        self.oracle.save()
        write_json(self._get_tuner_fname(), self.get_state())

    def reload(self):
        read_json(self._get_tuner_fname())  # a damaged file is named in the error
        super().reload()

    # ------------------------------------------------------------------ trials
    def _start_model(self, trial_id: str, graph: ArchitectureGraph, parent_id: str):
        model = self.build_fn(graph)
        if not parent_id:
            return model, ""
        from automl.morphism.weights import inherit_weights

        parent_graph = self.trial_graph(parent_id)
        try:
            parent = self.load_model(self.oracle.get_trial(parent_id))
        except DamagedFileError as err:
            self.oracle.mark_failed(parent_id, f"{err}; this trial is no longer used")
            raise FailedTrialError(f"Cannot grow from trial {parent_id}: {err}.") from None
        rng = np.random.default_rng([self.oracle.search_seed, int(trial_id)])
        inherit_weights(parent, parent_graph, model, graph, noise_std=self.noise_std, rng=rng)
        return model, parent_id

    def run_trial(self, trial, train_data, validation_data):
        """Train the trial's model and save its weights and summary; returns its score.

        Args:
            trial: the keras-tuner trial.
            train_data, validation_data: (inputs, targets) of the training and validation data.

        Raises:
            FailedTrialError: the training diverged, ran out of memory, or the parent's
                weights are damaged.
        """
        start = time.time()
        values = trial.hyperparameters.values
        graph = ArchitectureGraph.from_json(values[ARCH])
        keras.utils.set_random_seed(self.oracle.search_seed * 1000 + int(trial.trial_id))
        name = self.oracle.objective.name
        try:
            model, parent = self._start_model(trial.trial_id, graph, values.get(PARENT, ""))
            scores, kept, timing = fit_trial(model, self.make_dataset(*train_data, shuffle=True),
                                     self.make_dataset(*validation_data, shuffle=False),
                                     objective=name, direction=self.oracle.objective.direction,
                                     epochs=self.epochs, max_epochs=self.max_epochs,
                                     patience=self.patience,
                                     deadline=self.oracle.deadline)  # fmt: skip
        except TrainingDiverged as err:
            raise FailedTrialError(f"The trial failed: {err}.") from None
        except Exception as err:  # noqa: BLE001 - out of memory comes in many classes
            if not is_out_of_memory(err):
                raise
            self.oracle.lower_size_cap(graph.count_params())
            raise FailedTrialError(
                f"The trial ran out of memory with {graph.count_params():,} parameters "
                f"({type(err).__name__}); no model of {self.oracle.space.max_model_size:,} "
                "parameters or more will be proposed."
            ) from None
        score = float(scores[kept])  # the epoch whose weights the model keeps
        path = self.weights_path(trial.trial_id)
        model.save_weights(path)
        summary = {"key": graph.key(), "params": graph.count_params(), "epochs": len(scores),
                   "best_epoch": kept + 1, "score": score,
                   "seconds": round(time.time() - start, 2), "parent": parent,
                   "strategy": values.get("strategy", ""), **timing,
                   "weights_sha256": checksum(path)}  # fmt: skip
        write_json(os.path.join(self.get_trial_dir(trial.trial_id), SUMMARY_FILE), summary)
        if self.log:
            grown = f", grown from trial {parent}" if parent else ""
            self.log(f"trial {trial.trial_id}: {name}={score:.4f} ({summary['params']:,} params, "
                     f"{summary['epochs']} epochs, {summary['seconds']:.1f} s{grown})")  # fmt: skip
        return {name: score}

    def save_model(self, trial_id, model, step=0):
        model.save_weights(self.weights_path(trial_id))
