"""Saving and loading exported models, with the sidecar that maps raw data and labels.

`model.keras` holds only built-in Keras layers (graph strategies) and loads with
`keras.models.load_model` anywhere. `model.keras.automl.json` beside it keeps
the input preprocessing and the label classes, so `automl predict` can take a
raw CSV or .npz file and write labels in the user's label space.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from automl.data.arrays import as_dataset, n_samples, to_arrays
from automl.data.heads import TargetEncoder
from automl.data.preprocessing import Preprocessor
from automl.errors import InputError

SIDECAR = ".automl.json"


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_model_path(path) -> str:
    """`path` as a string, once it is sure a model can be saved there.

    Call it before a search, so a bad path fails before the training, not after.

    Raises:
        InputError: the path does not end in `.keras`, is a folder, or its folder is
            missing or not writable.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"The model path must be a file name. Received: {path!r}.")
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise InputError(
            f"The model path must end in '.keras' (the Keras model format). Received: {path!r}."
        )
    return check_output_file(path, "The model path")


def check_output_file(path: str, what: str) -> str:
    """Refuse a file that cannot be written: a folder, or a missing or read-only folder.

    Args:
        path: the file to be written.
        what: how messages name it, e.g. "--output" or "The model path".

    Raises:
        InputError: with the reason and what to do.
    """
    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a folder. Give a file name.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(
            f"{what} {path!r} cannot be written: the folder {folder!r} does not exist. "
            "Create the folder first, or choose another path."
        )
    if not os.access(folder, os.W_OK):
        raise InputError(
            f"{what} {path!r} cannot be written: the folder {folder!r} is not writable."
        )
    return path


FORMATS = ("keras", "savedmodel", "tflite", "onnx")
_EXTENSIONS = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}


def check_format(fmt: str | None, path) -> str:
    """The export format: `fmt`, or the one `path`'s extension names ("savedmodel" for a
    path without one; "keras" without a path).

    Raises:
        InputError: an unknown format, or a path whose extension does not match it.
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path must be a file or folder name. Received: {path!r}.")
    ext = os.path.splitext(os.fspath(path))[1].lower() if path is not None else ""
    guessed = _EXTENSIONS.get(ext, "savedmodel" if path is not None and not ext else None)
    if fmt is None:
        if path is not None and guessed is None:
            raise InputError(
                f"Cannot tell the format from the path {os.fspath(path)!r}. Pass format= one "
                f"of {list(FORMATS)}, or a path ending in .keras, .tflite or .onnx."
            )
        return guessed or "keras"
    if fmt not in FORMATS:
        raise InputError(f"Unknown export format {fmt!r}. Choose one of {list(FORMATS)}.")
    if path is not None and ext in _EXTENSIONS and _EXTENSIONS[ext] != fmt:
        raise InputError(
            f"The path {os.fspath(path)!r} ends in {ext!r}, which is not the format {fmt!r}."
        )
    return fmt


def check_output(path, fmt: str = "keras") -> str:
    """`path` as a string, once it is sure `fmt` can be written there (a SavedModel
    replaces a folder; the other formats are files).

    Raises:
        InputError: the path is a folder (for a file format), or its folder is
            missing or not writable.
    """
    path = os.fspath(path)
    if fmt == "savedmodel" and os.path.isdir(path):  # the folder is replaced
        check_output_file(os.path.join(path, "saved_model.pb"), "The export path")
        return path
    return check_output_file(path, "The export path")


def without_optimizer(model):
    """The same model (its layers shared) without the optimizer and its state."""
    import keras

    return keras.Model(model.input, model.output, name=model.name)


def save_model(estimator, path, model=None) -> str:
    """Save a fitted estimator's model as `.keras` plus its sidecar JSON; returns `path`.

    The file holds the model without optimizer state (it loads uncompiled, ready to
    predict; compile it to train it further).

    Args:
        estimator: a fitted automl estimator.
        path: a file name ending in `.keras`.
        model: the model to save (default: the estimator's exported model).

    Raises:
        InputError: the path cannot take a model (see `check_model_path`), or
            `estimator` is not an automl estimator.
        NotFittedError: the estimator is not fitted.
    """
    path = check_model_path(path)
    if not hasattr(estimator, "export_model"):
        raise InputError(
            "save_model takes a fitted automl estimator. Received: "
            f"{type(estimator).__name__}. Save a keras.Model with model.save(path)."
        )
    model = model if model is not None else estimator.export_model()
    return save_loaded(
        model, estimator.preprocessor_, estimator.target_, path, type(estimator).__name__
    )


def save_loaded(model, preprocessor, target, path, estimator: str | None = None) -> str:
    """Save `model` as `.keras` without optimizer state, with a sidecar for `preprocessor`
    and `target` when they are known; returns `path`.

    Raises:
        InputError: the path cannot take a model (see `check_model_path`).
    """
    from automl.project.files import write_json

    path = check_model_path(path)
    model = without_optimizer(model)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:  # written whole, then renamed: a kill never leaves a torn model
        model.save(tmp)
        os.replace(tmp, path)
        if preprocessor is not None and target is not None:
            info = {
                "estimator": estimator,
                "preprocessor": _plain(dataclasses.asdict(preprocessor)),
                "target": _plain(dataclasses.asdict(target)),
            }
            write_json(path + SIDECAR, info)
    except OSError as err:
        raise InputError(f"Cannot write the model to {path!r}: {err}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_model(path):
    """(keras model, Preprocessor or None, TargetEncoder or None) for a saved model.

    Raises:
        InputError: the file is missing or is not a Keras model, or its sidecar is damaged.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"The model path must be a file name. Received: {path!r}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"No model file at {path!r}. Pass the .keras file `automl fit` wrote.")
    if not os.access(path, os.R_OK):
        from automl.project.files import unreadable

        raise unreadable(path)
    import keras

    import automl.cells  # noqa: F401  (registers the cell layers, if a cell model is loaded)
    import automl.graph.text_keras  # noqa: F401  (registers the text layers)

    preprocessor, target = _read_sidecar(path + SIDECAR)
    strings = preprocessor is not None and preprocessor.kind in ("columns", "text")
    if strings and preprocessor.string_inputs and keras.backend.backend() != "tensorflow":
        what = "table model" if preprocessor.kind == "columns" else "text model"
        raise InputError(
            f"The {what} {path!r} takes its text as strings, which only the "
            f"TensorFlow backend has (KERAS_BACKEND={keras.backend.backend()!r}). Predict "
            f"with KERAS_BACKEND=tensorflow, or fit on this backend: its {what}s "
            "take text as integer codes that automl makes from the strings."
        )
    try:
        model = keras.models.load_model(path)
    except Exception as err:  # Keras reports bad files with many exception types
        raise InputError(
            f"Cannot load {path!r} as a Keras model ({type(err).__name__}: {err}). Pass a "
            ".keras file saved by automl or keras."
        ) from None
    return model, preprocessor, target


def _read_sidecar(sidecar: str):
    """(Preprocessor, TargetEncoder) from a model's sidecar, or (None, None) without one."""
    if not os.path.exists(sidecar):
        return None, None
    try:
        with open(sidecar) as f:
            info = json.load(f)
        return Preprocessor(**info["preprocessor"]), TargetEncoder(**info["target"])
    except PermissionError:
        from automl.project.files import unreadable

        raise unreadable(sidecar) from None
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise InputError(
            f"The sidecar {sidecar!r} of the model is damaged ({type(err).__name__}: {err}). "
            "Save the model again, or delete the sidecar to get raw model outputs."
        ) from None


def predict_with(model, preprocessor, target, x) -> np.ndarray:
    """Predictions of a loaded model on raw `x`, decoded to labels when the sidecar is known.

    Raises:
        InputError: x does not fit the model's inputs.
    """
    x, _ = to_arrays(x)
    if preprocessor is not None:
        inputs = preprocessor.transform(x)
    else:
        inputs = np.asarray(x)
        if n_samples(inputs) == 0:
            raise InputError(f"x has 0 samples (x.shape={inputs.shape}). Pass at least one.")
    try:
        out = np.asarray(model.predict(as_dataset(inputs), verbose=0))
    except ValueError as err:
        raise InputError(f"The model cannot take these inputs: {err}") from None
    return target.decode(out) if target is not None else out
