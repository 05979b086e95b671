"""The preprocessing fitted on the training data, and the data rules it enforces.

`Preprocessor` describes what the exported model does to raw inputs as plain
numbers (normalisation, reshaping, string lookups, missing-value fills) and
turns them into built-in Keras layers (`build_inputs`), so a saved model loads
with Keras safe mode on. `transform` is the one check `fit` and `predict` share:
in a table NaN is a missing value (filled with the training median), while inf,
values beyond float32 and text in a numeric column are refused; images must be
finite; a categorical column keeps its `MAX_VOCABULARY` most frequent values. In
a DataFrame, a skewed numeric column also enters the model as its quantile rank, and
a free-text column its own bag of tokens (see `automl.data.columns`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from automl.data import columns as columns_mod
from automl.data import text as text_mod
from automl.data.arrays import as_array, is_dataframe
from automl.data.columns import (  # noqa: F401  (the names others import from here)
    MAX_VOCABULARY,
    QUANTILE_BINS,
    SKEWED,
    check_column_names,
    check_no_inf,
    numbers_or_refuse,
    numeric_stats,
    safe_name,
)
from automl.errors import InputError


def _finite_numbers(x: np.ndarray) -> bool:
    """Whether `x` holds numbers only, all finite and within float32's range."""
    if x.dtype.kind not in "uif":
        return False
    if x.dtype.kind == "f" and x.size:
        return bool(np.isfinite(x).all() and np.abs(x).max() <= np.finfo("float32").max)
    return True


@dataclass
class Preprocessor:
    """What the exported model does to raw inputs, as plain numbers (JSON-able)."""

    kind: str  # "image", "table", "columns" or "text"
    raw_shape: list
    graph_shape: list
    mean: list = field(default_factory=list)
    variance: list = field(default_factory=list)
    columns: list = field(default_factory=list)  # for "columns": dicts name/input/kind/...
    fill: list = field(default_factory=list)  # for "table": each column's median (missing values)
    # For "columns": categorical inputs are strings (TensorFlow), or integer codes of the
    # vocabulary (0: not in it) on backends without string tensors.
    string_inputs: bool = True
    vocabulary: list = field(default_factory=list)  # for "text": words and bigrams
    idf: list = field(default_factory=list)  # for "text": (rank, idf) points, `text.idf_knots`

    @property
    def tokens(self) -> int | None:
        """For "text": the number of token ids (vocabulary + padding + out-of-vocabulary)."""
        return len(self.vocabulary) + 2 if self.kind == "text" else None

    # -------------------------------------------------------------- fitting
    @classmethod
    def fit_images(cls, x) -> Preprocessor:
        """The image preprocessing of `x` (samples, H, W[, C]).

        Raises:
            InputError: x is not a finite numeric array of images.
        """
        x = as_array(x, "x")
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
        return cls(
            "image",
            list(x.shape[1:]),
            [*x.shape[1:3], channels],
            flat.mean(axis=0).tolist(),
            variance.tolist(),
        )

    @classmethod
    def fit_text(cls, x) -> Preprocessor:
        """The text preprocessing of `x` (one string per sample): vocabulary and length.

        Raises:
            InputError: x is not a sequence of strings, or its texts are all empty or
                all the same.
        """
        texts = text_mod.check_texts(x)
        text_mod.check_training_texts(texts)
        vocabulary, length, idf = text_mod.fit_vocabulary(texts, idf=True)
        import keras

        return cls(
            "text",
            [],
            [length],
            vocabulary=vocabulary,
            idf=idf,
            string_inputs=keras.backend.backend() == "tensorflow",
        )

    @classmethod
    def fit_table(cls, x) -> Preprocessor:
        """The table preprocessing of `x` (a 2-D array or a DataFrame).

        Raises:
            InputError: x is not 2-D, has no columns, or has duplicated column names.
        """
        if is_dataframe(x):
            return cls._fit_columns(x)
        x = as_array(x, "x")
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
        check_no_inf(x)
        fill, mean, variance = zip(*(numeric_stats(x[:, j]) for j in range(x.shape[1])))
        return cls("table", [x.shape[1]], [x.shape[1]], list(mean), list(variance), fill=list(fill))

    @classmethod
    def _fit_columns(cls, frame) -> Preprocessor:
        columns, width = columns_mod.fit_columns(frame)
        import keras

        return cls(
            "columns",
            [len(columns)],
            [width],
            columns=columns,
            string_inputs=keras.backend.backend() == "tensorflow",
        )

    # -------------------------------------------------------------- transform
    def transform(self, x):
        """Raw user input -> what the model's inputs take (arrays, or a dict for columns).

        Raises:
            InputError: x has no samples, or does not have the form seen in fit.
        """
        if self.kind == "text":
            texts = text_mod.check_texts(x)
            if self.string_inputs:
                return texts[:, None]
            return text_mod.encode(texts, self.vocabulary, self.graph_shape[0])
        if not is_dataframe(x):
            x = as_array(x, "x")
        if len(x) == 0:
            raise InputError(f"x has 0 samples (x.shape={x.shape}). Pass at least one sample.")
        if self.kind == "columns":
            return self._transform_columns(x)
        if is_dataframe(x):
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
            check_no_inf(x)
            x = x.astype("float32")
            return np.where(np.isnan(x), np.asarray(self.fill or self.mean, dtype="float32"), x)
        if not _finite_numbers(x):
            raise InputError(
                "Images must be finite numbers within float32's range, as in fit. "
                f"Received: dtype={x.dtype}{', with NaN, inf or huge values' if x.dtype.kind == 'f' else ''}."
            )
        return x.astype("float32")

    def _transform_columns(self, x) -> dict:
        return columns_mod.transform_columns(self.columns, self.string_inputs, x)

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
            return columns_mod.column_inputs(self.columns, self.string_inputs)
        if self.kind == "text":
            if not self.string_inputs:  # token ids that `transform` makes
                inputs = keras.Input(shape=tuple(self.graph_shape), name="input", dtype="int32")
                return inputs, inputs
            inputs = keras.Input(shape=(1,), name="input", dtype="string")
            length = self.graph_shape[0]
            return inputs, text_mod.vectorizer(self.vocabulary, length, "pre_tokens")(inputs)
        inputs = keras.Input(shape=tuple(self.raw_shape), name="input")
        x = inputs
        if list(self.raw_shape) != list(self.graph_shape):
            x = keras.layers.Reshape(tuple(self.graph_shape), name="pre_reshape")(x)
        x = keras.layers.Normalization(mean=self.mean, variance=self.variance, name="pre_norm")(x)
        return inputs, x
