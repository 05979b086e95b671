"""The target encoding of a stream, fitted batch by batch: classes and their counts, or the
regression targets' mean and standard deviation.

It makes the `TargetEncoder` that `TargetEncoder.fit` makes from the whole of `y`,
with the same checks (missing values, mixed label types, one-hot rows, numeric
and finite regression targets of bounded size), from memory that grows with the
number of classes only.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from automl.data.arrays import check_targets
from automl.data.heads import TargetEncoder
from automl.data.streaming.stats import Moments
from automl.errors import InputError

MAX_CLASSES = 100_000  # distinct labels a classifier's stream may hold


class TargetStats:
    """Accumulates the targets of a stream's batches for `task`; `result()` is the encoder.

    Classes come from every row added; regression statistics from the rows added
    with `train=True`. Class counts are kept per part (train, held out).
    """

    def __init__(self, task: str):
        self.task = task
        self.one_hot: int | None = None  # the width of one-hot labels
        self.counts = {True: Counter(), False: Counter()}  # train? -> label -> rows
        self.moments: Moments | None = None

    def add(self, y, train: bool = True) -> None:
        """Check one batch of targets and count it.

        Raises:
            InputError: the targets cannot be used for the task, or change form.
        """
        y = check_targets(y)
        if y.ndim > 2:
            raise InputError(
                "Targets must be one value per sample (1-D) or one row per sample (2-D). "
                f"Received a batch of y.shape={y.shape}."
            )
        if self.task == "regression":
            self._add_targets(y, train)
        else:
            self._add_labels(y, train)

    def _add_targets(self, y: np.ndarray, train: bool) -> None:
        TargetEncoder.fit(y, "regression")  # its checks: numbers, finite, not too large
        values = y.astype("float64").reshape(len(y), -1)
        if self.moments is None:
            self.moments = Moments(values.shape[1])
        if values.shape[1] != len(self.moments.n):
            raise InputError(
                f"Every batch must have {len(self.moments.n)} target value(s) per sample, as "
                f"the first. Received: y.shape={y.shape}."
            )
        self.counts[train][0] += len(values)
        if train:
            self.moments.add(values)

    def _add_labels(self, y: np.ndarray, train: bool) -> None:
        one_hot = y.ndim == 2 and y.shape[1] > 1
        form = y.shape[1] if one_hot else 0
        if self.one_hot is None:
            self.one_hot = form
        if form != self.one_hot:
            raise InputError(
                "Every batch must have labels of the form of the first ("
                + (f"one-hot rows of {self.one_hot}" if self.one_hot else "one label per sample")
                + f"). Received: y.shape={y.shape}."
            )
        if one_hot:
            TargetEncoder._fit_classes(y)  # checks one-hot rows
            index = np.bincount(y.argmax(axis=1), minlength=y.shape[1])
            self.counts[train].update({i: int(c) for i, c in enumerate(index) if c})
            return
        values = y.reshape(-1)
        try:
            labels, counts = np.unique(values, return_counts=True)
        except TypeError:
            TargetEncoder._fit_classes(values)  # raises: the labels mix types
            raise
        self.counts[train].update(dict(zip(labels.tolist(), counts.tolist())))
        if len(self.counts[train]) > MAX_CLASSES:
            raise InputError(
                f"y has more than {MAX_CLASSES:,} distinct labels in the stream, too many "
                "classes to learn. If y is a continuous target or an id, use a regressor or "
                "drop it."
            )

    def rows(self, train: bool) -> int:
        return int(sum(self.counts[train].values()))

    def result(self) -> TargetEncoder:
        """The target encoding.

        Raises:
            InputError: fewer than 2 classes, or no training targets.
        """
        if self.task == "regression":
            if self.moments is None or not self.moments.n.any():
                raise InputError("fit found no training targets in the stream.")
            std = np.sqrt(self.moments.variance())
            return TargetEncoder(
                "regression",
                mean=self.moments.mean.tolist(),
                std=np.where(std > 0, std, 1).tolist(),
            )
        if self.one_hot:
            return TargetEncoder("classification", list(range(self.one_hot)), one_hot=True)
        labels = set(self.counts[True]) | set(self.counts[False])
        return TargetEncoder._fit_classes(np.array(list(labels), dtype=object))

    def class_counts(self, target: TargetEncoder, train: bool) -> np.ndarray:
        """Rows per class (in the order of `target.classes`) in one part."""
        counts = self.counts[train]
        if self.one_hot:
            return np.array([counts.get(i, 0) for i in range(self.one_hot)], dtype=np.int64)
        return np.array([counts.get(c, 0) for c in target.classes], dtype=np.int64)
