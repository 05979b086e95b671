"""The preprocessing fitted on the training data, and the data rules it enforces.

`Preprocessor` describes what the exported model does to raw inputs as plain
numbers (normalisation, reshaping, string lookups, missing-value fills) and
turns them into built-in Keras layers (`build_inputs`), so a saved model loads
with Keras safe mode on. `transform` is the one check `fit` and `predict` share:
in a table NaN is a missing value (filled with the training median), while inf,
values beyond float32 and text in a numeric column are refused; images must be
finite; a categorical column keeps its `MAX_VOCABULARY` most frequent values. In
a DataFrame, a skewed numeric column also enters the model as its quantile rank.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from automl.data.arrays import as_array, is_dataframe
from automl.errors import InputError


def check_column_names(frame) -> None:
    """Refuse a DataFrame whose column names repeat (also once written as strings)."""
    names = [str(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"The DataFrame has duplicated column names: {repeated}. Give every column its "
            "own name, for example frame.columns = [...]."
        )


MAX_VOCABULARY = 1000  # a categorical column keeps its most frequent values
QUANTILE_BINS = 64  # a skewed numeric column also enters the model as its quantile rank
SKEWED = 1.0  # |skewness| above which a numeric column counts as skewed


def _quantiles(values: np.ndarray) -> list:
    """Bin boundaries of a skewed column's quantiles; [] for a column that is not skewed.

    A column counts as skewed when it has more than 16 distinct values and a
    skewness beyond `SKEWED`. The model sees its rank in [0, 1] beside the
    normalised value, which spreads out a long tail the way a log would.
    """
    present = values[~np.isnan(values)]
    if len(np.unique(present[:100_000])) <= 16:
        return []
    centred = present - present.mean()
    spread = float(np.mean(centred**2))
    if spread <= 0 or abs(float(np.mean(centred**3)) / spread**1.5) <= SKEWED:
        return []
    cuts = np.quantile(present, np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1])
    return np.unique(cuts).tolist()


def check_no_inf(x: np.ndarray, names: list | None = None) -> None:
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


def numbers_or_refuse(col, name: str, refusal: str) -> np.ndarray:
    """A column's values as float64, NaN where missing.

    Raises:
        InputError: it holds text that is not a number (the message is `refusal`
            formatted with `name`, `count` and up to 3 `examples`), or infinite values.
    """
    import pandas as pd

    values = pd.to_numeric(col, errors="coerce").to_numpy("float64", na_value=np.nan)
    text = np.isnan(values) & col.notna().to_numpy()
    if text.any():
        examples = col[text].astype(str).unique()[:3].tolist()
        raise InputError(refusal.format(name=name, count=int(text.sum()), examples=examples))
    check_no_inf(values[:, None], [name])
    return values


def _numeric_column(col, name: str) -> np.ndarray:
    """A numeric column as float32, NaN where missing.

    Raises:
        InputError: the column holds text that is not a number, or infinite values.
    """
    refusal = (
        "Column {name!r} held numbers in fit; here it holds {count} value(s) that are "
        "not numbers, e.g. {examples}. Convert them to numbers, or to NaN if missing."
    )
    return numbers_or_refuse(col, name, refusal).astype("float32")


def _finite_numbers(x: np.ndarray) -> bool:
    """Whether `x` holds numbers only, all finite and within float32's range."""
    if x.dtype.kind not in "uif":
        return False
    if x.dtype.kind == "f" and x.size:
        return bool(np.isfinite(x).all() and np.abs(x).max() <= np.finfo("float32").max)
    return True


def safe_name(name, used: set) -> str:
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
    # For "columns": categorical inputs are strings (TensorFlow), or integer codes of the
    # vocabulary (0: not in it) on backends without string tensors.
    string_inputs: bool = True

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
        fill, mean, variance = zip(*(_numeric_stats(x[:, j]) for j in range(x.shape[1])))
        return cls("table", [x.shape[1]], [x.shape[1]], list(mean), list(variance), fill=list(fill))

    @classmethod
    def _fit_columns(cls, frame) -> Preprocessor:
        check_column_names(frame)
        used: set = set()
        columns, width = [], 0
        for name in frame.columns:
            series = frame[name]
            entry = {"name": str(name), "input": safe_name(name, used)}
            if series.dtype.kind in "uifb":
                values = series.to_numpy(dtype="float64", na_value=np.nan)
                check_no_inf(values[:, None], [str(name)])
                fill, mean, variance = _numeric_stats(values)
                entry.update(
                    kind="numeric",
                    fill=fill,
                    mean=mean,
                    variance=variance,
                    quantiles=_quantiles(values),
                )
                width += 1 + bool(entry["quantiles"])
            else:
                counts = series.dropna().astype(str).value_counts()
                ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
                vocabulary = sorted(value for value, _ in ranked[:MAX_VOCABULARY])
                entry.update(kind="categorical", vocabulary=vocabulary)
                width += len(vocabulary) + 1  # + the out-of-vocabulary slot
            columns.append(entry)
        if not columns:
            raise InputError("The DataFrame has no columns.")
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
        import pandas as pd

        names = [c["name"] for c in self.columns]
        if is_dataframe(x):
            frame = x.copy(deep=False)
        else:
            if x.ndim != 2 or x.shape[1] != len(names):
                raise InputError(
                    f"Expected a DataFrame, or a 2-D array of {len(names)} columns {names}, "
                    f"as in fit. Received: x.shape={x.shape}."
                )
            frame = pd.DataFrame(x.astype(object), columns=names)
        check_column_names(frame)
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
                text = col.astype(str).where(col.notna(), "")
                if self.string_inputs:
                    out[c["input"]] = text.to_numpy(object)[:, None]
                else:
                    codes = {value: i + 1 for i, value in enumerate(c["vocabulary"])}
                    out[c["input"]] = text.map(codes).fillna(0).to_numpy("int32")[:, None]
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
                    part = keras.layers.Normalization(
                        mean=c["mean"], variance=c["variance"], name=f"pre_norm_{c['input']}"
                    )(inp)
                    if c.get("quantiles"):  # a skewed column: also its quantile rank
                        bins = keras.layers.Discretization(
                            bin_boundaries=c["quantiles"], name=f"pre_bins_{c['input']}"
                        )(inp)
                        rank = keras.layers.Rescaling(
                            1 / len(c["quantiles"]), name=f"pre_rank_{c['input']}"
                        )(bins)
                        part = keras.layers.Concatenate(name=f"pre_both_{c['input']}")([part, rank])
                elif self.string_inputs:
                    inp = keras.Input(shape=(1,), name=c["input"], dtype="string")
                    part = keras.layers.StringLookup(
                        vocabulary=c["vocabulary"],
                        output_mode="one_hot",
                        name=f"pre_lookup_{c['input']}",
                    )(inp)
                else:  # the same one-hot, from the codes `transform` gives
                    inp = keras.Input(shape=(1,), name=c["input"], dtype="int32")
                    part = keras.layers.CategoryEncoding(
                        len(c["vocabulary"]) + 1,
                        output_mode="one_hot",
                        name=f"pre_lookup_{c['input']}",
                    )(inp)
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
