"""Input checks and adapters: numpy, pandas and tf.data in; arrays and batched datasets out.

Everything here runs before training starts, so bad input fails fast with a
message that says what was received and what to do. What is fitted on the data
(normalisation, vocabularies, missing-value fills) is `automl.data.preprocessing`.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from automl.errors import InputError


def is_dataframe(x) -> bool:
    return type(x).__module__.startswith("pandas") and hasattr(x, "columns")


def is_dataset(x) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")


def dataset_to_arrays(dataset) -> tuple[np.ndarray, np.ndarray | None]:
    """Materialise a `tf.data.Dataset` of `(x, y)` (batched or not) as numpy arrays.

    Raises:
        InputError: the dataset is empty or its elements are not tensors or (x, y) pairs.
    """
    xs, ys = [], []
    spec = dataset.element_spec
    has_y = isinstance(spec, tuple) and len(spec) >= 2
    first = spec[0] if has_y else spec
    if not hasattr(first, "shape") or (has_y and not hasattr(spec[1], "shape")):
        raise InputError(
            "The tf.data.Dataset must yield (x, y) pairs of tensors, or tensors x alone. "
            f"Received elements of structure {spec}. Map it to (x, y) pairs first."
        )
    batched = first.shape.rank not in (None, 0) and first.shape[0] is None
    for element in dataset.as_numpy_iterator():
        x, y = (element[0], element[1]) if has_y else (element, None)
        xs.append(np.asarray(x))
        if y is not None:
            ys.append(np.asarray(y))
    if not xs:
        raise InputError("The tf.data.Dataset is empty. Pass a dataset with at least one element.")
    join = np.concatenate if batched else np.stack
    return join(xs), (join(ys) if ys else None)


def as_array(value, name: str) -> np.ndarray:
    """`value` as a numpy array of samples, or an `InputError` that says why not."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise InputError(
            f"{name} must be data (an array, list, DataFrame or dataset), not a string. "
            f"Received: {name}={value!r}. To use a file, load it first (numpy.load, "
            "pandas.read_csv), or run `automl fit --csv FILE` / `--npz FILE`."
        )
    if hasattr(value, "toarray"):
        raise InputError(
            f"{name} is a sparse matrix ({type(value).__name__}); automl takes dense data. "
            f"Pass {name}.toarray()."
        )
    try:
        array = np.asarray(value)
    except ValueError as err:
        raise InputError(
            f"{name} cannot be read as one array ({err}). Its rows must all have the same "
            "shape: pad or crop them first."
        ) from None
    if array.ndim == 0:
        raise InputError(
            f"{name} must be a sequence of samples (an array, list, DataFrame or dataset). "
            f"Received a single {type(value).__name__}: {name}={value!r}."
        )
    return array


def missing_rows(y: np.ndarray) -> np.ndarray:
    """Indices of the rows of `y` holding a missing value (None, NaN, pandas NA)."""
    if len(y) == 0:
        return np.zeros(0, dtype=int)
    rows = y.reshape(len(y), -1)
    if y.dtype.kind == "f":
        return np.flatnonzero(np.isnan(rows).any(axis=1))
    if y.dtype.kind == "O":
        import pandas as pd

        return np.flatnonzero(pd.isna(rows).any(axis=1))
    return np.zeros(0, dtype=int)


def check_targets(y, name: str = "y") -> np.ndarray:
    """`y` as an array of targets, one per sample, with no missing value.

    Raises:
        InputError: `y` is a string, a single value, ragged, or has missing values.
    """
    y = y.to_numpy() if hasattr(y, "to_numpy") else as_array(y, name)
    missing = missing_rows(y)
    if len(missing):
        first = ", ".join(str(i) for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise InputError(
            f"{name} has {len(missing)} missing value(s) (None or NaN), in rows [{first}]. "
            "Drop those rows, or fill in their targets."
        )
    return y


def to_arrays(x, y=None):
    """Accept numpy, pandas, lists or tf.data; return (x, y) with x an array or DataFrame.

    Raises:
        InputError: x or y cannot be used as data (see `check_targets` for y).
    """
    if x is None:
        raise InputError(
            "x is None. Pass the inputs: a numpy array, a pandas DataFrame, or a "
            "tf.data.Dataset of (x, y) pairs."
        )
    if is_dataset(x):
        if y is not None:
            raise InputError(
                "When x is a tf.data.Dataset it must yield (x, y) pairs; do not pass y as well."
            )
        x, y = dataset_to_arrays(x)
        return x, (None if y is None else check_targets(y))
    if not is_dataframe(x):
        x = as_array(x, "x")
    if y is not None:
        y = check_targets(y)
    return x, y


def check_fraction(validation_split) -> None:
    """Raise InputError unless `validation_split` is a number strictly between 0 and 1."""
    number = isinstance(validation_split, (int, float, np.number))
    if isinstance(validation_split, bool) or not number or not 0 < validation_split < 1:
        raise InputError(
            "validation_split must be a number between 0 and 1 (exclusive). "
            f"Received: validation_split={validation_split!r}."
        )


def split_validation(x, y, validation_split: float, stratify: bool, seed: int):
    """Hold out `validation_split` of (x, y); stratified by label for classification.

    Stratification is dropped when some class has too few samples for it.

    Raises:
        InputError: validation_split is not a fraction, or leaves either part empty.
    """
    from sklearn.model_selection import train_test_split

    check_fraction(validation_split)
    n = len(y)
    n_val = math.ceil(validation_split * n)
    if n_val < 1 or n - n_val < 1:
        raise InputError(
            f"validation_split={validation_split} leaves {n - n_val} of {n} samples for training "
            f"and {n_val} for validation; both need at least one. Pass more samples, another "
            "validation_split, or validation_data."
        )
    labels = y if stratify and y.ndim == 1 else None
    if labels is not None:
        counts = np.bincount(labels)
        counts = counts[counts > 0]
        if counts.min() < 2 or len(counts) > min(n_val, n - n_val):
            labels = None  # too few samples of some class to stratify: split at random
    return train_test_split(
        np.arange(n), test_size=validation_split, random_state=seed, stratify=labels
    )


def cross_validation_folds(y, folds: int, stratify: bool, seed: int) -> list:
    """`folds` (train index, validation index) pairs covering every sample once as validation.

    Stratified by label for classification when every class has `folds` samples,
    shuffled by `seed`.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    index = np.arange(len(y))
    if stratify and y.ndim == 1 and np.bincount(y)[np.bincount(y) > 0].min() >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        return list(splitter.split(index, y))
    return list(KFold(folds, shuffle=True, random_state=seed).split(index))


def as_dataset(
    inputs, y=None, batch_size: int = 256, shuffle_seed: int | None = None, sample_weight=None
):
    """Batches of model inputs (and targets) in the form the Keras backend takes best.

    On TensorFlow a `tf.data.Dataset` (strings travel as tf.string); on other backends
    an `ArrayBatches` (a `keras.utils.PyDataset` over the arrays).

    Raises:
        InputError: inputs and targets have different numbers of samples.
    """
    import keras

    if y is not None and n_samples(inputs) != len(y):
        raise InputError(
            "x and y have different numbers of samples. Received: "
            f"len(x)={n_samples(inputs)}, len(y)={len(y)}."
        )
    if keras.backend.backend() != "tensorflow":
        return array_batches()(inputs, y, batch_size, shuffle_seed, sample_weight)
    import tensorflow as tf

    if y is None:
        ds = tf.data.Dataset.from_tensor_slices(inputs)
    elif sample_weight is None:
        ds = tf.data.Dataset.from_tensor_slices((inputs, y))
    else:
        ds = tf.data.Dataset.from_tensor_slices((inputs, y, sample_weight))
    if shuffle_seed is not None:
        ds = ds.shuffle(
            min(n_samples(inputs), 10_000), seed=shuffle_seed, reshuffle_each_iteration=True
        )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


@functools.cache
def array_batches() -> type:
    """The `ArrayBatches` class (defined on first use: it subclasses a Keras class)."""
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        """Batches of arrays (or a dict of arrays) and targets, reshuffled every epoch.

        Args:
            inputs: an array or a dict of arrays, one row per sample.
            y: targets, or None for inputs alone.
            batch_size: rows per batch (the last batch may be smaller).
            shuffle_seed: None keeps the order; a seed shuffles, differently each epoch.
            sample_weight: a weight per sample, or None.
        """

        def __init__(
            self, inputs, y=None, batch_size: int = 256, shuffle_seed=None, sample_weight=None
        ):
            super().__init__()
            self.inputs, self.y, self.batch_size = inputs, y, int(batch_size)
            self.sample_weight = sample_weight
            self.size = n_samples(inputs)
            self.rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
            self.order = np.arange(self.size)
            self.on_epoch_end()

        def __len__(self) -> int:
            return math.ceil(self.size / self.batch_size)

        def __getitem__(self, index: int):
            rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            x = take(self.inputs, rows)
            if self.y is None:
                return x
            if self.sample_weight is None:
                return x, self.y[rows]
            return x, self.y[rows], self.sample_weight[rows]

        def on_epoch_end(self) -> None:
            if self.rng is not None:
                self.order = self.rng.permutation(self.size)

    return ArrayBatches


def take(x, index):
    """Rows `index` of an array, a DataFrame or a dict of arrays."""
    if isinstance(x, dict):
        return {k: v[index] for k, v in x.items()}
    if is_dataframe(x):
        return x.iloc[index]
    return x[index]


def n_samples(x) -> int:
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    return len(x)
