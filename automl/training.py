"""Keras training helpers the search backends share: a deadline callback, loading weights."""

from __future__ import annotations

import time
import warnings

import keras


class StopAtDeadline(keras.callbacks.Callback):
    """Stops training once `deadline` (a `time.time()` value) has passed.

    Checked after every batch, so a long epoch does not run past the deadline; the
    first `min_epochs` epochs always run, so a model is never left untrained.

    Args:
        deadline: the wall-clock time to stop at, or None for no limit.
        min_epochs: epochs that run whatever the time.
    """

    def __init__(self, deadline: float | None, min_epochs: int = 0):
        super().__init__()
        self.deadline = deadline
        self.min_epochs = min_epochs
        self.epochs_done = 0
        self.stopped = False

    def _check(self) -> None:
        if self.deadline is None or self.epochs_done < self.min_epochs:
            return
        if time.time() >= self.deadline:
            self.model.stop_training = True
            self.stopped = True

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done += 1
        self._check()


def load_weights(model: keras.Model, path: str) -> None:
    """Load saved weights into `model`; its fresh optimizer's state is not in the file."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)
