"""Keras training helpers the search backends share: a deadline, divergence, stopping
hopeless trials, loading weights."""

from __future__ import annotations

import math
import time
import warnings

import keras

from automl.errors import DamagedFileError, TrainingDiverged


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite."""

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.loss: float | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.loss = float(loss)
            self.model.stop_training = True


class StopAtDeadline(keras.callbacks.Callback):
    """Stops training once `deadline` (a `time.time()` value) has passed, or at the
    last epoch end that leaves room for another epoch within `budget` seconds.

    The deadline is checked after every batch, so a long epoch does not run past it;
    the budget at each epoch end, against the typical epoch so far (after the first
    epoch, that epoch less its first batch, which traces the step), so no epoch is cut
    half-way. The first `min_epochs` epochs
    always run, so a model is never left untrained. With `converge_epochs` the budget
    grows, once the first epochs are timed, to cover that many epochs (the deadline
    still bounds it): a trial that starts from scratch gets the time to converge even
    when its share of a short search is smaller. It also records when each epoch
    ended (`epoch_ends`, seconds after training began) and says how many epochs the
    training will run (`planned_epochs`).

    Args:
        deadline: the wall-clock time to stop at, or None for no limit.
        min_epochs: epochs that run whatever the time.
        budget: seconds of training, or None for no limit.
        converge_epochs: epochs the budget covers at least, or None.
    """

    def __init__(
        self,
        deadline: float | None,
        min_epochs: int = 0,
        budget: float | None = None,
        converge_epochs: int | None = None,
    ):
        super().__init__()
        self.deadline = deadline
        self.budget = budget
        self.min_epochs = min_epochs
        self.converge_epochs = converge_epochs
        self.epochs_done = 0
        self.stopped = False
        self.started = time.time()
        self.epoch_ends: list[float] = []
        self.first_batch: float | None = None  # when the first batch (and its tracing) ended

    def _check(self) -> None:
        if self.deadline is None or self.epochs_done < self.min_epochs:
            return
        if time.time() >= self.deadline:
            self.model.stop_training = True
            self.stopped = True

    def on_train_begin(self, logs=None):
        self.started = time.time()
        self.first_batch = None

    def on_train_batch_end(self, batch, logs=None):
        if self.first_batch is None:
            self.first_batch = time.time() - self.started
        self._check()

    def _epoch_seconds(self) -> float:
        """A typical epoch so far: until a second epoch ends, the first one less its first
        batch (which traces the train step: on a short budget, counting it as a typical
        epoch's cost would leave a trial at one epoch)."""
        ends = self.epoch_ends
        if len(ends) > 1:
            return (ends[-1] - ends[0]) / (len(ends) - 1)
        return max(ends[0] - (self.first_batch or 0.0), 0.05 * ends[0])

    def seconds_allowed(self) -> float | None:
        """Seconds this training may take, from its start (None: no limit): the budget
        (grown to `converge_epochs` once epochs are timed) and the deadline, whichever ends first."""
        limits = []
        if self.budget is not None:
            budget = self.budget
            if self.converge_epochs and self.epoch_ends:
                epoch = self._epoch_seconds()
                budget = max(budget, self.epoch_ends[0] + (self.converge_epochs - 1) * epoch)
            limits.append(budget)
        if self.deadline is not None:
            limits.append(self.deadline - self.started)
        return min(limits) if limits else None

    def planned_epochs(self, max_epochs: int) -> int | None:
        """Epochs this training will run if nothing else stops it: at most `max_epochs`, as
        many as the time allowed holds at the typical epoch (None before the first epoch
        ends, or without a time limit)."""
        allowed = self.seconds_allowed()
        if allowed is None or not self.epoch_ends:
            return None
        more = int(max(allowed - self.epoch_ends[-1], 0.0) // max(self._epoch_seconds(), 1e-9))
        return max(self.epochs_done, min(max_epochs, self.epochs_done + more))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done += 1
        self.epoch_ends.append(time.time() - self.started)
        self._check()
        allowed = self.seconds_allowed() if self.budget is not None else None
        if allowed is None or self.epochs_done < self.min_epochs:
            return
        if self.epoch_ends[-1] + self._epoch_seconds() > allowed:
            self.model.stop_training = True
            self.stopped = True


class ScheduleToPlan(keras.callbacks.Callback):
    """Cosine decay of the learning rate to the epoch the training is planned to end at.

    The first epoch runs at the optimizer's rate; from then on epoch k of a training
    planned for P epochs runs at `rate * (1 + cos(pi * k / P)) / 2`, so the last planned
    epoch trains at a few percent of the rate and a trial cut by its time ends
    converged rather than half-trained. The plan is `fixed_epochs` when given, else the
    `StopAtDeadline` timer's `planned_epochs` (re-estimated at every epoch); without
    either (no time limit, early stopping) the rate stays constant. The rate is set at
    each epoch's start, which every Keras backend's compiled steps read; the
    optimizer's rate is put back when training ends.

    Args:
        timer: the training's `StopAtDeadline`.
        max_epochs: the most epochs the training runs.
        fixed_epochs: the number of epochs when it is fixed, or None.
    """

    def __init__(self, timer: StopAtDeadline, max_epochs: int, fixed_epochs: int | None = None):
        super().__init__()
        self.timer = timer
        self.max_epochs = max_epochs
        self.fixed_epochs = fixed_epochs
        self.base: float | None = None
        self.rates: list[float] = []

    def on_train_begin(self, logs=None):
        self.base = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.rates = []

    def rate(self, epoch: int) -> float:
        """The learning rate of epoch `epoch` (0-based)."""
        plan = self.fixed_epochs or self.timer.planned_epochs(self.max_epochs)
        if epoch == 0 or not plan:
            return self.base
        return self.base * 0.5 * (1.0 + math.cos(math.pi * min(epoch, plan - 0.5) / plan))

    def on_epoch_begin(self, epoch, logs=None):
        rate = self.rate(epoch)
        self.model.optimizer.learning_rate = rate
        self.rates.append(rate)

    def on_train_end(self, logs=None):
        self.model.optimizer.learning_rate = self.base


class StopHopeless(keras.callbacks.Callback):
    """Stops training when a stopping rule (`automl.search.stopping`) finds the trial hopeless.

    Checked at each epoch end on the objective's values so far; the rule's reason is
    kept in `reason` (None while it has not stopped the training). Early stopping's
    best weights are still restored at the end of training (Keras's `EarlyStopping`
    restores them however training stopped).

    Args:
        rule: a `automl.search.stopping.StoppingRule`.
        objective: the validation metric the rule watches, e.g. "val_accuracy".
        direction: "max" or "min".
        finished_curves: the objective per epoch of each finished trial.
        incumbent: the best finished trial's score, or None before any.
    """

    def __init__(
        self, rule, objective: str, direction: str, finished_curves: list, incumbent: float | None
    ):
        super().__init__()
        self.rule = rule
        self.objective = objective
        self.direction = direction
        self.finished_curves = finished_curves
        self.incumbent = incumbent
        self.curve: list[float] = []
        self.reason: str | None = None

    def on_train_begin(self, logs=None):
        self.curve, self.reason = [], None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.objective)
        if value is None:
            return
        self.curve.append(float(value))
        reason = self.rule.should_stop(
            self.curve,
            self.finished_curves,
            self.incumbent,
            direction=self.direction,
            name=self.objective,
        )
        if reason:
            self.reason = reason
            self.model.stop_training = True


def epoch_timing(epoch_ends: list[float]) -> dict:
    """{"first_epoch_seconds", "epoch_seconds"}: the first epoch (with tracing), then each next."""
    if not epoch_ends:
        return {}
    first = epoch_ends[0]
    steady = (epoch_ends[-1] - first) / (len(epoch_ends) - 1) if len(epoch_ends) > 1 else first
    return {"first_epoch_seconds": round(first, 3), "epoch_seconds": round(steady, 3)}


def load_checked_weights(model: keras.Model, path: str, sha256: str | None) -> None:
    """Load a trial's weights after checking the file against its recorded SHA-256.

    Raises:
        DamagedFileError: the file is missing, fails its checksum, or cannot be read.
    """
    from automl.project.files import check_file

    check_file(path, sha256)
    try:
        load_weights(model, path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a damaged one
        raise DamagedFileError(f"the weights file {path!r} cannot be read ({err})") from None


def load_weights(model: keras.Model, path: str) -> None:
    """Load saved weights into `model`; its fresh optimizer's state is not in the file."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


def fit_trial(
    model: keras.Model,
    train_data,
    validation_data,
    *,
    objective: str,
    direction: str,
    epochs: int | None = None,
    max_epochs: int = 200,
    patience: int = 5,
    deadline: float | None = None,
    budget: float | None = None,
    monitor_loss: bool = False,
    callbacks: list | None = None,
    class_weight: dict | None = None,
    stop_rule: StopHopeless | None = None,
    schedule: bool = False,
    converge_epochs: int | None = None,
) -> tuple[list[float], int, dict]:
    """Train one trial's model; returns the objective per epoch and the epoch it keeps.

    With `epochs=None` training stops early (`patience` epochs without improvement,
    at most `max_epochs`) and the best epoch's weights are restored; with a fixed
    number of `epochs` the last epoch is kept. Past `deadline` training stops at the
    next batch end, after at least one epoch; with a `budget` of seconds it stops at
    the last epoch end that leaves room for another epoch. A `stop_rule` that finds the trial
    hopeless stops it at that epoch's end; the kept epoch is then, as ever, the best
    so far with early stopping and the last with fixed epochs. With `schedule` the
    learning rate decays to the planned last epoch (`ScheduleToPlan`).

    Args:
        model: a compiled model.
        train_data, validation_data: what `model.fit` takes.
        objective: the validation metric to monitor, e.g. "val_accuracy".
        direction: "max" or "min".
        epochs: fixed epochs, or None for early stopping.
        max_epochs: most epochs with early stopping.
        patience: early-stopping patience in epochs.
        deadline: a `time.time()` value, or None.
        budget: seconds this training may take, or None.
        monitor_loss: stop early on the validation loss instead of the objective (a
            finer signal than accuracy on a few dozen rows); the kept epoch is then
            the one with the lowest validation loss.
        callbacks: more Keras callbacks (the user's, the progress display's).
        class_weight: class index -> weight of its samples in the loss.
        stop_rule: a `StopHopeless` callback, or None.
        schedule: decay the learning rate to the planned last epoch (with fixed
            `epochs` or a time limit; otherwise the rate stays constant).
        converge_epochs: epochs the `budget` covers at least once the first epochs
            are timed (the deadline still bounds them), or None.

    Returns:
        (scores, kept, info): the objective of every epoch, the index of the kept
        epoch, and `epoch_timing` of the run with the kept epoch's `val_loss`, the
        objective per epoch as `curve` (rounded to 6 digits; None where not finite)
        and, when `stop_rule` stopped the training, its reason as `stopped_early`.

    Raises:
        TrainingDiverged: the loss became NaN or infinite (training stops at that batch).
    """
    nan_stop = StopOnNonFinite()
    timer = StopAtDeadline(deadline, min_epochs=1, budget=budget, converge_epochs=converge_epochs)
    scheduler = [ScheduleToPlan(timer, epochs or max_epochs, epochs)] if schedule else []
    callbacks = [
        nan_stop,
        timer,
        *scheduler,
        *([stop_rule] if stop_rule else []),
        *(callbacks or []),
    ]
    stopper = None
    if epochs is None:
        monitor, mode = ("val_loss", "min") if monitor_loss else (objective, direction)
        stopper = keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience, min_delta=1e-4, restore_best_weights=True
        )
        callbacks.append(stopper)
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs or max_epochs,
        callbacks=callbacks,
        shuffle=False,
        class_weight=class_weight,
        verbose=0,
    ).history
    if nan_stop.loss is not None:
        raise TrainingDiverged(
            f"the training loss became {nan_stop.loss} in epoch {nan_stop.epoch + 1}: training "
            "diverged (try scaling the data or targets)"
        )
    scores = [float(v) for v in history[objective]]
    kept = stopper.best_epoch if stopper is not None else len(scores) - 1
    if not math.isfinite(scores[kept]):
        raise TrainingDiverged(
            f"the {objective} is {scores[kept]} at epoch {kept + 1}: training diverged"
        )
    info = epoch_timing(timer.epoch_ends)
    if history.get("val_loss"):
        info["val_loss"] = float(history["val_loss"][kept])
    info["curve"] = [round(v, 6) if math.isfinite(v) else None for v in scores]
    if stop_rule is not None and stop_rule.reason:
        info["stopped_early"] = stop_rule.reason
    return scores, kept, info


def inference_ms(model: keras.Model, inputs, samples: int = 256, repeats: int = 5) -> float:
    """Milliseconds per sample of the model's compiled predict step on a batch of up to
    `samples` rows of `inputs` (the median of `repeats` runs, after one that traces it).
    A part of a stream gives its first rows."""
    import numpy as np

    from automl.data.arrays import as_dataset, n_samples, take

    if getattr(inputs, "is_stream", False):
        inputs = inputs.sample_inputs(samples)
    n = min(samples, n_samples(inputs))
    batches = as_dataset(take(inputs, np.arange(n)), batch_size=n)
    batch = next(iter(batches)) if keras.backend.backend() == "tensorflow" else batches[0]
    if isinstance(batch, tuple):
        batch = batch[0]
    model.predict_on_batch(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(batch)
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)) / n, 4)


def is_out_of_memory(err: BaseException) -> bool:
    """Whether `err` is a host or accelerator out-of-memory error, on any backend."""
    name = type(err).__name__
    return (
        isinstance(err, MemoryError)
        or name in ("ResourceExhaustedError", "OutOfMemoryError")
        or "out of memory" in str(err).lower()[:2000]
        or "RESOURCE_EXHAUSTED" in str(err)[:2000]  # XLA's status, as JAX raises it
    )
