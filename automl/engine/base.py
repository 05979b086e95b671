"""The search-backend interface, and what every backend is given.

An estimator's `fit` hands a `SearchContext` (the fitted preprocessing, the task
head, the project directory, the budget and the training settings) to a
`SearchBackend`. The backend searches and keeps its trials in the project
directory, then reports its finished trials as `Candidate`s, best first; the
final-model step (`automl.engine.final`) loads, refits and combines them. Two
backends exist: `GraphSearch` (strategies over architecture graphs, run through
keras-tuner) and `CellSearch` (a differentiable supernet search over cells, then
its genotypes trained as trials).

Every candidate knows how to apply its architecture to a Keras tensor under a
layer-name prefix, so the final step can put several side by side in one model
and copy each member's trained weights in by layer name.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from automl.data import arrays as data_mod
from automl.data.heads import Head
from automl.data.preprocessing import Preprocessor
from automl.engine.summaries import trial_order
from automl.errors import InputError
from automl.project.folder import Project


def final_reserve(seconds: float | None) -> float:
    """Seconds of a time limit kept for the final model (loading, ensembling, one refit)."""
    return 0.0 if seconds is None else min(max(3.0, 0.08 * seconds), 120.0)


@dataclass
class Budget:
    """A search's limits: trials and wall-clock seconds from `start()`.

    The time limit bounds the whole `fit`; the search itself ends at `search_deadline`,
    which keeps `final_reserve` seconds for the final model.
    """

    max_trials: int
    seconds: float | None = None
    started: float = field(default_factory=time.time)
    open_trials: bool = False  # max_trials is not the user's: trials go on while time is left

    def start(self) -> None:
        self.started = time.time()

    @property
    def deadline(self) -> float | None:
        return None if self.seconds is None else self.started + self.seconds

    @property
    def search_deadline(self) -> float | None:
        return None if self.seconds is None else self.deadline - final_reserve(self.seconds)

    def left(self) -> float:
        """Seconds left (inf without a time limit)."""
        return float("inf") if self.seconds is None else self.deadline - time.time()

    def search_left(self) -> float:
        """Seconds left for the search (inf without a time limit)."""
        return float("inf") if self.seconds is None else self.search_deadline - time.time()


@dataclass
class SearchContext:
    """What a backend needs from the estimator; built once per `fit`."""

    preprocessor: Preprocessor
    head: Head
    project: Project
    strategy: str
    budget: Budget
    epochs: int | None = None
    seed: int = 0
    batch_size: int = 32
    max_model_size: int | None = None
    options: dict = field(default_factory=dict)
    folds: list = field(default_factory=list)  # (train, val) pairs when cross-validating
    ensemble_size: int = 5
    refit: bool = False  # whether the final model's members are refit on train + validation
    verbose: int = 1
    callbacks: list = field(default_factory=list)  # the user's Keras callbacks
    class_weight: dict | None = None  # class index -> weight
    tensorboard_dir: str | None = None
    progress: Any = None  # a `SearchProgress`; made from `verbose` when None
    role: Any = None  # an `automl.engine.distributed.Role`; one process when None

    def __post_init__(self):
        if self.role is None:
            from automl.engine.distributed import Role

            self.role = Role()
        if self.progress is None:
            from automl.reporting.progress import SearchProgress

            head = self.head
            self.progress = SearchProgress(
                self.verbose,
                None if self.budget.open_trials else self.budget.max_trials,
                self.budget.seconds,
                head.objective,
                head.direction,
                started=self.budget.started,
            )

    def log(self, line: str) -> None:
        """Write one progress line (when `verbose`)."""
        self.progress.write(line)

    def fit_options(self, run: str, trial: bool = True) -> dict:
        """What each `model.fit` of the search and the refit takes from the user: callbacks
        (the progress display's for a `trial`, the user's, and a TensorBoard log in
        `tensorboard_dir/run`) and class weights."""
        import os

        callbacks = [self.progress.callback()] if trial else []
        callbacks += self.callbacks
        if self.tensorboard_dir:
            import keras

            log_dir = os.path.join(self.tensorboard_dir, run)
            callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir))
        return {"callbacks": callbacks, "class_weight": self.class_weight}

    def dataset(self, inputs, y, sample_weight=None, shuffle: bool = False):
        """Batched input data of the model (shuffled by the seed when `shuffle`), with a
        weight per sample when `sample_weight` is given. A part of a stream
        (`automl.data.streaming`) brings its own targets and weights and is read batch by batch."""
        seed = self.seed if shuffle else None
        if getattr(inputs, "is_stream", False):
            return inputs.dataset(self.batch_size, shuffle_seed=seed)
        return data_mod.as_dataset(
            inputs, y, self.batch_size, shuffle_seed=seed, sample_weight=sample_weight
        )

    def assemble(
        self,
        candidates: list[Candidate],
        learning_rate: float = 1e-3,
        weights: list[float] | None = None,
    ):
        """One compiled model: the preprocessing, each candidate's architecture, the head.

        With one candidate its layers keep their own names; with several, candidate i's
        layers are prefixed `m{i}_` and their outputs averaged ("ensemble_mean"), or,
        with unequal `weights` (one per candidate, summing to 1), each output scaled by
        its weight ("m{i}_weight", a `Rescaling` layer) and the results added
        ("ensemble_sum"). Built-in Keras layers only, so every export format takes it.
        """
        import keras

        inputs, x = self.preprocessor.build_inputs()
        if len(candidates) == 1:
            out = candidates[0].apply(x, "")
        else:
            outs = [c.apply(x, f"m{i}_") for i, c in enumerate(candidates)]
            if weights is None or len(set(weights)) == 1:
                out = keras.layers.Average(name="ensemble_mean")(outs)
            else:
                scaled = [
                    keras.layers.Rescaling(float(w), name=f"m{i}_weight")(o)
                    for i, (w, o) in enumerate(zip(weights, outs))
                ]
                out = keras.layers.Add(name="ensemble_sum")(scaled)
        model = keras.Model(inputs, self.head.output(out), name="automl_model")
        self.head.compile(model, learning_rate)
        return model


@dataclass
class Candidate:
    """A finished trial, as the final-model step sees it.

    Attributes:
        trial_id: the trial's id in its backend.
        score: the objective's value (for example validation accuracy).
        architecture: the architecture (an `ArchitectureGraph` or a cell `Genotype`).
        apply: `(tensor, prefix) -> tensor`, the architecture's layers on a Keras tensor.
        summary: what the backend recorded (epochs, best_epoch, seconds, ...).
    """

    trial_id: str
    score: float
    architecture: Any
    apply: Callable
    summary: dict = field(default_factory=dict)


class SearchBackend(abc.ABC):
    """Searches, keeps its trials in the project directory, and reports them.

    Subclasses implement the abstract methods below. A backend reused on the same
    project with `overwrite=False` continues from the trials it finds there. The
    budget's time limit bounds the whole `fit`: a backend's search ends by
    `budget.search_deadline`, which leaves time for the final model.
    """

    def __init__(self, context: SearchContext):
        self.context = context

    @classmethod
    def check_settings(cls, strategy: str, kind: str, task: str, options: dict | None) -> dict:
        """Refuse settings this backend cannot run; the options it will use (for the signature).

        Args:
            strategy: the strategy's name.
            kind: "image" or "table".
            task: "classification" or "regression".
            options: the estimator's `cell_options`.

        Raises:
            InputError: the backend cannot search this task, or the options are wrong.
        """
        if options:
            from automl.engine import registry

            cells = " or ".join(map(repr, registry.names(backend=registry.CELL_SEARCH)))
            raise InputError(
                f"cell_options apply to strategy={cells} only. "
                f"Received: strategy={strategy!r}, cell_options={options!r}."
            )
        return {}

    @abc.abstractmethod
    def search(self, train: tuple, val: tuple) -> None:
        """Run trials on `train` = (inputs, targets), scored on `val`, within the budget."""

    @abc.abstractmethod
    def candidates(self) -> list[Candidate]:
        """The finished trials, best first (ties broken by trial id)."""

    @abc.abstractmethod
    def load_model(self, candidate: Candidate):
        """A finished trial's trained, compiled `keras.Model`.

        Raises:
            automl.errors.DamagedFileError: its weights are missing or damaged.
        """

    @abc.abstractmethod
    def mark_failed(self, candidate: Candidate, reason: str) -> None:
        """Record a finished trial as FAILED (its files are damaged); it is never used again."""

    @abc.abstractmethod
    def summary_rows(self) -> list[dict]:
        """One row per trial or candidate (see `SUMMARY_COLUMNS`)."""


SUMMARY_COLUMNS = [
    "trial_id",
    "score",
    "val_loss",
    "params",
    "inference_ms",
    "seconds",
    "epochs",
    "parent",
    "morphism",
    "status",
    "reason",
    "strategy",
    "key",
    "search_score",
    "finished_at",
]


def rank(candidates: list[Candidate], head: Head) -> list[Candidate]:
    """Best first by the head's direction; ties broken by trial number."""
    return sorted(candidates, key=lambda c: (-head.sign * c.score, trial_order(c.trial_id)))
