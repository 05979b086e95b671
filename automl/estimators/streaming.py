"""What the estimators do with a stream: open it, fit on it in one pass, predict and evaluate.

`prepare` is the streaming counterpart of the estimator's in-memory data step: one
pass over the stream fits the preprocessing and the task head (statistics from
the training part, classes from every row) and checks every batch; the parts of
the split are then read again, batch by batch, by every trial and by the refit.
Trials are never cross-validated on a stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from automl.data.streaming.pipeline import StreamData, fingerprint
from automl.data.streaming.sources import (
    CsvFile,
    DatasetStream,
    ImageDirectory,
    PyDatasetStream,
    Stream,
)
from automl.data.streaming.split import routed
from automl.data.streaming.stats import ImageStats, TableStats
from automl.data.streaming.targets import TargetStats
from automl.engine import registry
from automl.errors import InputError

PREDICT_BATCH = 256
HASHED_BATCHES = 3  # the first batches that enter the data fingerprint


def _is_pydataset(x) -> bool:
    return any(
        c.__name__ == "PyDataset" and c.__module__.startswith("keras") for c in type(x).__mro__
    )


def is_stream(x) -> bool:
    """Whether `x` is read as a stream: a `tf.data.Dataset`, a `keras.utils.PyDataset`, a
    `Stream`, or a path (an image folder, or a CSV file for table estimators)."""
    from automl.data.arrays import is_dataset

    return isinstance(x, (Stream, str, os.PathLike)) or is_dataset(x) or _is_pydataset(x)


def open_stream(x, y, kind: str, purpose: str, preprocessor=None, target_column=None) -> Stream:
    """The `Stream` of `x` for `purpose` ("fit", "evaluate" or "predict").

    Raises:
        InputError: `y` given where the stream holds the targets, a path of the wrong
            kind, or a CSV file without its target column named.
    """
    from automl.data.arrays import is_dataset

    if isinstance(x, Stream) or is_dataset(x) or _is_pydataset(x):
        if y is not None:
            raise InputError(
                "When x is a tf.data.Dataset, a PyDataset or a Stream it must yield (x, y) "
                "pairs; do not pass y as well."
            )
        if isinstance(x, Stream):
            return x
        return DatasetStream(x) if is_dataset(x) else PyDatasetStream(x)
    path = os.fspath(x)
    if kind == "image":
        if os.path.isfile(path):
            raise InputError(
                f"{path!r} is a file; image estimators read a folder of images, one subfolder "
                "per class. For an .npz file, load it first (numpy.load) or run "
                "`automl fit --npz FILE`."
            )
        if y is not None and os.path.isdir(path):
            raise InputError(
                "The labels of an image folder are the names of its subfolders; do not pass y. "
                f"Received: y of type {type(y).__name__}."
            )
        shape = None if preprocessor is None else preprocessor.raw_shape
        return ImageDirectory(path, labels=purpose != "predict", image_shape=shape)
    if purpose == "predict":
        return CsvFile(path, drop=target_column)
    target = y if y is not None else (target_column if purpose == "evaluate" else None)
    if not isinstance(target, str):
        raise InputError(
            f"With a CSV file as x, y must name its target column, e.g. fit({path!r}, "
            f"y='label'). Received: y={y!r}."
        )
    return CsvFile(path, target=target)


def require_tensorflow() -> None:
    """Raise `InputError` unless TensorFlow (which reads streams) can be imported."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        raise InputError(
            "Streaming data (tf.data, PyDataset, image folders, CSV files) is read with "
            "tf.data: pip install tensorflow (any Keras backend can train on it)."
        )


@dataclass
class Fitted:
    """What one pass over a stream found."""

    preprocessor: object
    target: object
    rows: dict  # train? -> rows
    counts: dict  # train? -> rows per class (classification)
    weights: bool
    hashes: list = field(default_factory=list)


def _rows(mask: np.ndarray, x, y, w):
    from automl.data.arrays import take

    index = np.flatnonzero(mask)
    return take(x, index), y[index], (None if w is None else w[index])


def fit_stream(stream: Stream, kind: str, task: str, fraction: float | None, seed: int) -> Fitted:
    """One pass over `stream`: the preprocessing, the target encoding, rows and class counts.

    Rows held out by the split (`fraction` of them, by a hash of their position and
    `seed`) are checked and counted, but only the others enter the statistics.

    Raises:
        InputError: the stream is empty, lacks targets, or holds data that cannot be used.
    """
    from automl.project.files import hash_arrays

    features = ImageStats() if kind == "image" else TableStats()
    targets, weighted, hashes, positive = TargetStats(task), None, [], False
    for x, y, w, held in routed(stream, fraction, seed):
        if y is None:
            raise InputError(
                f"fit needs targets, but {stream.what} yields inputs alone. Make it yield "
                "(x, y) pairs (or (x, y, sample_weight))."
            )
        if len(x) != len(y) or (w is not None and len(w) != len(y)):
            raise InputError(
                f"{stream.what} yields a batch with {len(x)} inputs and {len(y)} targets"
                + (f" and {len(w)} weights" if w is not None else "")
                + "; each batch needs one target per input."
            )
        if weighted is None:
            weighted = w is not None
        if weighted != (w is not None):
            raise InputError(f"{stream.what} yields sample weights in some batches only.")
        if w is not None:
            w = np.asarray(w, dtype="float64").reshape(-1)
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise InputError("sample weights must be finite and non-negative.")
        if len(hashes) < HASHED_BATCHES:
            hashes.append(hash_arrays(x, y, w))
        for train in (True, False):
            mask = ~held if train else held
            if mask.all():
                part = (x, y, w)
            elif mask.any():
                part = _rows(mask, x, y, w)
            else:
                continue
            (features.add if train else features.check)(part[0])
            targets.add(part[1], train)
            positive = positive or (train and w is not None and bool(np.any(part[2] > 0)))
    rows = {train: targets.rows(train) for train in (True, False)}
    _check_rows(stream, rows, fraction)
    if weighted and not positive:
        raise InputError("sample weights must have at least one above 0 in the training part.")
    encoder = targets.result()
    if task == "classification" and encoder.n_outputs > sum(rows.values()) / 2:
        total = sum(rows.values())
        raise InputError(
            f"y has {encoder.n_outputs} classes in {total} samples: fewer than 2 samples per "
            "class on average, too few to learn any class. If y is a continuous target or an "
            "id, use a regressor or drop it; otherwise pass more samples per class."
        )
    counts = {}
    if task == "classification":
        counts = {train: targets.class_counts(encoder, train) for train in (True, False)}
    return Fitted(features.result(), encoder, rows, counts, bool(weighted), hashes)


def _check_rows(stream: Stream, rows: dict, fraction: float | None) -> None:
    total = rows[True] + rows[False]
    if not total:
        raise InputError(f"{stream.what} is empty. Pass data with at least 4 samples.")
    if total < 4:
        raise InputError(f"fit needs at least 4 samples. Received: {total}.")
    if fraction and (not rows[True] or not rows[False]):
        unit = "batches (a PyDataset is split by batch)" if stream.unit == "batch" else "samples"
        raise InputError(
            f"validation_split={fraction} leaves {rows[True]} of {total} samples for training "
            f"and {rows[False]} for validation; both need at least one. Pass more {unit}, "
            "another validation_split, or validation_data."
        )


def prepare(estimator, x, y, validation_split, validation_data, sample_weight):
    """Fit the estimator's preprocessing and head on a stream; (train, val, full, [], fingerprint).

    Sets `preprocessor_`, `head_`, `target_` (and `target_column_` for a CSV file).

    Raises:
        InputError: bad arguments or data, before any training.
    """
    from automl.data.arrays import check_fraction
    from automl.data.heads import HEADS

    if sample_weight is not None:
        raise InputError(
            "sample_weight cannot be passed with a stream; make the stream yield "
            "(x, y, sample_weight) instead."
        )
    if not registry.get(estimator.strategy).streams:
        readers = registry.names(kind=estimator._kind, task=estimator._task, streams=True)
        raise InputError(
            f"strategy={estimator.strategy!r} searches images held in memory; for a stream use "
            f"{registry.quoted(readers)}, or pass numpy arrays."
        )
    require_tensorflow()
    stream = open_stream(x, y, estimator._kind, "fit")
    fraction = None
    if validation_data is None:
        check_fraction(validation_split)
        fraction = float(validation_split)
    fitted = fit_stream(stream, estimator._kind, estimator._task, fraction, estimator.seed)
    pre, head = fitted.preprocessor, HEADS[estimator._task](fitted.target)
    estimator.preprocessor_, estimator.head_, estimator.target_ = pre, head, head.target
    if isinstance(stream, CsvFile):
        estimator.target_column_ = stream.target
    counts, rows = fitted.counts, fitted.rows

    def part(source, train: bool | None):
        kept = [train] if train is not None else [True, False]
        class_counts = sum(counts[t] for t in kept) if counts else None
        data = StreamData(
            source, pre, head, sum(rows[t] for t in kept), class_counts, fitted.weights
        )
        return data.pair()

    if validation_data is None:
        rest, held = stream.split(fraction, estimator.seed)
        train, val, full = part(rest, True), part(held, False), part(stream, None)
        split = f"validation_split={fraction!r} seed={estimator.seed}"
    else:
        train, full = part(stream, True), None
        val, split = _validation(validation_data, estimator._kind, pre, head)
    return train, val, full, [], fingerprint(stream, sum(rows.values()), split, fitted.hashes)


def _validation(validation_data, kind: str, pre, head) -> tuple:
    """(the validation part, its description for the fingerprint): a stream or arrays."""
    from automl.data import arrays as data_mod
    from automl.project.files import hash_arrays

    vx, vy = (
        validation_data if isinstance(validation_data, (tuple, list)) else (validation_data, None)
    )
    if not is_stream(vx):
        x_val, y_val = data_mod.to_arrays(vx, vy)
        if y_val is None:
            raise InputError("validation_data needs targets: pass (x_val, y_val).")
        return (pre.transform(x_val), head.encode(y_val)), hash_arrays(x_val, y_val)
    stream = open_stream(vx, vy, kind, "evaluate", preprocessor=pre)
    data = StreamData(stream, pre, head)
    rows, counts = 0, np.zeros(head.n_outputs, dtype=np.int64)
    for _, targets in data.model_batches():  # checks every batch before training
        rows += len(targets)
        if head.target.task == "classification":
            counts += np.bincount(targets, minlength=head.n_outputs)
    if not rows:
        raise InputError(f"validation_data ({stream.what}) is empty.")
    data.rows, data.class_counts = rows, counts
    return data.pair(), f"validation {stream.describe()} {rows}"


def predict(estimator, x) -> np.ndarray:
    """The model's raw outputs on a stream's inputs (targets in it are ignored).

    Raises:
        InputError: the stream is empty or does not have the form fit saw.
    """
    require_tensorflow()
    stream = open_stream(
        x,
        None,
        estimator._kind,
        "predict",
        estimator.preprocessor_,
        getattr(estimator, "target_column_", None),
    )
    data = StreamData(stream, estimator.preprocessor_)
    data.sample_inputs(1)  # an empty or malformed stream fails here, clearly
    with data.errors():
        outputs = estimator.model_.predict(data.dataset(PREDICT_BATCH, targets=False), verbose=0)
    return np.asarray(outputs)


def evaluate(estimator, x, y=None) -> dict:
    """Loss and metric of the model on a stream of (x, y) (sample weights are ignored).

    Raises:
        InputError: the stream has no targets, an unseen label, or another form than in fit.
    """
    require_tensorflow()
    stream = open_stream(
        x,
        y,
        estimator._kind,
        "evaluate",
        estimator.preprocessor_,
        getattr(estimator, "target_column_", None),
    )
    data = StreamData(stream, estimator.preprocessor_, estimator.head_)
    for _ in data.model_batches():  # the first batch fails clearly
        break
    else:
        raise InputError(f"{stream.what} is empty. Pass data with at least one sample.")
    with data.errors():
        result = estimator.model_.evaluate(data.dataset(PREDICT_BATCH), verbose=0, return_dict=True)
    return {k: float(v) for k, v in result.items()}
