"""The exception family of automl. Every message says what was received and what to do."""

from __future__ import annotations


class AutoMLError(Exception):
    """Base class of every error automl raises on purpose."""


class InputError(AutoMLError, ValueError):
    """The data or an argument given by the user cannot be used; raised before training."""


class NotFittedError(AutoMLError, AttributeError):
    """The estimator is used before `fit` was called."""


class SearchError(AutoMLError, RuntimeError):
    """The search cannot go on (for example every trial failed)."""


class DamagedFileError(Exception):
    """A trial's file is missing or does not match its recorded checksum.

    Caught inside the search, which retires the trial; never raised to the user.
    """


class DiskFullError(OSError):
    """A trial's weights could not be written for want of disk space ("disk full at PATH
    (needs about N MB)"). Caught inside the search, which records the trial as failed and
    stops with a `SearchError` that says how to resume."""


class TrainingDiverged(ArithmeticError):
    """A trial's loss or objective became NaN or infinite; the search records the trial
    as failed and goes on."""
