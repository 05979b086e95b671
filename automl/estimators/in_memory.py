"""Arrays and DataFrames held in memory: checked, split into training and validation
parts (or cross-validation folds for small tables), and encoded for the search.

The streaming counterpart, for data read one batch at a time, is
`automl.estimators.streaming`.
"""

from __future__ import annotations

import numpy as np

from automl.data import arrays as data_mod
from automl.data.heads import HEADS
from automl.data.preprocessing import Preprocessor
from automl.errors import InputError
from automl.estimators.options import check_sample_weight
from automl.project.files import hash_arrays

CV_ROWS = 1000  # tables with fewer rows score trials by cross-validation
CV_FOLDS = 5


def prepare(estimator, x, y, validation_split, validation_data, sample_weight=None):
    """Fit the preprocessing and the head; (train, val, train + val or None, folds, fingerprint).

    `folds` lists (train, val) pairs when trials are scored by cross-validation
    (tables of fewer than `CV_ROWS` rows without `validation_data`), else it is
    empty. The fingerprint is a hash of the data and its validation split, for the
    signature. Regression targets are scaled by the training part's mean and std.

    Sets the estimator's fitted `preprocessor_`, `head_` and `target_`.
    """
    x, y = data_mod.to_arrays(x, y)
    if y is None:
        raise InputError("fit needs targets: pass y, or a tf.data.Dataset of (x, y) pairs.")
    if len(x) != len(y):
        raise InputError(
            f"x and y have different numbers of samples. Received: len(x)={len(x)}, "
            f"len(y)={len(y)}."
        )
    if len(y) < 4:
        raise InputError(f"fit needs at least 4 samples. Received: {len(y)}.")
    weights = check_sample_weight(sample_weight, len(y))
    if estimator._kind == "image":
        estimator.preprocessor_ = Preprocessor.fit_images(x)
    elif estimator._kind == "text":
        estimator.preprocessor_ = Preprocessor.fit_text(x)
    else:
        estimator.preprocessor_ = Preprocessor.fit_table(x)
    estimator.head_ = HEADS[estimator._task].fit(y)
    if estimator._task == "classification" and estimator.head_.n_outputs > len(y) / 2:
        raise InputError(
            f"y has {estimator.head_.n_outputs} classes in {len(y)} samples: fewer than 2 samples "
            "per class on average, too few to learn any class. If y is a continuous target "
            "or an id, use a regressor or drop it; otherwise pass more samples per class."
        )
    inputs, targets = estimator.preprocessor_.transform(x), estimator.head_.encode(y)
    if validation_data is not None:
        if isinstance(validation_data, (tuple, list)):
            x_val, y_val = data_mod.to_arrays(*validation_data)
        else:
            x_val, y_val = data_mod.to_arrays(validation_data)
        if y_val is None:
            raise InputError("validation_data needs targets: pass (x_val, y_val).")
        estimator.target_ = estimator.head_.target
        val = (estimator.preprocessor_.transform(x_val), estimator.head_.encode(y_val))
        train = (inputs, targets) + ((weights,) if weights is not None else ())
        return train, val, None, [], hash_arrays(x, y, x_val, y_val)
    stratify = estimator._task == "classification"
    if estimator._kind == "table" and len(y) < CV_ROWS:
        data_mod.check_fraction(validation_split)
        pairs = data_mod.cross_validation_folds(targets, CV_FOLDS, stratify, estimator.seed)
        split = np.asarray([CV_FOLDS])
    else:
        pairs = [data_mod.split_validation(x, targets, validation_split, stratify, estimator.seed)]
        split = np.float64(validation_split)
    if estimator._task == "regression":  # the target scaling sees the training part only
        estimator.head_ = HEADS[estimator._task].fit(data_mod.take(y, pairs[0][0]))
    estimator.target_ = estimator.head_.target

    def part(rows):
        chosen = (data_mod.take(inputs, rows), targets[rows])
        return chosen + ((weights[rows],) if weights is not None else ())

    folds = [(part(i_tr), part(i_val)) for i_tr, i_val in pairs]
    train, val = folds[0]
    cross_validation = folds if len(folds) > 1 else []
    full = (inputs, targets) + ((weights,) if weights is not None else ())
    return train, val, full, cross_validation, hash_arrays(x, y, split)
