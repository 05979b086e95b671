"""Estimators for text: one string per sample (a list, array or pandas Series), or a
folder with one subfolder of `.txt` files per class.

The model tokenises the raw strings itself on TensorFlow (words, then bigrams, against
a vocabulary fitted on the training part), so an exported `.keras` model takes strings.
"""

from __future__ import annotations

import os

from automl.data import arrays as data_mod
from automl.data.text_folder import read_text_folder
from automl.errors import InputError
from automl.estimators.base import AutoClassifier, AutoModel


def _texts(x, y=None):
    """(texts, targets) from what a user passes: arrays as they are; a folder read in
    full (its subfolder names are the labels); a tf.data.Dataset of (text, target)."""
    if isinstance(x, (str, os.PathLike)):
        if not os.path.isdir(os.fspath(x)):
            raise InputError(
                f"x is a string ({os.fspath(x)[:60]!r}) but not a folder. Pass a list of texts, "
                "or a folder with one subfolder of .txt files per class."
            )
        if y is not None:
            raise InputError(
                "The labels of a text folder are the names of its subfolders; do not pass y."
            )
        return read_text_folder(x)
    if data_mod.is_dataset(x):
        return data_mod.to_arrays(x, y)
    return x, y


class _TextModel:
    _kind = "text"

    def _prepare(self, x, y, validation_split, validation_data, sample_weight=None):
        from automl.estimators import in_memory

        x, y = _texts(x, y)
        if isinstance(validation_data, (str, os.PathLike)):
            validation_data = _texts(validation_data)
        return in_memory.prepare(self, x, y, validation_split, validation_data, sample_weight)

    def _raw_predict(self, x):
        return super()._raw_predict(_texts(x)[0])

    def evaluate(self, x, y=None) -> dict:
        return super().evaluate(*_texts(x, y))


class TextClassifier(_TextModel, AutoClassifier):
    """Searches a Keras text classifier. x: one string per sample, or a folder of
    class subfolders holding `.txt` files."""


class TextRegressor(_TextModel, AutoModel):
    """Searches a Keras text regressor. x: one string per sample."""

    _task = "regression"
