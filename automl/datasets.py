"""Built-in datasets (from scikit-learn, no download) and file loaders for the command line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from automl.errors import InputError

BUILTIN = {
    "digits": ("load_digits", "image", "classification"),
    "iris": ("load_iris", "table", "classification"),
    "wine": ("load_wine", "table", "classification"),
    "breast_cancer": ("load_breast_cancer", "table", "classification"),
    "diabetes": ("load_diabetes", "table", "regression"),
}
TEST_SIZE = 0.2


@dataclass
class Split:
    """A dataset split into train and a fixed held-out test part."""

    name: str
    kind: str  # "image" or "table"
    task: str  # "classification" or "regression"
    x_train: object
    y_train: np.ndarray
    x_test: object
    y_test: np.ndarray


def split(name: str, kind: str, task: str, x, y) -> Split:
    """20% held out, stratified for classification, random_state 0."""
    from sklearn.model_selection import train_test_split

    stratify = y if task == "classification" and np.unique(y).size < len(y) // 2 else None
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, random_state=0,
                                              stratify=stratify)  # fmt: skip
    return Split(name, kind, task, x_tr, y_tr, x_te, y_te)


def load_builtin(name: str) -> Split:
    """One of `BUILTIN` with its fixed test split; digits come as 8x8 images."""
    if name not in BUILTIN:
        raise InputError(f"Unknown dataset {name!r}. Built-in datasets: {sorted(BUILTIN)}.")
    import sklearn.datasets

    loader, kind, task = BUILTIN[name]
    x, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    if kind == "image":
        x = x.reshape(-1, 8, 8)
    return split(name, kind, task, x, y)


def infer_task(y) -> str:
    """Classification for non-numeric or few distinct integer targets, else regression."""
    y = np.asarray(y)
    if y.dtype.kind in "OUSb":
        return "classification"
    if y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
        return "classification" if np.unique(y).size <= 20 else "regression"
    return "regression"


def load_csv(path: str, target: str, task: str = "auto") -> Split:
    """A CSV file with a target column; the other columns are features."""
    import pandas as pd

    frame = pd.read_csv(path)
    if target not in frame.columns:
        raise InputError(
            f"Column {target!r} is not in {path}. Columns: {list(frame.columns)}. "
            "Pass the target with --target."
        )
    frame = frame[frame[target].notna()]
    y = frame.pop(target).to_numpy()
    task = infer_task(y) if task == "auto" else task
    return split(path, "table", task, frame, y)


def load_npz(path: str, task: str = "auto") -> Split:
    """An .npz file with arrays x and y, or x_train, y_train, x_test, y_test."""
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
        x_tr, y_tr, x_te, y_te = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        kind = "image" if x_tr.ndim >= 3 else "table"
        task = infer_task(y_tr) if task == "auto" else task
        return Split(path, kind, task, x_tr, y_tr, x_te, y_te)
    if not {"x", "y"} <= set(arrays):
        raise InputError(
            f"{path} must hold arrays 'x' and 'y' (or x_train, y_train, x_test, y_test). "
            f"Found: {sorted(arrays)}."
        )
    x, y = arrays["x"], arrays["y"]
    task = infer_task(y) if task == "auto" else task
    return split(path, "image" if x.ndim >= 3 else "table", task, x, y)
