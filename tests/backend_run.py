"""Work done on one Keras backend for tests/test_backends.py, in-process or as a script.

    KERAS_BACKEND=jax python tests/backend_run.py DIR

reads DIR/supernet.weights.h5, DIR/inputs.npz and the other backend's saved models
DIR/<other>_*.keras, and writes DIR/<backend>.npz: the supernet's weights after two
compiled steps of each method, the other backend's models' outputs here, and the
outputs of small models it fits and saves itself as DIR/<backend>_*.keras. Run as a
script, it first makes TensorFlow impossible to import, as on a machine without it.
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np

TINY = {
    "space": "nb201",
    "stages": 1,
    "search_epochs": 1,
    "search_cells": 1,
    "search_channels": 4,
    "cells": 1,
    "channels": 4,
}


def supernet(seed: int = 0):
    from automl.cells import SuperNet

    return SuperNet(3, (8, 8, 1), space="nb201", cells=1, channels=4, stages=1, seed=seed)


def search_pair(seed: int = 0):
    rng = np.random.default_rng(seed)
    split = [
        (rng.normal(size=(8, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 8).astype("int32"))
        for _ in range(2)
    ]
    return tuple(split)


def compiled_steps(net, method: str, steps: int = 2) -> list[np.ndarray]:
    """The net's weights after `steps` compiled steps of `method` on one fixed pair."""
    import keras

    pair = search_pair()

    class Repeat(keras.utils.PyDataset):
        def __len__(self):
            return steps

        def __getitem__(self, index):
            return pair

    net.compile(method=method, jit_compile=keras.backend.backend() == "jax")
    net.fit(Repeat(), epochs=1, verbose=0)
    return [np.array(v) for v in net.weights]


def table():
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.lognormal(size=120),
            "kind": rng.choice(["a", "b", "c"], 120),
            "level": rng.normal(size=120),
        }
    )
    frame.loc[::9, "kind"] = None
    frame.loc[::7, "level"] = np.nan
    y = ((frame["kind"] == "a") ^ (frame["level"].fillna(0) > 0)).astype(int).to_numpy()
    return frame, y


def fit_models(directory: str, prefix: str) -> dict:
    """Fit a graph image model, a cell image model and a table model; save each with
    its sidecar as DIR/<prefix>_<name>.keras; return their raw outputs on their data."""
    import automl
    from automl.export.keras_file import save_model

    x, y = images(directory)
    frame, labels = table()
    runs = {
        "graph": (automl.ImageClassifier, {}, x, y),
        "cells": (automl.ImageClassifier, {"strategy": "milenas", "cell_options": TINY}, x, y),
        "table": (automl.StructuredDataClassifier, {}, frame, labels),
    }
    for name, (cls, extra, features, targets) in runs.items():
        model = cls(
            max_trials=1,
            epochs=1,
            ensemble_size=1,
            seed=0,
            verbose=0,
            directory=os.path.join(directory, f"{prefix}_{name}_project"),
            **extra,
        )
        save_model(model.fit(features, targets), os.path.join(directory, f"{prefix}_{name}.keras"))
    return predict_saved(directory, prefix)


def images(directory: str):
    inputs = np.load(os.path.join(directory, "inputs.npz"))
    return inputs["images"], inputs["labels"]


def predict_saved(directory: str, prefix: str) -> dict:
    """Raw outputs of each saved DIR/<prefix>_*.keras on its data, or the error message."""
    from automl.errors import InputError
    from automl.export.keras_file import load_model, predict_with

    out = {}
    for path in sorted(glob.glob(os.path.join(directory, f"{prefix}_*.keras"))):
        name = os.path.basename(path)[: -len(".keras")]
        data = table()[0] if name.endswith("_table") else images(directory)[0]
        try:
            out[name] = predict_with(*load_model(path)[:2], None, data)
        except InputError as err:
            out[f"{name}/error"] = np.array(str(err))
    return out


def main(directory: str) -> None:
    import keras

    backend = keras.backend.backend()
    other = "jax" if backend == "tensorflow" else "tensorflow"
    results = {}
    for method in ("milenas", "darts1", "darts2"):
        net = supernet()
        net.load_weights(os.path.join(directory, "supernet.weights.h5"))
        for i, value in enumerate(compiled_steps(net, method)):
            results[f"{method}/{i}"] = value
    results.update(predict_saved(directory, other))
    results.update(fit_models(directory, backend))
    results["tensorflow_modules"] = np.array([m for m in sys.modules if m.startswith("tensorflow")])
    np.savez(os.path.join(directory, f"{backend}.npz"), **results)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import no_tensorflow

    no_tensorflow.install()
    main(sys.argv[1])
