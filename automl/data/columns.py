"""A DataFrame's columns as model inputs: numeric, categorical and free-text columns.

Each column is one input of the model, named after the column (`safe_name`):

- numeric (a numeric dtype): normalised, NaN filled with the training median; a
  skewed column also enters as its quantile rank;
- free text (`is_free_text`: strings of at least `TEXT_MIN_WORDS` words at the median,
  more than `TEXT_MIN_DISTINCT` of them distinct): tokenised as `automl.data.text`
  does (words, then bigrams, against the column's own vocabulary of up to
  `TEXT_MAX_TOKENS` tokens) into a binary, L2-normalised bag of tokens;
- categorical (any other column): one-hot of its `MAX_VOCABULARY` most frequent
  values, with one slot for the others.

A missing categorical or text value is the empty string. On TensorFlow, categorical
and text inputs take the raw strings; on other backends (no string tensors) the
model takes what `transform_columns` makes of them: a categorical value's code
(1-based vocabulary index, 0 for an unseen one), a text's token ids.
"""

from __future__ import annotations

import re

import numpy as np

from automl.data import text as text_mod
from automl.data.arrays import is_dataframe
from automl.errors import InputError

MAX_VOCABULARY = 1000  # a categorical column keeps its most frequent values
QUANTILE_BINS = 64  # a skewed numeric column also enters the model as its quantile rank
SKEWED = 1.0  # |skewness| above which a numeric column counts as skewed
TEXT_MIN_WORDS = 4  # a free-text column's median number of words per value, at least
TEXT_MIN_DISTINCT = 0.5  # ... and the share of its values that are distinct, above
TEXT_SAMPLE = 10_000  # the rule looks at a column's first non-missing values
TEXT_MAX_TOKENS = 5000  # a free-text column's vocabulary (words and bigrams)


def check_column_names(frame) -> None:
    """Refuse a DataFrame whose column names repeat (also once written as strings)."""
    names = [str(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"The DataFrame has duplicated column names: {repeated}. Give every column its "
            "own name, for example frame.columns = [...]."
        )


def quantile_bins(values: np.ndarray) -> list:
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


def numeric_stats(values: np.ndarray) -> tuple[float, float, float]:
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


def is_free_text(series) -> bool:
    """Whether a DataFrame column is free text rather than a category.

    It is when it is not numeric nor a pandas categorical, and its first `TEXT_SAMPLE`
    non-missing values are all strings whose median number of words (as the text
    tokeniser splits them) is at least `TEXT_MIN_WORDS`, more than `TEXT_MIN_DISTINCT`
    of them distinct. Colours, codes, ids, dates and names are categories (1 to 3
    words); short labels that repeat ("Bachelor's degree or higher") too.
    """
    import pandas as pd

    if series.dtype.kind in "uifbmM" or isinstance(series.dtype, pd.CategoricalDtype):
        return False
    values = series.dropna()[:TEXT_SAMPLE].tolist()
    if not values or not all(isinstance(v, str) for v in values):
        return False
    words = np.median([len(text_mod.words(v)) for v in values])
    return bool(words >= TEXT_MIN_WORDS and len(set(values)) > TEXT_MIN_DISTINCT * len(values))


def _strings(col):
    """A column's values as strings, "" where missing."""
    return col.astype(str).where(col.notna(), "")


def fit_columns(frame) -> tuple[list, int]:
    """(columns, width): each column's entry (a JSON-able dict with its name, input,
    kind and statistics), and the width of the features they make together.

    Raises:
        InputError: the DataFrame has no columns, duplicated column names, or
            infinite values in a numeric column.
    """
    check_column_names(frame)
    used: set = set()
    columns, width = [], 0
    for name in frame.columns:
        series = frame[name]
        entry = {"name": str(name), "input": safe_name(name, used)}
        if series.dtype.kind in "uifb":
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            check_no_inf(values[:, None], [str(name)])
            fill, mean, variance = numeric_stats(values)
            entry.update(
                kind="numeric",
                fill=fill,
                mean=mean,
                variance=variance,
                quantiles=quantile_bins(values),
            )
            width += 1 + bool(entry["quantiles"])
        elif is_free_text(series):
            vocabulary, length = text_mod.fit_vocabulary(
                _strings(series).tolist(), max_tokens=TEXT_MAX_TOKENS
            )
            entry.update(kind="text", vocabulary=vocabulary, length=length)
            width += len(vocabulary) + 2  # + the padding and out-of-vocabulary ids
        else:
            counts = series.dropna().astype(str).value_counts()
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            vocabulary = sorted(value for value, _ in ranked[:MAX_VOCABULARY])
            entry.update(kind="categorical", vocabulary=vocabulary)
            width += len(vocabulary) + 1  # + the out-of-vocabulary slot
        columns.append(entry)
    if not columns:
        raise InputError("The DataFrame has no columns.")
    return columns, width


def transform_columns(columns: list, string_inputs: bool, x) -> dict:
    """A DataFrame (or 2-D array of the columns in fit's order) as the model's inputs.

    Raises:
        InputError: a column is missing, a numeric column holds text or infinite values.
    """
    import pandas as pd

    names = [c["name"] for c in columns]
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
        raise InputError(f"Columns missing from the input: {missing}. fit saw the columns {names}.")
    out = {}
    for c in columns:
        col = frame[c["name"]]
        if c["kind"] == "numeric":
            values = _numeric_column(col, c["name"])
            out[c["input"]] = np.where(np.isnan(values), c["fill"], values)[:, None]
            continue
        text = _strings(col)
        if string_inputs:
            out[c["input"]] = text.to_numpy(object)[:, None]
        elif c["kind"] == "text":
            out[c["input"]] = text_mod.encode(text.tolist(), c["vocabulary"], c["length"])
        else:
            codes = {value: i + 1 for i, value in enumerate(c["vocabulary"])}
            out[c["input"]] = text.map(codes).fillna(0).to_numpy("int32")[:, None]
    return out


def _numeric_input(c: dict):
    import keras

    inp = keras.Input(shape=(1,), name=c["input"], dtype="float32")
    part = keras.layers.Normalization(
        mean=c["mean"], variance=c["variance"], name=f"pre_norm_{c['input']}"
    )(inp)
    if c.get("quantiles"):  # a skewed column: also its quantile rank
        bins = keras.layers.Discretization(
            bin_boundaries=c["quantiles"], name=f"pre_bins_{c['input']}"
        )(inp)
        rank = keras.layers.Rescaling(1 / len(c["quantiles"]), name=f"pre_rank_{c['input']}")(bins)
        part = keras.layers.Concatenate(name=f"pre_both_{c['input']}")([part, rank])
    return inp, part


def _text_input(c: dict, string_inputs: bool):
    """A text column: strings -> token ids (TensorFlow) or token ids, then a binary bag."""
    import keras

    from automl.graph.text_keras import BagOfTokens

    if string_inputs:
        inp = keras.Input(shape=(1,), name=c["input"], dtype="string")
        ids = text_mod.vectorizer(c["vocabulary"], c["length"], f"pre_tokens_{c['input']}")(inp)
    else:  # the token ids `transform_columns` makes
        inp = ids = keras.Input(shape=(c["length"],), name=c["input"], dtype="int32")
    bag = BagOfTokens(len(c["vocabulary"]) + 2, "binary", name=f"pre_bag_{c['input']}")
    return inp, bag(ids)


def column_inputs(columns: list, string_inputs: bool):
    """Keras inputs (a dict by input name) and the concatenated features of the columns."""
    import keras

    inputs, parts = {}, []
    for c in columns:
        if c["kind"] == "numeric":
            inp, part = _numeric_input(c)
        elif c["kind"] == "text":
            inp, part = _text_input(c, string_inputs)
        elif string_inputs:
            inp = keras.Input(shape=(1,), name=c["input"], dtype="string")
            part = keras.layers.StringLookup(
                vocabulary=c["vocabulary"], output_mode="one_hot", name=f"pre_lookup_{c['input']}"
            )(inp)
        else:  # the same one-hot, from the codes `transform_columns` makes
            inp = keras.Input(shape=(1,), name=c["input"], dtype="int32")
            part = keras.layers.CategoryEncoding(
                len(c["vocabulary"]) + 1, output_mode="one_hot", name=f"pre_lookup_{c['input']}"
            )(inp)
        inputs[c["input"]] = inp
        parts.append(part)
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="pre_concat")(parts)
    return inputs, x
