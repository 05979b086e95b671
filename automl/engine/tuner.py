"""keras-tuner `Tuner`: builds a trial's graph, inherits its parent's weights, trains, scores.

The tuner only runs trials. It builds the Keras model with the task's `build_fn`
(preprocessing + graph + compile), starts a morphism child from its parent's
saved weights, trains with early stopping inside compiled Keras steps on input
made for that trial (seeded by the trial, so a resumed search trains it the same
way), saves the best weights in the trial's directory with their SHA-256, and
reports the score: the validation metric of the epoch whose weights are kept
(early stopping restores the best epoch, so the score describes the saved model;
with a fixed number of epochs the kept epoch is the last). It also saves the kept
model's predictions on the validation data, which the final-model step chooses
ensemble members by (not for cross-validated trials, nor a validation stream).

With a `stopping` rule (`automl.search.stopping`) a trial whose learning curve looks
hopeless against the finished trials stops early; it is still a COMPLETED trial,
scored at its kept epoch (the best so far with early stopping), and its summary
says why (`stopped_early`). Every summary records the objective per epoch
(`curve`), the history the rules read. Cross-validated trials are never stopped
(their folds would need one decision), and a distributed worker sees only its own
copy of the oracle's trials, so it stops less.

A trial that cannot finish raises keras-tuner's `FailedTrialError`: keras-tuner
records it as FAILED with the reason as its message, and the search goes on. That
covers a loss that became NaN (training stops at that batch), running out of
memory (the model-size cap drops below the model's size), and a parent whose
weights file is missing or damaged (the parent is marked FAILED too). Any other
exception in a trial is recorded the same way by keras-tuner. A disk too full for the
trial's weights (`automl.training.weights`: checked before writing, written whole or
not at all) fails the trial too ("disk full at PATH"), and then stops the search with
a `SearchError` that says how to resume.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable

import keras
import numpy as np

from automl.engine import keras_tuner_api as kt
from automl.engine.keras_tuner_api import FailedTrialError
from automl.engine.oracle import ARCH, PARENT, StrategyOracle
from automl.engine.predictions import SHA_KEY, save_predictions
from automl.engine.summaries import trial_line
from automl.errors import DamagedFileError, DiskFullError, TrainingDiverged
from automl.graph.architecture import ArchitectureGraph
from automl.project import layout
from automl.project.files import checksum, read_json, write_json
from automl.reporting.progress import SearchProgress
from automl.search.cost import final_builds
from automl.search.stopping import StoppingRule, make_rule
from automl.training.fit import (
    StopHopeless,
    fit_trial,
    inference_ms,
    is_out_of_memory,
    load_checked_weights,
)
from automl.training.weights import is_no_space, save_weights, search_stopped


class GraphTuner(kt.Tuner):
    """Runs the trials an `StrategyOracle` proposes.

    Args:
        oracle: the oracle.
        build_fn: graph -> compiled `keras.Model` (the task's preprocessing included).
        make_dataset: (inputs, targets, shuffle) -> what `model.fit` takes; called in each
            trial after its seed is set.
        epochs: fixed epochs per trial, or None for early stopping.
        patience: early-stopping patience in epochs.
        monitor_loss: stop early on the validation loss, keeping the epoch with the
            lowest one (the score is still the objective at that epoch); with False, on
            the objective. Cross-validated trials always stop on the loss.
        max_epochs: most epochs per trial with early stopping.
        folds: (train, val) pairs to score each trial by cross-validation (empty: the
            train and validation data given to `search`).
        noise_std: noise added to inherited weights to break symmetry.
        widen_noise: noise on the units a widen copies, relative to their layer's
            kernel (see `automl.morphism.weights.inherit_weights`).
        widen_mode: where a widen's copies start: "split" (their outgoing weights
            divided with the units they copy) or "zero" (zero outgoing weights).
        progress: the `SearchProgress` that shows the trials (None: silent).
        fit_options: run name -> more `fit_trial` arguments (callbacks, class weights).
        stopping: the rule that stops hopeless trials: "curve", "median", "halving"
            (see `automl.search.stopping.make_rule`), a `StoppingRule`, or None to stop none.
        schedule: "cosine": the learning rate decays to each trial's planned last epoch
            (`automl.training.fit.ScheduleToPlan`); None: a constant rate.
        directory, project_name, overwrite: as in keras-tuner.
    """

    def __init__(
        self,
        oracle: StrategyOracle,
        build_fn: Callable,
        make_dataset: Callable,
        *,
        epochs: int | None = None,
        patience: int = 5,
        monitor_loss: bool = False,
        max_epochs: int = 200,
        folds: list | None = None,
        noise_std: float = 0.0,
        widen_noise: float = 0.0,
        widen_mode: str = "split",
        progress=None,
        fit_options: Callable[[str], dict] | None = None,
        stopping: str | StoppingRule | None = None,
        schedule: str | None = None,
        directory=None,
        project_name=None,
        overwrite=False,
    ):
        self.build_fn = build_fn
        self.stop_error = None  # a SearchError that ends the search after this trial
        self.make_dataset = make_dataset
        self.epochs = epochs
        self.patience = patience
        self.monitor_loss = monitor_loss
        self.max_epochs = max_epochs
        self.folds = list(folds or [])
        self.noise_std = noise_std
        self.widen_noise = widen_noise
        self.widen_mode = widen_mode
        self.progress = progress or SearchProgress(0, oracle.max_trials)
        self.fit_options = fit_options or (lambda run: {})
        if schedule not in (None, "cosine"):
            raise ValueError(f"schedule must be 'cosine' or None. Received: {schedule!r}.")
        self.schedule = schedule
        self.stop_rule = (
            stopping
            if isinstance(stopping, StoppingRule)
            else make_rule(stopping, epochs=epochs, patience=patience, max_epochs=max_epochs)
        )
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):  # keras-tuner prints "Reloading Tuner ..."
            super().__init__(
                oracle, directory=directory, project_name=project_name, overwrite=overwrite
            )
        if "Reloading" in printed.getvalue():
            self.progress.write(f"continuing the search in {self.project_dir}")

    # ------------------------------------------------------------------ files
    def weights_path(self, trial_id: str, fold: int = 0) -> str:
        """A trial's weights file (of cross-validation fold `fold`; fold 0 is the trial's model)."""
        return os.path.join(self.get_trial_dir(trial_id), layout.weights_file(fold))

    def weights_sha256(self, trial_id: str, fold: int = 0) -> str | None:
        """The recorded SHA-256 of a trial's weights file (None if the summary has none)."""
        summary = self.trial_summary(trial_id)
        if not fold:
            return summary.get("weights_sha256")
        recorded = summary.get("fold_sha256") or []
        return recorded[fold - 1] if fold <= len(recorded) else "missing"

    def trial_summary(self, trial_id: str) -> dict:
        return read_json(os.path.join(self.get_trial_dir(trial_id), layout.SUMMARY_FILE), {})

    def trial_graph(self, trial_id: str) -> ArchitectureGraph:
        trial = self.oracle.get_trial(trial_id)
        return ArchitectureGraph.from_json(trial.hyperparameters.values[ARCH])

    def load_model(self, trial) -> keras.Model:
        """The trained model of a finished trial.

        Raises:
            DamagedFileError: its weights file is missing or fails its checksum.
        """
        model = self.build_fn(self.trial_graph(trial.trial_id))
        load_checked_weights(
            model, self.weights_path(trial.trial_id), self.weights_sha256(trial.trial_id)
        )
        return model

    def save(self):
        """Save the oracle and the tuner's state, atomically."""
        self.oracle.save()
        write_json(self.tuner_file(), self.get_state())

    def reload(self):
        read_json(self.tuner_file())  # a damaged file is named in the error
        super().reload()

    # ------------------------------------------------------------------ trials
    def _inherit(
        self,
        trial_id: str,
        model,
        graph: ArchitectureGraph,
        parent_id: str,
        fold: int = 0,
        parent=None,
    ) -> keras.Model:
        """Start `model` from its parent's trained weights (of the same cross-validation fold).

        Returns the parent's model, to pass back as `parent` for the next fold.

        Raises:
            FailedTrialError: the parent's weights file is missing or damaged (the
                parent is marked FAILED).
        """
        from automl.morphism.weights import inherit_weights

        parent_graph = self.trial_graph(parent_id)
        parent = parent or self.build_fn(parent_graph)
        try:
            load_checked_weights(
                parent, self.weights_path(parent_id, fold), self.weights_sha256(parent_id, fold)
            )
        except DamagedFileError as err:
            self.oracle.mark_failed(parent_id, f"{err}; this trial is no longer used")
            raise FailedTrialError(f"Cannot grow from trial {parent_id}: {err}.") from None
        rng = np.random.default_rng([self.oracle.search_seed, int(trial_id), fold])
        inherit_weights(
            parent,
            parent_graph,
            model,
            graph,
            noise_std=self.noise_std,
            rng=rng,
            widen_noise=self.widen_noise,
            widen_mode=self.widen_mode,
        )
        return parent

    def run_trial(self, trial, train_data, validation_data):
        """Train the trial's model and save its weights and summary; returns its score.

        The progress display shows the trial's epochs, then its result or failure.
        """
        self.progress.trial_started(trial.trial_id, self.epochs)
        try:
            result, line = self._train_trial(trial, train_data, validation_data)
        except BaseException as err:
            self.progress.trial_failed(trial.trial_id, err)
            raise
        self.progress.trial_ended(next(iter(result.values())), line)
        return result

    def _stopper(self) -> StopHopeless | None:
        """The callback that stops a hopeless trial, from the finished trials' curves and
        scores; None without a rule, with cross-validation, or before any trial finished."""
        if self.stop_rule is None or self.folds:
            return None
        curves, scores = [], []
        for summary in self.oracle.finished_summaries():  # a worker's: every worker's trials
            if summary.get("score") is None:
                continue
            scores.append(float(summary["score"]))
            curve = summary.get("curve")
            if curve:  # trials of an older version have none
                curves.append([float("nan") if v is None else float(v) for v in curve])
        if not scores:
            return None
        objective = self.oracle.objective
        best = max(scores) if objective.direction == "max" else min(scores)
        return StopHopeless(self.stop_rule, objective.name, objective.direction, curves, best)

    def _train_trial(self, trial, train_data, validation_data):
        """Train the trial's model and save its weights and summary; (score, its line).

        With cross-validation folds the model is trained once per fold (a child from
        its parent's model of that fold), stopping early on the validation loss, and
        its score is the mean over the folds of the objective at the kept epochs; the
        first fold's weights are the trial's model. Without folds, the stopping rule
        may end the training early (`_stopper`).

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
        name, parent = self.oracle.objective.name, values.get(PARENT, "")
        folds = self.folds or [(train_data, validation_data)]
        stopper = self._stopper()
        try:
            model = self.build_fn(graph)
            build_seconds = time.time() - start
            model.optimizer.build(model.trainable_variables)
            fresh = [model.get_weights(), [v.numpy() for v in model.optimizer.variables]]
            runs, parent_model, deadline = [], None, self.oracle.trial_deadline()
            if deadline is not None:  # this trial may be a member of the final model too
                deadline -= build_seconds * final_builds(len(self.folds))
            budget = self.oracle.trial_budget()  # shared by the folds
            budget = None if budget is None else budget / len(folds)
            for fold, (train, val) in enumerate(folds):
                if fold:  # the same start as fold 0: initial weights, a fresh optimizer
                    model.set_weights(fresh[0])
                    for variable, value in zip(model.optimizer.variables, fresh[1]):
                        variable.assign(value)
                if parent:
                    parent_model = self._inherit(
                        trial.trial_id, model, graph, parent, fold, parent_model
                    )
                runs.append(
                    fit_trial(
                        model,
                        self.make_dataset(*train, shuffle=True),
                        self.make_dataset(*val, shuffle=False),
                        objective=name,
                        direction=self.oracle.objective.direction,
                        epochs=self.epochs,
                        max_epochs=self.max_epochs,
                        patience=self.patience,
                        deadline=deadline,
                        budget=budget,
                        monitor_loss=self.monitor_loss or bool(self.folds),
                        stop_rule=stopper,
                        schedule=self.schedule == "cosine",
                        converge_epochs=None if parent else self.oracle.converge_epochs or None,
                        **self.fit_options(f"trial_{trial.trial_id}"),
                    )
                )
                save_weights(model, self.weights_path(trial.trial_id, fold))
            predictions_sha = None
            if not self.folds and not getattr(validation_data[0], "is_stream", False):
                predictions = model.predict(
                    self.make_dataset(*validation_data, shuffle=False), verbose=0
                )
                folder = self.get_trial_dir(trial.trial_id)
                predictions_sha = save_predictions(
                    os.path.join(folder, layout.VAL_PREDICTIONS_FILE), predictions
                )
        except DiskFullError as err:  # the trial fails, then the search stops (on_trial_end)
            self.stop_error = search_stopped(err, self.project_dir)
            raise FailedTrialError(f"The trial failed: {err}.") from None
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
        # each fold's score is that of the epoch whose weights the model keeps
        fold_scores = [float(scores[kept]) for scores, kept, _ in runs]
        score = float(np.mean(fold_scores))
        scores, kept, timing = runs[0]
        if all("val_loss" in info for _, _, info in runs):
            timing["val_loss"] = float(np.mean([info["val_loss"] for _, _, info in runs]))
        sha = [checksum(self.weights_path(trial.trial_id, f)) for f in range(len(folds))]
        # timing is fold 0's info: epoch times, val_loss, curve and any stopped_early reason
        summary = {
            "key": graph.key(),
            "params": graph.count_params(),
            "epochs": len(scores),
            "best_epoch": kept + 1,
            "score": score,
            "seconds": round(time.time() - start, 2),
            "parent": parent,
            "strategy": values.get("strategy", ""),
            **timing,
            "build_seconds": round(build_seconds, 3),
            "weights_sha256": sha[0],
            "inference_ms": inference_ms(model, folds[-1][1][0]),
            "worker": self.tuner_id,
            "finished_at": time.time(),
        }
        if predictions_sha is not None:
            summary[SHA_KEY] = predictions_sha
        if self.folds:
            summary.update(folds=len(folds), fold_scores=fold_scores, fold_sha256=sha[1:])
        write_json(os.path.join(self.get_trial_dir(trial.trial_id), layout.SUMMARY_FILE), summary)
        return {name: score}, trial_line(trial.trial_id, name, score, summary)

    def save_model(self, trial_id, model, step=0):
        save_weights(model, self.weights_path(trial_id))

    def on_trial_end(self, trial):
        """Record the ended trial; then stop the search with a `SearchError` (`stop_error`)
        if the disk is full, which says how to resume."""
        try:
            super().on_trial_end(trial)
        except OSError as err:  # the trial's state files found the disk full
            if not is_no_space(err):
                raise
            self.stop_error = search_stopped(err, self.project_dir)
        if self.stop_error is not None:
            raise self.stop_error
