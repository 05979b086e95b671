"""automl: a Keras AutoML library.

Importing `automl` is light: TensorFlow loads only when an estimator is used, so
`automl.kernels`, `automl.graph.architecture` and `automl.morphism.operators`
work without it.

TensorFlow's C++ log lines (oneDNN notices, "Could not find cuda drivers", ...) are
kept quiet when Keras or TensorFlow is imported after `automl`: they go nowhere
while TensorFlow loads, and `TF_CPP_MIN_LOG_LEVEL` defaults to 3. Set the
environment variable `AUTOML_TF_LOGS=1` before importing automl to see them.

Example:
    >>> import automl
    >>> clf = automl.ImageClassifier(max_trials=3, seed=0)  # doctest: +SKIP
    >>> clf.fit(x_train, y_train).predict(x_test)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from automl import startup

__version__ = "0.1.0"

_LAZY = {
    "ImageClassifier": "automl.estimators.image",
    "ImageRegressor": "automl.estimators.image",
    "StructuredDataClassifier": "automl.estimators.table",
    "StructuredDataRegressor": "automl.estimators.table",
    "TextClassifier": "automl.estimators.text",
    "TextRegressor": "automl.estimators.text",
    "ArchitectureGraph": "automl.graph.architecture",
    "AutoMLError": "automl.errors",
    "InputError": "automl.errors",
    "NotFittedError": "automl.errors",
    "SearchError": "automl.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'automl' has no attribute {name!r}")


def __dir__():
    return __all__


startup.install()
