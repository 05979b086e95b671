"""Checks and parsing of the estimators' arguments: constructor arguments, durations, fit
options, sample weights."""

from __future__ import annotations

import math
import re

import numpy as np

from automl.errors import InputError

_UNITS = {
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "": 1,
}


def parse_time_limit(value) -> float | None:
    """Seconds from a number or a string like "90s", "30m", "5 minutes", "1h30m"; None stays None."""
    if value is None:
        return None
    wrong = InputError(
        "time_limit must be seconds or a duration like '90s', '30m', '5 minutes', '1h30m'. "
        f"Received: time_limit={value!r}."
    )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"time_limit must be positive. Received: time_limit={value!r}.")
        return float(value)
    if not isinstance(value, str):
        raise wrong
    text = value.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)\s*,?\s*(?:and\s+)?", text)
    rebuilt = re.sub(r"\s*(,|and)\s*", " ", text)
    if not parts or re.sub(r"[\s]", "", "".join(n + u for n, u in parts)) != re.sub(
        r"\s", "", rebuilt
    ):
        raise wrong
    if any(unit not in _UNITS for _, unit in parts) or sum(not u for _, u in parts) > 1:
        raise wrong
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise InputError(f"time_limit must be positive. Received: time_limit={value!r}.")
    return seconds


def check_sample_weight(sample_weight, n: int) -> np.ndarray | None:
    """`sample_weight` as a float32 vector of `n` finite non-negative values, or None."""
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype="float32").reshape(-1)
    except (TypeError, ValueError):
        raise InputError(
            f"sample_weight must be numbers, one per sample. Received: {type(sample_weight).__name__}."
        ) from None
    if len(weights) != n:
        raise InputError(
            f"sample_weight needs one weight per sample: {n}. Received: {len(weights)} weights."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        raise InputError(
            "sample_weight must be finite and non-negative, with at least one above 0."
        )
    return weights


def check_fit_options(
    callbacks, class_weight, task: str, classes: list
) -> tuple[list, dict | None]:
    """(callbacks, class weights by class index) from `fit`'s arguments.

    "balanced" gives None here: its weights come from the class counts.

    Raises:
        InputError: a callback that is not a Keras callback, or class weights that are
            not for a classifier, name unknown labels, or are not non-negative numbers.
    """
    import keras

    callbacks = list(callbacks or [])
    bad = [type(c).__name__ for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
    if bad:
        raise InputError(f"callbacks must be keras.callbacks.Callback instances. Received: {bad}.")
    if class_weight is None:
        return callbacks, None
    if task != "classification":
        raise InputError("class_weight applies to classifiers only; use sample_weight.")
    if class_weight == "balanced":
        return callbacks, None  # see balanced_weights
    if not isinstance(class_weight, dict):
        raise InputError(
            "class_weight must be a dict {label: weight} or 'balanced'. "
            f"Received: {type(class_weight).__name__}."
        )
    unknown = [k for k in class_weight if k not in classes]
    if unknown:
        raise InputError(f"class_weight names labels not in y: {unknown}. The labels: {classes}.")
    weights = {}
    for i, label in enumerate(classes):
        value = class_weight.get(label, 1.0)
        if not isinstance(value, (int, float, np.number)) or not math.isfinite(value) or value < 0:
            raise InputError(
                f"class_weight values must be non-negative numbers. Received: {label!r}: {value!r}."
            )
        weights[i] = float(value)
    return callbacks, weights


def balanced_weights(targets, n_classes: int) -> dict:
    """Class index -> weight inversely proportional to its count in `targets` (class
    indices or one-hot rows), as scikit-learn's "balanced": n / (classes * count).
    The targets of a stream bring their class counts (`class_counts`)."""
    counts = getattr(targets, "class_counts", None)
    if counts is not None:
        total = int(np.sum(counts))
        return {i: float(total / (n_classes * max(int(c), 1))) for i, c in enumerate(counts)}
    targets = np.asarray(targets)
    index = targets.argmax(axis=1) if targets.ndim > 1 else targets.astype(int).ravel()
    counts = np.bincount(index, minlength=n_classes)
    return {i: float(len(index) / (n_classes * max(c, 1))) for i, c in enumerate(counts)}


def check_params(estimator) -> tuple:
    """An estimator's constructor arguments, checked: (time limit in seconds, the search
    backend's resolved options, this process's `Role`).

    Raises:
        InputError: an argument is wrong (the message names it and what was received).
    """
    from automl.engine import registry
    from automl.engine.distributed import resolve_role

    strategy = registry.check(estimator.strategy, estimator._kind, estimator._task)
    options = strategy.backend_class().check_settings(
        estimator.strategy, estimator._kind, estimator._task, estimator.cell_options
    )
    for name in ("max_trials", "batch_size", "ensemble_size"):
        value = getattr(estimator, name)
        if name == "max_trials" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive integer. Received: {name}={value!r}.")
    if (
        isinstance(estimator.seed, bool)
        or not isinstance(estimator.seed, (int, np.integer))
        or not (0 <= estimator.seed < 2**32)
    ):
        raise InputError(
            f"seed must be a non-negative integer below 2**32. Received: seed={estimator.seed!r}."
        )
    if estimator.epochs is not None and (
        isinstance(estimator.epochs, bool)
        or not isinstance(estimator.epochs, (int, np.integer))
        or estimator.epochs < 1
    ):
        raise InputError(
            f"epochs must be a positive integer, or None for early stopping. "
            f"Received: epochs={estimator.epochs!r}."
        )
    if estimator.max_model_size is not None and (
        not isinstance(estimator.max_model_size, (int, np.integer)) or estimator.max_model_size < 1
    ):
        raise InputError(
            "max_model_size must be a positive number of parameters, or None. "
            f"Received: max_model_size={estimator.max_model_size!r}."
        )
    if estimator.tensorboard_dir is not None:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise InputError(
                "tensorboard_dir needs the tensorboard package: pip install tensorboard. "
                f"Received: tensorboard_dir={estimator.tensorboard_dir!r}."
            )
    if estimator.verbose not in (0, 1, 2) or isinstance(estimator.verbose, bool):
        raise InputError(f"verbose must be 0, 1 or 2. Received: verbose={estimator.verbose!r}.")
    check_project(estimator)
    role = resolve_role(estimator.chief, estimator.worker, estimator.token, estimator.tls)
    if role.kind != "single" and not strategy.distributed:
        raise InputError(
            "A search on several machines runs strategy "
            f"{registry.quoted(registry.names(distributed=True))}. "
            f"Received: strategy={estimator.strategy!r} with a {role.kind} role."
        )
    return parse_time_limit(estimator.time_limit), options, role


def check_project(estimator) -> None:
    """Refuse a `directory`, `project_name` or `break_lock` that is wrong, before anything
    is written: the name is one safe folder name (`automl.project.folder.NAME_RULE`)."""
    import os

    from automl.project.folder import check_name

    directory = estimator.directory
    if not isinstance(directory, (str, os.PathLike)) or not str(os.fspath(directory)).strip():
        raise InputError(
            f"directory must be a folder path (str or pathlib.Path). Received: "
            f"directory={directory!r}."
        )
    if "\0" in str(os.fspath(directory)):
        raise InputError(f"directory must not hold a NUL character. Received: {directory!r}.")
    if estimator.project_name is not None:
        check_name(estimator.project_name)
    if not isinstance(estimator.break_lock, (bool, np.bool_)):
        raise InputError(
            f"break_lock must be True or False. Received: break_lock={estimator.break_lock!r}."
        )


DEFAULT_TRIALS = 10  # without a time limit
TIME_LIMITED_TRIALS = 999  # with one, when max_trials is not given


def trial_limit(max_trials: int | None, time_limit: float | None) -> tuple[int, bool]:
    """(the most trials a search runs, whether that is open-ended): `max_trials` when
    given; else 10 without a time limit, and with one as many as the time allows (at
    most 999), so the time is spent on trials rather than left over."""
    if max_trials is not None:
        return int(max_trials), False
    if time_limit is None:
        return DEFAULT_TRIALS, False
    return TIME_LIMITED_TRIALS, True
