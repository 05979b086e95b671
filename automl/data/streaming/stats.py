"""One streaming pass that fits the preprocessing and the target encoding on a stream.

It produces the same `Preprocessor` and `TargetEncoder` that `Preprocessor.fit_images`
/ `fit_table` and `TargetEncoder.fit` make from arrays, from running statistics
whose memory does not grow with the data:

- means and variances (images per channel, table columns, regression targets):
  per-batch central moments merged exactly (Chan et al.; the third moment for a
  column's skewness by Pebay's formula);
- a table column's median and quantile bins: from a uniform reservoir sample of
  up to `RESERVOIR_VALUES` values per table (exact while the column has fewer values
  than its share), drawn with a fixed seed;
- a categorical column's vocabulary: value counts, exact up to `TRACKED_VALUES`
  distinct values, then the `KEEP_VALUES` most frequent are kept;
- classes: the set of labels and their count in each part of the split.

Preprocessing statistics and regression targets come from the training part;
classes from every row; every row is checked (shapes, finite values, labels)
so bad data fails before training.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from automl.data.preprocessing import (
    MAX_VOCABULARY,
    QUANTILE_BINS,
    SKEWED,
    Preprocessor,
    check_column_names,
    check_no_inf,
    numbers_or_refuse,
    safe_name,
)
from automl.errors import InputError

RESERVOIR_VALUES = 4_000_000  # sampled values per table, shared by its numeric columns
TRACKED_VALUES = 100_000  # distinct values counted exactly per categorical column
KEEP_VALUES = 20 * MAX_VOCABULARY  # kept when a column has more distinct values


class Moments:
    """Count, mean and central moments of the columns of 2-D batches (NaN is missing)."""

    def __init__(self, width: int, third: bool = False):
        self.n, self.mean = np.zeros(width), np.zeros(width)
        self.m2 = np.zeros(width)
        self.m3 = np.zeros(width) if third else None

    def add(self, values: np.ndarray) -> None:
        present = ~np.isnan(values)
        nb = present.sum(axis=0).astype("float64")
        if not nb.any():
            return
        safe = np.where(present, values, 0.0)
        mb = safe.sum(axis=0) / np.maximum(nb, 1)
        centred = np.where(present, values - mb, 0.0)
        m2b = (centred**2).sum(axis=0)
        na, n = self.n, self.n + nb
        delta = mb - self.mean
        ratio = np.divide(nb, n, out=np.zeros_like(n), where=n > 0)
        if self.m3 is not None:
            m3b = (centred**3).sum(axis=0)
            self.m3 = (
                self.m3
                + m3b
                + delta**3 * na * nb * (na - nb) / np.maximum(n, 1) ** 2
                + 3 * delta * (na * m2b - nb * self.m2) / np.maximum(n, 1)
            )
        self.m2 = self.m2 + m2b + delta**2 * na * ratio
        self.mean, self.n = self.mean + delta * ratio, n

    def variance(self) -> np.ndarray:
        """Population variance, 1 where a column had no value."""
        return np.where(self.n > 0, self.m2 / np.maximum(self.n, 1), 1.0)

    def skewness(self) -> np.ndarray:
        spread = self.m2 / np.maximum(self.n, 1)
        third = self.m3 / np.maximum(self.n, 1)
        return np.divide(third, spread**1.5, out=np.zeros_like(spread), where=spread > 0)


class Reservoir:
    """A uniform sample of at most `capacity` of the values added (algorithm R, seeded)."""

    def __init__(self, capacity: int, seed: int):
        self.capacity, self.rng = capacity, np.random.default_rng(seed)
        self.values, self.filled, self.seen = np.empty(0), 0, 0

    def add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        free = self.capacity - self.filled
        if free > 0:
            head = values[:free]
            if self.filled + len(head) > len(self.values):
                grown = min(self.capacity, max(2 * len(self.values), self.filled + len(head)))
                self.values = np.resize(self.values, grown)
            self.values[self.filled : self.filled + len(head)] = head
            self.filled += len(head)
        rest = values[max(free, 0) :]
        if len(rest):
            positions = self.seen + max(free, 0) + np.arange(len(rest))
            slots = (self.rng.random(len(rest)) * (positions + 1)).astype(np.int64)
            hit = slots < self.capacity
            self.values[slots[hit]] = rest[hit]
        self.seen += len(values)

    def sample(self) -> np.ndarray:
        return self.values[: self.filled]


class NumericColumns:
    """Fill (median), mean, variance and, with `quantiles`, the quantile bins of numeric columns."""

    def __init__(self, width: int, quantiles: bool):
        capacity = int(np.clip(RESERVOIR_VALUES // max(width, 1), 10_000, 100_000))
        self.moments = Moments(width, third=quantiles)
        self.samples = [Reservoir(capacity, seed=j) for j in range(width)]
        self.quantiles = quantiles
        self.distinct = [set() for _ in range(width)]  # of the first 100,000 present values
        self.counted = np.zeros(width, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        self.moments.add(values)
        for j, sample in enumerate(self.samples):
            column = values[:, j]
            present = column[~np.isnan(column)]
            sample.add(present)
            if self.quantiles and len(self.distinct[j]) <= 16 and self.counted[j] < 100_000:
                self.distinct[j].update(present[: 100_000 - self.counted[j]].tolist())
            self.counted[j] += len(present)

    def column(self, j: int) -> dict:
        present = self.samples[j].sample()
        if not len(present):
            return {"fill": 0.0, "mean": 0.0, "variance": 1.0, "quantiles": []}
        entry = {
            "fill": float(np.median(present)),
            "mean": float(self.moments.mean[j]),
            "variance": float(max(self.moments.variance()[j], 1e-12)),
            "quantiles": [],
        }
        skewed = self.quantiles and abs(float(self.moments.skewness()[j])) > SKEWED
        if skewed and len(self.distinct[j]) > 16:
            cuts = np.quantile(present, np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1])
            entry["quantiles"] = np.unique(cuts).tolist()
        return entry


def _numbers(series, name: str) -> np.ndarray:
    """A column that held numbers in the first rows, as float64 (NaN where missing).

    Raises:
        InputError: it holds text that is not a number, or infinite values.
    """
    refusal = (
        "Column {name!r} holds numbers in the stream's first rows and text later, e.g. "
        "{examples}. Make the column all numbers (NaN where missing) or all text "
        "(for example, prefix its values with a letter)."
    )
    return numbers_or_refuse(series, name, refusal)


class ImageStats:
    """The image preprocessing of a stream of image batches."""

    def __init__(self):
        self.shape, self.moments = None, None

    def check(self, x) -> None:
        fitted = Preprocessor.fit_images(x)  # the checks of in-memory images
        if self.shape is None:
            self.shape, self.graph = fitted.raw_shape, fitted.graph_shape
            self.moments = Moments(self.graph[2])
        elif fitted.raw_shape != self.shape:
            raise InputError(
                f"Every image must have the shape of the first ones, {tuple(self.shape)}. "
                f"Received a batch of shape {np.shape(x)}."
            )

    def add(self, x) -> None:
        self.check(x)
        self.moments.add(np.asarray(x, dtype="float64").reshape(-1, self.graph[2]))

    def result(self) -> Preprocessor:
        variance = np.maximum(self.moments.variance(), 1e-12)
        return Preprocessor(
            "image",
            list(self.shape),
            list(self.graph),
            self.moments.mean.tolist(),
            variance.tolist(),
        )


class TableStats:
    """The table preprocessing of a stream of row batches: numeric arrays give a "table"
    preprocessor, DataFrames (CSV chunks) and text arrays a "columns" one."""

    def __init__(self):
        self.names, self.numeric, self.counts = None, None, {}

    def _frame(self, x):
        import pandas as pd

        if hasattr(x, "columns"):
            return x
        if x.ndim != 2 or x.shape[1] == 0:
            raise InputError(
                f"Structured data must be 2-D (samples, features). Received a batch of shape "
                f"{x.shape}."
            )
        return None if x.dtype.kind in "uifb" else pd.DataFrame(x)

    def check(self, x, add: bool = False) -> None:
        frame = self._frame(x)
        if self.names is None:
            self._start(x, frame)
        if self.kind == "columns" and frame is None:
            import pandas as pd

            frame = pd.DataFrame(x)
        if self.kind == "table":
            if frame is not None or x.shape[1] != len(self.names):
                raise InputError(
                    f"Every batch must have the {len(self.names)} numeric columns of the first. "
                    f"Received a batch of shape {np.shape(x)}, dtype {getattr(x, 'dtype', None)}."
                )
            values = x.astype("float64")
            check_no_inf(values)
            if add:
                self.numeric.add(values)
            return
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        if list(frame.columns) != self.names:
            raise InputError(
                f"Every batch must have the columns of the first, {self.names}. "
                f"Received: {list(frame.columns)}."
            )
        numbers = [_numbers(frame[n], n) for n in self.names if self.kinds[n] == "numeric"]
        if add and numbers:
            self.numeric.add(np.stack(numbers, axis=1))
        for name in self.names:
            if add and self.kinds[name] == "categorical":
                counts = self.counts[name]
                counts.update(frame[name].dropna().astype(str).value_counts().to_dict())
                if len(counts) > TRACKED_VALUES:
                    self.counts[name] = Counter(dict(counts.most_common(KEEP_VALUES)))

    def add(self, x) -> None:
        self.check(x, add=True)

    def _start(self, x, frame) -> None:
        if frame is None:
            self.kind, self.names = "table", list(range(x.shape[1]))
            self.numeric = NumericColumns(len(self.names), quantiles=False)
            return
        check_column_names(frame)
        self.kind, self.names = "columns", [str(c) for c in frame.columns]
        if not self.names:
            raise InputError("The data has no columns.")
        self.kinds = {
            str(c): "numeric" if frame[c].dtype.kind in "uifb" else "categorical"
            for c in frame.columns
        }
        self.counts = {n: Counter() for n in self.names if self.kinds[n] == "categorical"}
        width = sum(k == "numeric" for k in self.kinds.values())
        self.numeric = NumericColumns(width, quantiles=True)

    def result(self) -> Preprocessor:
        if self.kind == "table":
            entries = [self.numeric.column(j) for j in range(len(self.names))]
            width = [len(self.names)]
            return Preprocessor(
                "table",
                width,
                width,
                [e["mean"] for e in entries],
                [e["variance"] for e in entries],
                fill=[e["fill"] for e in entries],
            )
        import keras

        used: set = set()
        columns, width, numeric = [], 0, 0
        for name in self.names:
            entry = {"name": name, "input": safe_name(name, used)}
            if self.kinds[name] == "numeric":
                entry.update(kind="numeric", **self.numeric.column(numeric))
                numeric += 1
                width += 1 + bool(entry["quantiles"])
            else:
                ranked = sorted(self.counts[name].items(), key=lambda item: (-item[1], item[0]))
                vocabulary = sorted(value for value, _ in ranked[:MAX_VOCABULARY])
                entry.update(kind="categorical", vocabulary=vocabulary)
                width += len(vocabulary) + 1
            columns.append(entry)
        return Preprocessor(
            "columns",
            [len(columns)],
            [width],
            columns=columns,
            string_inputs=keras.backend.backend() == "tensorflow",
        )
