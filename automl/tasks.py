"""The estimators: `fit` / `predict` / `evaluate` / `export_model` on images and tables.

`__init__` only stores arguments (scikit-learn rules); `fit` validates the data
before any training, searches, refits the best model on train + validation, and
keeps it as `model_`. Preprocessing and, for regression, target scaling live in
the model as built-in Keras layers, so `export_model()` takes raw inputs.
"""

from __future__ import annotations

import json
import os
import re
import time

import numpy as np

from automl import data as data_mod
from automl.errors import InputError, NotFittedError

_STRATEGIES = ("bayesian", "random", "evolution", "milenas", "darts")
# Budgets on real data are tens of trials, not hundreds: fewer random starts.
_STRATEGY_ARGS = {"bayesian": {"n_initial": 2}, "evolution": {"population_size": 4}}


def parse_time_limit(value) -> float | None:
    """Seconds from a number or a string like "90s", "30m", "1h30m"; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise InputError(f"time_limit must be positive. Received: time_limit={value!r}.")
        return float(value)
    match = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*",
                         str(value))  # fmt: skip
    if not match or not any(match.groups()) or not str(value).strip():
        raise InputError(
            f"time_limit must be seconds or a string like '90s', '30m', '1h30m'. "
            f"Received: time_limit={value!r}."
        )
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    seconds = 3600 * h + 60 * m + s
    if seconds <= 0:
        raise InputError(f"time_limit must be positive. Received: time_limit={value!r}.")
    return seconds


class _AutoModel:
    """Shared machinery of the four estimators (not public)."""

    _kind = "image"
    _task = "classification"

    def __init__(self, strategy: str = "bayesian", max_trials: int = 10, time_limit=None,
                 epochs: int | None = None, directory: str = "automl_runs",
                 project_name: str | None = None, overwrite: bool = False, seed: int = 0,
                 max_model_size: int | None = None, batch_size: int = 32,
                 verbose: int = 1, cell_options: dict | None = None,
                 ensemble_size: int = 5):  # fmt: skip
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

    # ------------------------------------------------------------------ params
    def get_params(self, deep: bool = True) -> dict:
        names = ("strategy", "max_trials", "time_limit", "epochs", "directory", "project_name",
                 "overwrite", "seed", "max_model_size", "batch_size", "verbose",
                 "cell_options", "ensemble_size")  # fmt: skip
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self.get_params():
                raise ValueError(f"Unknown parameter {name!r} for {type(self).__name__}.")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _log(self, line: str) -> None:
        if self.verbose:
            print(f"[automl] {line}", flush=True)

    def _check_params(self) -> float | None:
        if self.strategy not in _STRATEGIES:
            raise InputError(
                f"Unknown strategy {self.strategy!r}. Choose one of {list(_STRATEGIES)}."
            )
        if self.strategy in ("milenas", "darts"):
            if (self._kind, self._task) != ("image", "classification"):
                raise InputError(
                    f"strategy={self.strategy!r} searches image classifiers only; "
                    f"{type(self).__name__} supports 'bayesian', 'evolution' and 'random'."
                )
            from automl.cells.task import options

            options(self)
        for name in ("max_trials", "batch_size", "ensemble_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"{name} must be a positive integer. Received: {name}={value!r}.")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise InputError(
                f"epochs must be a positive integer, or None for early stopping. "
                f"Received: epochs={self.epochs!r}."
            )
        return parse_time_limit(self.time_limit)

    # ------------------------------------------------------------------ data
    def _fit_preprocessor(self, x):
        if self._kind == "image":
            return data_mod.Preprocessor.fit_images(x)
        return data_mod.Preprocessor.fit_table(x)

    def _dataset(self, inputs, y, shuffle: bool):
        seed = self.seed if shuffle else None
        return data_mod.as_dataset(inputs, y, self.batch_size, shuffle_seed=seed)

    def _prepare(self, x, y, validation_split, validation_data):
        x, y = data_mod.to_arrays(x, y)
        if y is None:
            raise InputError("fit needs targets: pass y, or a tf.data.Dataset of (x, y) pairs.")
        if len(x) != len(y):
            raise InputError(
                f"x and y have different numbers of samples. Received: len(x)={len(x)}, "
                f"len(y)={len(y)}."
            )
        if len(y) < 4:
            raise InputError(f"fit needs at least 4 samples. Received: {len(y)}.")
        self.preprocessor_ = self._fit_preprocessor(x)
        self.target_ = data_mod.TargetEncoder.fit(y, self._task)
        inputs, targets = self.preprocessor_.transform(x), self.target_.encode(y)
        if validation_data is not None:
            x_val, y_val = data_mod.to_arrays(*validation_data) if isinstance(
                validation_data, tuple) else data_mod.to_arrays(validation_data)  # fmt: skip
            val = (self.preprocessor_.transform(x_val), self.target_.encode(y_val))
            train = (inputs, targets)
        else:
            stratify = self._task == "classification"
            i_tr, i_val = data_mod.split_validation(x, targets, validation_split, stratify,
                                                    self.seed)  # fmt: skip
            train = (data_mod.take(inputs, i_tr), targets[i_tr])
            val = (data_mod.take(inputs, i_val), targets[i_val])
        return train, val, (inputs, targets) if validation_data is None else None

    # ------------------------------------------------------------------ model
    def _objective(self):
        import keras_tuner

        if self._task == "classification":
            return keras_tuner.Objective("val_accuracy", "max")
        return keras_tuner.Objective("val_mse", "min")

    def _build(self, graph, learning_rate: float = 1e-3):
        return self._assemble([graph], learning_rate)

    def _assemble(self, graphs: list, learning_rate: float = 1e-3):
        """One compiled model: the preprocessing, then the graphs' outputs averaged."""
        import keras

        from automl.graph.builder import apply_graph

        inputs, x = self.preprocessor_.build_inputs()
        if len(graphs) == 1:
            out = apply_graph(graphs[0], x)
        else:
            outs = [apply_graph(g, x, prefix=f"m{i}_") for i, g in enumerate(graphs)]
            out = keras.layers.Average(name="ensemble_mean")(outs)
        if self._task == "regression":
            out = keras.layers.Rescaling(scale=self.target_.std, offset=self.target_.mean,
                                         name="post_target_scale")(out)  # fmt: skip
            loss, metrics = "mse", [keras.metrics.MeanSquaredError(name="mse")]
        else:
            loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
        model = keras.Model(inputs, out, name="automl_model")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
        return model

    def _space(self):
        from automl.search.spaces import MorphismSpace

        activation = "softmax" if self._task == "classification" else "linear"
        return MorphismSpace(self.preprocessor_.graph_shape, self.target_.n_outputs, activation,
                             max_model_size=self.max_model_size)  # fmt: skip

    def _project(self) -> str:
        name = self.project_name or re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()
        return name

    def _signature_path(self) -> str:
        return os.path.join(self.directory, self._project(), "automl_task.json")

    def _check_project(self, signature: dict) -> None:
        path = self._signature_path()
        if self.overwrite or not os.path.exists(path):
            return
        with open(path) as f:
            stored = json.load(f)
        if stored != signature:
            raise InputError(
                f"The project {path!r} holds a search for other data or settings "
                f"({stored}); this fit has {signature}. Pass overwrite=True to start over, "
                "or choose another project_name or directory."
            )

    def _save_signature(self, signature: dict) -> None:
        path = self._signature_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(signature, f)

    # ------------------------------------------------------------------ fit
    def fit(self, x, y=None, validation_split: float = 0.2, validation_data=None):
        """Search for a model, then refit the best one on train + validation data.

        Args:
            x: images (samples, H, W[, C]) or a table (2-D array or DataFrame), or a
                `tf.data.Dataset` of (x, y) pairs.
            y: labels (ints, strings or one-hot) or regression targets.
            validation_split: fraction held out to score trials (ignored when
                `validation_data` is given).
            validation_data: (x_val, y_val) or a dataset, used to score trials.

        Returns:
            self.

        Raises:
            InputError: for bad arguments or data, before any training.
        """
        time_limit = self._check_params()
        train, val, full = self._prepare(x, y, validation_split, validation_data)
        signature = {"task": type(self).__name__, "strategy": self.strategy,
                     "input": list(self.preprocessor_.graph_shape),
                     "outputs": self.target_.n_outputs}  # fmt: skip
        self._check_project(signature)
        start = time.time()
        self.__dict__.pop("summary_rows_", None)
        if self.strategy in ("milenas", "darts"):
            from automl.cells.task import cell_search

            self.model_, self.summary_rows_ = cell_search(self, train, val, time_limit)
        else:
            self._graph_search(train, val, full, time_limit, signature)
        self.seconds_ = time.time() - start
        return self

    def _graph_search(self, train, val, full, time_limit, signature) -> None:
        from automl.search.base import get_strategy
        from automl.engine.oracle import StrategyOracle
        from automl.engine.tuner import GraphTuner

        strategy = get_strategy(self.strategy, **_STRATEGY_ARGS.get(self.strategy, {}))
        oracle = StrategyOracle(strategy, self._space(), self._objective(),
                                max_trials=self.max_trials, seed=self.seed,
                                time_limit=time_limit)  # fmt: skip
        tuner = GraphTuner(oracle, self._build, epochs=self.epochs, log=self._log if self.verbose
                           else None, directory=self.directory, project_name=self._project(),
                           overwrite=self.overwrite)  # fmt: skip
        self._save_signature(signature)
        self.tuner_ = tuner
        done = len(oracle.observations())
        self._log(f"searching with strategy={self.strategy!r}: {self.max_trials} trials"
                  + (f", {done} already finished" if done else "")
                  + (f", time limit {time_limit:.0f} s" if time_limit else ""))  # fmt: skip
        oracle.start_clock()
        tuner.search(self._dataset(*train, shuffle=True), self._dataset(*val, shuffle=False))
        ranked = oracle.get_best_trials(len(oracle.trials))
        if not ranked:
            from automl.errors import SearchError

            raise SearchError(
                "No trial finished, so there is no model. Look at the trial messages in "
                f"{tuner.project_dir}, or raise time_limit."
            )
        self.best_trial_id_ = ranked[0].trial_id
        self.best_graph_ = tuner.trial_graph(self.best_trial_id_)
        members = self._members(ranked)
        self.ensemble_trial_ids_ = [t.trial_id for t in members]
        models = []
        for trial in members:
            model = tuner.load_model(trial)
            self._refit(model, full, tuner.trial_summary(trial.trial_id), trial.trial_id)
            models.append(model)
        self.model_ = models[0] if len(models) == 1 else self._ensemble(members, models)

    def _members(self, ranked: list) -> list:
        """The best `ensemble_size` trials among those scoring at least the median.

        The median keeps trials that a time limit cut short (or that diverged) out.
        """
        sign = 1.0 if self._task == "classification" else -1.0  # accuracy up, mse down
        median = float(np.median([sign * t.score for t in ranked]))
        return [t for t in ranked if sign * t.score >= median][: self.ensemble_size]

    def _refit(self, model, full, summary: dict, trial_id: str) -> None:
        """Fine-tune a trial's model on train + validation at a tenth of its learning rate."""
        if full is None or not summary:
            return
        import keras

        epochs = max(1, min(summary.get("best_epoch", 1) // 2, 20))
        self._log(f"refitting trial {trial_id} on train + validation data for {epochs} epochs")
        rate = model.optimizer.learning_rate
        rate.assign(float(keras.ops.convert_to_numpy(rate)) * 0.1)
        model.fit(self._dataset(*full, shuffle=True), epochs=epochs, shuffle=False, verbose=0)

    def _ensemble(self, trials: list, models: list):
        """One model averaging the members' outputs, with the members' trained weights."""
        from automl.graph.builder import graph_layers

        ensemble = self._assemble([self.tuner_.trial_graph(t.trial_id) for t in trials])
        for i, model in enumerate(models):
            for name, layer in graph_layers(model).items():
                ensemble.get_layer(f"m{i}_{name}").set_weights(layer.get_weights())
        ensemble.optimizer.build(ensemble.trainable_variables)  # saved whole: no warning on load
        self._log(f"ensemble of trials {', '.join(self.ensemble_trial_ids_)} "
                  "(their outputs averaged)")  # fmt: skip
        return ensemble

    # ------------------------------------------------------------------ use
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(x, y) first."
            )

    def _raw_predict(self, x) -> np.ndarray:
        self._check_fitted()
        x, _ = data_mod.to_arrays(x)
        inputs = self.preprocessor_.transform(x)
        return np.asarray(self.model_.predict(data_mod.as_dataset(inputs), verbose=0))

    def predict(self, x) -> np.ndarray:
        """Predictions in the label space of `y` (class labels, one-hot, or targets)."""
        self._check_fitted()
        return self.target_.decode(self._raw_predict(x))

    def evaluate(self, x, y=None) -> dict:
        """Loss and metric on (x, y): {"loss", "accuracy"} or {"loss", "mse"}."""
        self._check_fitted()
        x, y = data_mod.to_arrays(x, y)
        if y is None:
            raise InputError("evaluate needs targets: pass y, or a dataset of (x, y) pairs.")
        ds = data_mod.as_dataset(self.preprocessor_.transform(x), self.target_.encode(y))
        result = self.model_.evaluate(ds, verbose=0, return_dict=True)
        return {k: float(v) for k, v in result.items()}

    def export_model(self):
        """The trained `keras.Model`: raw inputs in, probabilities (or targets) out.

        Saved with `model.save("m.keras")` it loads with `keras.models.load_model`
        in a fresh process, safe mode on, without automl.
        """
        self._check_fitted()
        return self.model_

    def search_summary(self):
        """One row per trial: trial_id, strategy, key, params, score, epochs, seconds, status."""
        import pandas as pd

        self._check_fitted()
        columns = ["trial_id", "strategy", "key", "params", "score", "epochs", "seconds",
                   "status"]  # fmt: skip
        if hasattr(self, "summary_rows_"):
            return pd.DataFrame(self.summary_rows_)
        rows = []
        for trial_id in sorted(self.tuner_.oracle.trials):
            trial = self.tuner_.oracle.trials[trial_id]
            info = self.tuner_.trial_summary(trial_id)
            rows.append({"trial_id": trial_id,
                         "strategy": trial.hyperparameters.values.get("strategy", self.strategy),
                         "key": info.get("key"), "params": info.get("params"),
                         "score": trial.score, "epochs": info.get("epochs"),
                         "seconds": info.get("seconds"), "status": trial.status})  # fmt: skip
        return pd.DataFrame(rows, columns=columns)


class _Classifier(_AutoModel):
    _task = "classification"

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities, columns in the order of `classes_`."""
        return self._raw_predict(x)

    @property
    def classes_(self) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.target_.classes)


class ImageClassifier(_Classifier):
    """Searches a Keras image classifier. Images (samples, H, W[, C]), any value range."""

    _kind = "image"


class ImageRegressor(_AutoModel):
    """Searches a Keras image regressor. Images (samples, H, W[, C]), any value range."""

    _kind = "image"
    _task = "regression"


class StructuredDataClassifier(_Classifier):
    """Searches a Keras classifier for tables (2-D arrays or DataFrames with any column types)."""

    _kind = "table"


class StructuredDataRegressor(_AutoModel):
    """Searches a Keras regressor for tables (2-D arrays or DataFrames with any column types)."""

    _kind = "table"
    _task = "regression"
