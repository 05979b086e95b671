"""The estimators: `fit` / `predict` / `evaluate` / `export_model` on images and tables.

An estimator only orchestrates. `__init__` stores arguments (scikit-learn rules);
`fit` checks them and the data before any training, fits the preprocessing and
the task head (`automl.data.heads`), hands both to the strategy's search backend
(`automl.engine`), and turns the best finished trials into one model with the
final-model step (`automl.engine.final`). Preprocessing and, for regression,
target scaling live in the model as built-in Keras layers, so `export_model()`
takes raw inputs.
"""

from __future__ import annotations

import re
import time

import numpy as np

from automl.data import arrays as data_mod
from automl.errors import InputError, NotFittedError, SearchError
from automl.estimators.options import (
    balanced_weights,
    check_fit_options,
    check_params,
    trial_limit,
)
from automl.estimators.results import SearchResults

_PARAMS = (
    "strategy",
    "max_trials",
    "time_limit",
    "epochs",
    "directory",
    "project_name",
    "overwrite",
    "seed",
    "max_model_size",
    "batch_size",
    "verbose",
    "cell_options",
    "ensemble_size",
    "tensorboard_dir",
    "chief",
    "worker",
    "break_lock",
    "token",
    "tls",
)


class AutoModel(SearchResults):
    """Shared machinery of the four estimators (not public).

    Fitted attributes (the same for every strategy): `model_` (the exported model),
    `preprocessor_`, `head_` and `target_` (the target encoding), `backend_` (the
    search backend, which holds the trials), `best_trial_id_`, `best_architecture_`
    (an `ArchitectureGraph`, or a cell `Genotype` for cell strategies),
    `ensemble_trial_ids_`, `seconds_` and `calibration_` (for members chosen on their
    validation predictions: their weights, the validation score of the ensemble and of
    the best single trial, the temperature, and the calibration error before and after
    it; None otherwise).
    """

    _kind = "image"
    _task = "classification"

    def __init__(
        self,
        strategy: str = "bayesian",
        max_trials: int | None = None,
        time_limit=None,
        epochs: int | None = None,
        directory: str = "automl_runs",
        project_name: str | None = None,
        overwrite: bool = False,
        seed: int = 0,
        max_model_size: int | None = None,
        batch_size: int = 32,
        verbose: int = 1,
        cell_options: dict | None = None,
        ensemble_size: int = 5,
        tensorboard_dir: str | None = None,
        chief: str | None = None,
        worker: str | None = None,
        break_lock: bool = False,
        token: str | None = None,
        tls: dict | None = None,
    ):
        self.strategy = strategy
        self.max_trials = max_trials
        self.time_limit = time_limit
        self.epochs = epochs
        self.directory = directory
        self.project_name = project_name
        self.overwrite = overwrite
        self.seed = seed
        self.max_model_size = max_model_size
        self.batch_size = batch_size
        self.verbose = verbose
        self.cell_options = cell_options
        self.ensemble_size = ensemble_size
        self.tensorboard_dir = tensorboard_dir
        self.chief = chief
        self.worker = worker
        self.break_lock = break_lock
        self.token, self.tls = token, tls  # a chief's and its workers' (automl.engine.security)

    # ------------------------------------------------------------------ params
    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in _PARAMS:
                raise InputError(
                    f"Unknown parameter {name!r} for {type(self).__name__}. Known: {list(_PARAMS)}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        shown = {**self.get_params(), **({"token": "***"} if self.token else {})}
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({args})"

    def _check_params(self) -> tuple[float | None, dict]:
        """(time limit in seconds, the backend's resolved options); InputError if wrong.

        Also sets `_role`, this process's part in the search (one process, chief or worker).
        """
        time_limit, options, self._role = check_params(self)
        return time_limit, options

    # ------------------------------------------------------------------ data
    def _prepare(self, x, y, validation_split, validation_data, sample_weight=None):
        """Fit the preprocessing and the head; (train, val, train + val or None, folds, fingerprint)."""
        from automl.estimators import in_memory, streaming

        if streaming.is_stream(x):  # read batch by batch, never whole
            return streaming.prepare(self, x, y, validation_split, validation_data, sample_weight)
        return in_memory.prepare(self, x, y, validation_split, validation_data, sample_weight)

    def _project_name(self) -> str:
        return self.project_name or re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    def _signature(self, options: dict, data: str) -> dict:
        signature = {
            "task": type(self).__name__,
            "strategy": self.strategy,
            "input": list(self.preprocessor_.graph_shape),
            "outputs": self.head_.n_outputs,
            "data": data,
        }
        if options:
            signature["cell_options"] = options
        return signature

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        x,
        y=None,
        validation_split: float = 0.2,
        validation_data=None,
        callbacks: list | None = None,
        class_weight=None,
        sample_weight=None,
    ):
        """Search for a model, then refit the best ones on train + validation data.

        Args:
            x: images (samples, H, W[, C]) or a table (2-D array or DataFrame), or a
                stream, read batch by batch and never whole: a `tf.data.Dataset` of
                (x, y) pairs (or (x, y, sample_weight)), batched or not; a finite
                `keras.utils.PyDataset` of such batches; for image estimators, the
                path of a folder with one subfolder of images per class; for table
                estimators, the path of a CSV file (`y` names its target column).
                A stream is split by a hash of each element's position (a
                PyDataset's: each batch's) and the seed; its trials are never
                cross-validated. See `automl.data.streaming`.
            y: labels (ints, strings or one-hot) or regression targets; None for a
                stream (the name of the target column for a CSV file).
            validation_split: fraction held out to score trials (ignored when
                `validation_data` is given, and for tables of fewer than 1,000 rows,
                whose trials are scored by 5-fold cross-validation).
            validation_data: (x_val, y_val) or a dataset, used to score trials; with a
                stream x it may be a stream too (read again by every trial).
            callbacks: Keras callbacks, passed to every trial's `model.fit` and to the
                refit of the final model.
            class_weight: classifiers: {label: weight}, or "balanced" (weights
                inversely proportional to the class counts), applied to the loss of
                every trial and the refit.
            sample_weight: a non-negative weight per sample of `x`, applied to the
                training loss (and to the validation loss) of every trial and the refit.

        Returns:
            self.

        Raises:
            InputError: for bad arguments or data, before any training.
            SearchError: when no trial finished, so there is no model.
        """
        from automl.engine.base import Budget
        from automl.project.folder import Project

        time_limit, options = self._check_params()
        max_trials, open_trials = trial_limit(self.max_trials, time_limit)
        budget = Budget(max_trials, time_limit, open_trials=open_trials)
        train, val, full, folds, data = self._prepare(
            x, y, validation_split, validation_data, sample_weight
        )
        balanced = isinstance(class_weight, str) and class_weight == "balanced"
        callbacks, class_weight = check_fit_options(
            callbacks, class_weight, self._task, list(self.head_.target.classes)
        )
        if balanced:
            class_weight = balanced_weights((full or train)[1], self.head_.n_outputs)
        worker = self._role.kind == "worker"  # a worker never starts the project over
        project = Project(
            self.directory, self._project_name(), self.overwrite and not worker, self.break_lock
        )
        signature = self._signature(options, data)
        project.check_writable()
        fit_options = {"callbacks": callbacks, "class_weight": class_weight}
        if worker:
            return self._work(project, signature, budget, options, train, val, folds, fit_options)
        project.lock()
        try:
            return self._search(
                project, signature, budget, options, train, val, full, folds, fit_options
            )
        finally:
            project.unlock()

    def _search(
        self,
        project,
        signature: dict,
        budget,
        options: dict,
        train,
        val,
        full,
        folds,
        fit_options: dict,
    ):
        """Run the search in the locked `project`, then keep the final model."""
        from automl.engine.final import final_model
        from automl.engine.registry import backend_class

        project.check(signature)
        project.start(signature, clear=bool(self.overwrite))
        refit_data = None if folds else full  # the fold models have seen all the data
        context = self._context(
            project, budget, options, folds, fit_options, refit=refit_data is not None
        )
        backend = backend_class(self.strategy)(context)
        backend.search(train, val)
        ranked = backend.candidates()
        if not ranked:
            failed = [
                f"trial {r['trial_id']}: {r['reason']}"
                for r in backend.summary_rows()
                if r.get("reason")
            ]
            why = (
                ("; ".join(failed[:3]) + (" ..." if len(failed) > 3 else ""))
                if failed
                else ("the time limit ended the search before any trial finished")
            )
            raise SearchError(
                f"No trial finished, so there is no model ({why}). Fix the cause, or raise "
                f"time_limit; the trials' messages are in {project.path}."
            )
        self.model_, members, self.calibration_ = final_model(
            context, backend, ranked, refit_data, self.ensemble_size, budget.deadline, val=val
        )
        self.backend_ = backend
        self.best_trial_id_ = members[0].trial_id  # the best trial with intact weights
        self.best_architecture_ = members[0].architecture
        self.ensemble_trial_ids_ = [c.trial_id for c in members]
        self.seconds_ = time.time() - budget.started
        return self

    def _context(
        self, project, budget, options: dict, folds, fit_options: dict, refit: bool = False
    ):
        from automl.engine.base import SearchContext

        return SearchContext(
            self.preprocessor_,
            self.head_,
            project,
            self.strategy,
            budget,
            epochs=self.epochs,
            seed=self.seed,
            batch_size=self.batch_size,
            max_model_size=self.max_model_size,
            options=options,
            folds=folds,
            ensemble_size=self.ensemble_size,
            refit=refit,
            verbose=self.verbose,
            tensorboard_dir=self.tensorboard_dir,
            role=self._role,
            **fit_options,
        )

    def _work(
        self, project, signature: dict, budget, options: dict, train, val, folds, fit_options: dict
    ):
        """As a worker: train the trials the chief hands out until its search ends.

        The chief builds the final model; this estimator keeps `trials_run_`.
        """
        from automl.engine.registry import backend_class

        backend = backend_class(self.strategy)(
            self._context(project, budget, options, folds, fit_options)
        )
        project.check_joined(signature)  # the chief wrote it before it started serving
        backend.search(train, val)
        self.trials_run_ = backend.tuner.oracle.trials_run
        return self

    # ------------------------------------------------------------------ use
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            if hasattr(self, "trials_run_"):
                raise NotFittedError(
                    f"This {type(self).__name__} ran as a worker of the chief at "
                    f"{self._role.address}; the chief holds the model."
                )
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(x, y) first."
            )

    def _raw_predict(self, x) -> np.ndarray:
        from automl.estimators import streaming

        self._check_fitted()
        if streaming.is_stream(x):
            return streaming.predict(self, x)
        x, _ = data_mod.to_arrays(x)
        inputs = self.preprocessor_.transform(x)
        return np.asarray(self.model_.predict(data_mod.as_dataset(inputs), verbose=0))

    def predict(self, x) -> np.ndarray:
        """Predictions in the label space of `y` (class labels, one-hot, or targets)."""
        self._check_fitted()
        return self.head_.decode(self._raw_predict(x))

    def evaluate(self, x, y=None) -> dict:
        """Loss and metric on (x, y): {"loss", "accuracy"} or {"loss", "mse"}.

        `x` may be a stream, as in `fit`; a CSV file's target column is the one of fit
        unless `y` names another.
        """
        from automl.estimators import streaming

        self._check_fitted()
        if streaming.is_stream(x):
            return streaming.evaluate(self, x, y)
        x, y = data_mod.to_arrays(x, y)
        if y is None:
            raise InputError("evaluate needs targets: pass y, or a dataset of (x, y) pairs.")
        ds = data_mod.as_dataset(self.preprocessor_.transform(x), self.head_.encode(y))
        result = self.model_.evaluate(ds, verbose=0, return_dict=True)
        return {k: float(v) for k, v in result.items()}

    def export_model(
        self,
        format: str | None = None,
        path=None,
        *,
        max_params: int | None = None,
        max_latency_ms: float | None = None,
    ):
        """The trained model, as a `keras.Model` or written to a file.

        Without `path` it returns the `keras.Model` (raw inputs in, probabilities or
        targets out); saved with `model.save("m.keras")` it loads with
        `keras.models.load_model` in a fresh process, safe mode on, without automl.
        With `path` it writes the model and returns the path. Formats:

        - "keras": a `.keras` file without optimizer state, and beside it
          `PATH.automl.json` (the preprocessing and labels, for `automl predict`).
        - "savedmodel": a TensorFlow SavedModel folder, signature `serving_default`.
        - "tflite": a TensorFlow Lite file.
        - "onnx": an ONNX file (needs `pip install 'automl-keras[onnx]'`).

        SavedModel, TFLite and ONNX hold the preprocessing, take raw inputs and fill
        missing values (NaN) inside; a table fit on a DataFrame takes one input per
        column, named after it: float32 numbers, text as strings
        (`automl.export.formats.table_feed(estimator.preprocessor_, frame)` builds them).
        Their output is named "output".

        Args:
            format: one of "keras", "savedmodel", "tflite", "onnx"; by default taken
                from the path's extension (a path without one is a SavedModel folder).
            path: where to write; None returns the `keras.Model`.
            max_params, max_latency_ms: export the best single trial with at most
                this many parameters and at most this inference time per sample
                (`search_summary()`'s `inference_ms`) instead of the final model;
                it is the trial's model as trained, without the final refit.

        Raises:
            InputError: an unknown format, a path that cannot be written, or no
                trial within the limits.
        """
        from automl.export import formats as serving
        from automl.export import keras_file as export

        self._check_fitted()
        fmt = export.check_format(format, path)
        model = self.model_
        if max_params is not None or max_latency_ms is not None:
            model = self._best_within(max_params, max_latency_ms)
        if path is None:
            return model
        if fmt == "keras":
            return export.save_model(self, path, model=model)
        return serving.save_graph_format(
            model, self.preprocessor_, fmt, export.check_output(path, fmt)
        )


class AutoClassifier(AutoModel):
    _task = "classification"

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities, columns in the order of `classes_`."""
        return self._raw_predict(x)

    @property
    def classes_(self) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.target_.classes)
