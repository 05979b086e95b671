"""Input checks and adapters: numpy, pandas and tf.data in; arrays and Keras preprocessing out.

Everything here runs before training starts, so bad input fails fast with a
message that says what was received and what to do. The preprocessing that the
exported model needs (normalisation, reshaping, string lookup, target scaling)
is described by plain numbers here and turned into built-in Keras layers by
`Preprocessor.build_inputs`, so a saved model loads with Keras safe mode on.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from automl.errors import InputError


def _is_dataframe(x) -> bool:
    return type(x).__module__.startswith("pandas") and hasattr(x, "columns")


def _is_dataset(x) -> bool:
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


def _as_array(value, name: str) -> np.ndarray:
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
    y = y.to_numpy() if hasattr(y, "to_numpy") else _as_array(y, name)
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
    if _is_dataset(x):
        if y is not None:
            raise InputError(
                "When x is a tf.data.Dataset it must yield (x, y) pairs; do not pass y as well."
            )
        x, y = dataset_to_arrays(x)
        return x, (None if y is None else check_targets(y))
    if not _is_dataframe(x):
        x = _as_array(x, "x")
    if y is not None:
        y = check_targets(y)
    return x, y


# --------------------------------------------------------------------- inputs
def _check_column_names(frame) -> None:
    """Refuse a DataFrame whose column names repeat (also once written as strings)."""
    names = [str(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"The DataFrame has duplicated column names: {repeated}. Give every column its "
            "own name, for example frame.columns = [...]."
        )


MAX_VOCABULARY = 1000  # a categorical column keeps its most frequent values


def _check_no_inf(x: np.ndarray, names: list | None = None) -> None:
    """Refuse infinite values in a 2-D numeric table (NaN is a missing value, inf an error).

    Values beyond float32's range (about 3.4e38), which the model would see as inf,
    are refused too.
    """
    bad = np.flatnonzero(np.isinf(x).any(axis=0))
    if len(bad):
        where = [names[j] if names else int(j) for j in bad[:5]]
        raise InputError(
            f"The table holds infinite values in column(s) {where}. NaN counts as a missing "
            "value (filled with the column's median); inf does not. Replace or drop those "
            "values, for example x[np.isinf(x)] = np.nan."
        )
    with np.errstate(invalid="ignore"):
        huge = np.flatnonzero((np.abs(x) > np.finfo("float32").max).any(axis=0))
    if len(huge):
        where = [names[j] if names else int(j) for j in huge[:5]]
        raise InputError(
            f"The table holds values too large for 32-bit floats (beyond 3.4e38) in column(s) "
            f"{where}. Rescale those columns first, for example with np.log10."
        )


def _numeric_stats(values: np.ndarray) -> tuple[float, float, float]:
    """(median, mean, variance) of a column's present values; (0, 0, 1) when none is."""
    present = values[~np.isnan(values)]
    if not present.size:
        return 0.0, 0.0, 1.0
    return float(np.median(present)), float(present.mean()), float(max(present.var(), 1e-12))


def _numeric_column(col, name: str) -> np.ndarray:
    """A numeric column as float32, NaN where missing.

    Raises:
        InputError: the column holds text that is not a number, or infinite values.
    """
    import pandas as pd

    values = pd.to_numeric(col, errors="coerce").to_numpy("float64", na_value=np.nan)
    text = np.isnan(values) & col.notna().to_numpy()
    if text.any():
        examples = col[text].astype(str).unique()[:3].tolist()
        raise InputError(
            f"Column {name!r} held numbers in fit; here it holds {int(text.sum())} value(s) that "
            f"are not numbers, e.g. {examples}. Convert them to numbers, or to NaN if missing."
        )
    _check_no_inf(values[:, None], [name])
    return values.astype("float32")


def _finite_numbers(x: np.ndarray) -> bool:
    """Whether `x` holds numbers only, all finite and within float32's range."""
    if x.dtype.kind not in "uif":
        return False
    if x.dtype.kind == "f" and x.size:
        return bool(np.isfinite(x).all() and np.abs(x).max() <= np.finfo("float32").max)
    return True


def _safe_name(name, used: set) -> str:
    base = re.sub(r"[^0-9A-Za-z_]", "_", str(name)).strip("_") or "col"
    if base[0].isdigit():
        base = "c_" + base
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}_{n}"
    used.add(candidate)
    return candidate


@dataclass
class Preprocessor:
    """What the exported model does to raw inputs, as plain numbers (JSON-able)."""

    kind: str  # "image", "table" or "columns"
    raw_shape: list
    graph_shape: list
    mean: list = field(default_factory=list)
    variance: list = field(default_factory=list)
    columns: list = field(default_factory=list)  # for "columns": dicts name/input/kind/...
    fill: list = field(default_factory=list)  # for "table": each column's median (missing values)

    # -------------------------------------------------------------- fitting
    @classmethod
    def fit_images(cls, x) -> Preprocessor:
        """The image preprocessing of `x` (samples, H, W[, C]).

        Raises:
            InputError: x is not a finite numeric array of images.
        """
        x = _as_array(x, "x")
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 2, 3, 4)):
            raise InputError(
                "Images must be an array of shape (samples, H, W) or (samples, H, W, C) "
                f"with C in 1..4. Received: x.shape={x.shape}."
            )
        if not _finite_numbers(x):
            raise InputError(
                "Images must be finite numbers within float32's range (any integer or float "
                "range up to 3.4e38). "
                f"Received: dtype={x.dtype}{', with NaN, inf or huge values' if x.dtype.kind == 'f' else ''}."
            )
        if min(x.shape[1:3]) < 2:
            raise InputError(f"Images must be at least 2x2 pixels. Received: x.shape={x.shape}.")
        channels = x.shape[3] if x.ndim == 4 else 1
        flat = x.reshape(-1, channels).astype("float64")
        variance = np.maximum(flat.var(axis=0), 1e-12)
        return cls("image", list(x.shape[1:]), [*x.shape[1:3], channels],
                   flat.mean(axis=0).tolist(), variance.tolist())  # fmt: skip

    @classmethod
    def fit_table(cls, x) -> Preprocessor:
        """The table preprocessing of `x` (a 2-D array or a DataFrame).

        Raises:
            InputError: x is not 2-D, has no columns, or has duplicated column names.
        """
        if _is_dataframe(x):
            return cls._fit_columns(x)
        x = _as_array(x, "x")
        if x.ndim == 1:
            raise InputError(
                "Structured data must be 2-D (samples, features). Received a 1-D array; "
                "use x.reshape(-1, 1) for a single feature."
            )
        if x.ndim != 2:
            raise InputError(f"Structured data must be 2-D. Received: x.shape={x.shape}.")
        if x.shape[1] == 0:
            raise InputError(f"Structured data needs at least one feature. Received: {x.shape=}.")
        if x.dtype.kind not in "uifb":
            import pandas as pd

            return cls._fit_columns(pd.DataFrame(x))
        x = x.astype("float64")
        _check_no_inf(x)
        fill, mean, variance = zip(*(_numeric_stats(x[:, j]) for j in range(x.shape[1])))
        return cls("table", [x.shape[1]], [x.shape[1]], list(mean), list(variance),
                   fill=list(fill))  # fmt: skip

    @classmethod
    def _fit_columns(cls, frame) -> Preprocessor:
        _check_column_names(frame)
        used: set = set()
        columns, width = [], 0
        for name in frame.columns:
            series = frame[name]
            entry = {"name": str(name), "input": _safe_name(name, used)}
            if series.dtype.kind in "uifb":
                values = series.to_numpy(dtype="float64", na_value=np.nan)
                _check_no_inf(values[:, None], [str(name)])
                fill, mean, variance = _numeric_stats(values)
                entry.update(kind="numeric", fill=fill, mean=mean, variance=variance)
                width += 1
            else:
                counts = series.dropna().astype(str).value_counts()
                ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
                vocabulary = sorted(value for value, _ in ranked[:MAX_VOCABULARY])
                entry.update(kind="categorical", vocabulary=vocabulary)
                width += len(vocabulary) + 1  # + the out-of-vocabulary slot
            columns.append(entry)
        if not columns:
            raise InputError("The DataFrame has no columns.")
        return cls("columns", [len(columns)], [width], columns=columns)

    # -------------------------------------------------------------- transform
    def transform(self, x):
        """Raw user input -> what the model's inputs take (arrays, or a dict for columns).

        Raises:
            InputError: x has no samples, or does not have the form seen in fit.
        """
        if not _is_dataframe(x):
            x = _as_array(x, "x")
        if len(x) == 0:
            raise InputError(f"x has 0 samples (x.shape={x.shape}). Pass at least one sample.")
        if self.kind == "columns":
            return self._transform_columns(x)
        if _is_dataframe(x):
            x = x.to_numpy()
        if list(x.shape[1:]) != list(self.raw_shape):
            raise InputError(
                f"Expected inputs of shape (samples, {', '.join(map(str, self.raw_shape))}) as in "
                f"fit. Received: x.shape={x.shape}."
            )
        if self.kind == "table":
            try:
                x = x.astype("float64")
            except (TypeError, ValueError):
                raise InputError(
                    f"The features were numbers in fit. Received: dtype={x.dtype}."
                ) from None
            _check_no_inf(x)
            x = x.astype("float32")
            return np.where(np.isnan(x), np.asarray(self.fill or self.mean, dtype="float32"), x)
        if not _finite_numbers(x):
            raise InputError(
                "Images must be finite numbers within float32's range, as in fit. "
                f"Received: dtype={x.dtype}{', with NaN, inf or huge values' if x.dtype.kind == 'f' else ''}."
            )
        return x.astype("float32")

    def _transform_columns(self, x) -> dict:
        import pandas as pd

        names = [c["name"] for c in self.columns]
        if _is_dataframe(x):
            frame = x.copy(deep=False)
        else:
            if x.ndim != 2 or x.shape[1] != len(names):
                raise InputError(
                    f"Expected a DataFrame, or a 2-D array of {len(names)} columns {names}, "
                    f"as in fit. Received: x.shape={x.shape}."
                )
            frame = pd.DataFrame(x.astype(object), columns=names)
        _check_column_names(frame)
        frame.columns = [str(c) for c in frame.columns]
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise InputError(
                f"Columns missing from the input: {missing}. fit saw the columns {names}."
            )
        out = {}
        for c in self.columns:
            col = frame[c["name"]]
            if c["kind"] == "numeric":
                values = _numeric_column(col, c["name"])
                out[c["input"]] = np.where(np.isnan(values), c["fill"], values)[:, None]
            else:
                out[c["input"]] = col.astype(str).where(col.notna(), "").to_numpy(object)[:, None]
        return out

    def normalise_images(self, x) -> np.ndarray:
        """What the image preprocessing layers compute, in numpy (for the cell supernet)."""
        x = np.asarray(x, dtype="float32").reshape(-1, *self.graph_shape)
        mean = np.asarray(self.mean, dtype="float32")
        return (x - mean) / np.sqrt(np.asarray(self.variance, dtype="float32"))

    # -------------------------------------------------------------- Keras side
    def build_inputs(self):
        """Keras inputs and the preprocessed tensor the architecture graph starts from."""
        import keras

        if self.kind == "columns":
            inputs, parts = {}, []
            for c in self.columns:
                if c["kind"] == "numeric":
                    inp = keras.Input(shape=(1,), name=c["input"], dtype="float32")
                    part = keras.layers.Normalization(mean=c["mean"], variance=c["variance"],
                                                      name=f"pre_norm_{c['input']}")(inp)  # fmt: skip
                else:
                    inp = keras.Input(shape=(1,), name=c["input"], dtype="string")
                    part = keras.layers.StringLookup(vocabulary=c["vocabulary"],
                                                     output_mode="one_hot",
                                                     name=f"pre_lookup_{c['input']}")(inp)  # fmt: skip
                inputs[c["input"]] = inp
                parts.append(part)
            x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="pre_concat")(parts)
            return inputs, x
        inputs = keras.Input(shape=tuple(self.raw_shape), name="input")
        x = inputs
        if list(self.raw_shape) != list(self.graph_shape):
            x = keras.layers.Reshape(tuple(self.graph_shape), name="pre_reshape")(x)
        x = keras.layers.Normalization(mean=self.mean, variance=self.variance, name="pre_norm")(x)
        return inputs, x


def split_validation(x, y, validation_split: float, stratify: bool, seed: int):
    """Hold out `validation_split` of (x, y); stratified by label for classification.

    Stratification is dropped when some class has too few samples for it.

    Raises:
        InputError: validation_split is not a fraction, or leaves either part empty.
    """
    from sklearn.model_selection import train_test_split

    number = isinstance(validation_split, (int, float, np.number))
    if isinstance(validation_split, bool) or not number or not 0 < validation_split < 1:
        raise InputError(
            "validation_split must be a number between 0 and 1 (exclusive). "
            f"Received: validation_split={validation_split!r}."
        )
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


def as_dataset(inputs, y=None, batch_size: int = 256, shuffle_seed: int | None = None):
    """A batched `tf.data.Dataset` of model inputs (and targets); strings travel as tf.string.

    Raises:
        InputError: inputs and targets have different numbers of samples.
    """
    import tensorflow as tf

    if y is not None and n_samples(inputs) != len(y):
        raise InputError(
            "x and y have different numbers of samples. Received: "
            f"len(x)={n_samples(inputs)}, len(y)={len(y)}."
        )
    ds = tf.data.Dataset.from_tensor_slices(inputs if y is None else (inputs, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(min(n_samples(inputs), 10_000), seed=shuffle_seed,
                        reshuffle_each_iteration=True)  # fmt: skip
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def take(x, index):
    """Rows `index` of an array, a DataFrame or a dict of arrays."""
    if isinstance(x, dict):
        return {k: v[index] for k, v in x.items()}
    if _is_dataframe(x):
        return x.iloc[index]
    return x[index]


def n_samples(x) -> int:
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    return len(x)
