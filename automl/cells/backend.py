"""The supernet's backend-specific module, chosen by `keras.backend.backend()`.

Everything else in the cell search is `keras.ops`; each backend module gives the
gradient of the batch loss, a snapshot of variable values and the train and test
steps that Keras compiles (`backend_tensorflow`, `backend_jax`).
"""

from __future__ import annotations

import functools
import importlib

import keras

from automl.errors import InputError

BACKENDS = ("tensorflow", "jax")


@functools.cache
def _load(name: str):
    return importlib.import_module(f"automl.cells.backend_{name}")


def current():
    """The module for the running Keras backend.

    Raises:
        InputError: on a backend the cell search does not run on.
    """
    name = keras.backend.backend()
    if name not in BACKENDS:
        raise InputError(
            f"The cell search runs on the Keras backends {BACKENDS}. Received: "
            f"KERAS_BACKEND={name!r}. Set KERAS_BACKEND=jax or tensorflow, or use the "
            "graph strategies (bayesian, evolution, random), which run on any backend."
        )
    return _load(name)
