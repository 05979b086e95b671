"""Saving and loading exported models, with the sidecar that maps raw data and labels.

`model.keras` holds only built-in Keras layers (graph strategies) and loads with
`keras.models.load_model` anywhere. `model.keras.automl.json` beside it keeps
the input preprocessing and the label classes, so `automl predict` can take a
raw CSV or .npz file and write labels in the user's label space.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from automl.data import Preprocessor, TargetEncoder, as_dataset, to_arrays

SIDECAR = ".automl.json"


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_model(estimator, path: str) -> str:
    """Save a fitted estimator's model as `.keras` plus its sidecar JSON; returns `path`."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"The model path must end in '.keras'. Received: {path!r}.")
    estimator.export_model().save(path)
    info = {
        "estimator": type(estimator).__name__,
        "preprocessor": _plain(dataclasses.asdict(estimator.preprocessor_)),
        "target": _plain(dataclasses.asdict(estimator.target_)),
    }
    with open(str(path) + SIDECAR, "w") as f:
        json.dump(info, f)
    return str(path)


def load_model(path: str):
    """(keras model, Preprocessor or None, TargetEncoder or None) for a saved model."""
    import os

    import keras

    import automl.cells  # noqa: F401  (registers the cell layers, if a cell model is loaded)

    model = keras.models.load_model(path)
    sidecar = str(path) + SIDECAR
    if not os.path.exists(sidecar):
        return model, None, None
    with open(sidecar) as f:
        info = json.load(f)
    return model, Preprocessor(**info["preprocessor"]), TargetEncoder(**info["target"])


def predict_with(model, preprocessor, target, x) -> np.ndarray:
    """Predictions of a loaded model on raw `x`, decoded to labels when the sidecar is known."""
    x, _ = to_arrays(x)
    inputs = preprocessor.transform(x) if preprocessor is not None else x
    out = np.asarray(model.predict(as_dataset(inputs), verbose=0))
    return target.decode(out) if target is not None else out
