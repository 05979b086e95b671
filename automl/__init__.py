"""automl: a Keras AutoML library.

Importing `automl` is light: TensorFlow loads only when an estimator is used, so
`automl.kernels`, `automl.graph.architecture` and `automl.morphism.operators`
work without it.

Example:
    >>> import automl
    >>> clf = automl.ImageClassifier(max_trials=3, seed=0)  # doctest: +SKIP
    >>> clf.fit(x_train, y_train).predict(x_test)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "ImageClassifier": "automl.tasks",
    "ImageRegressor": "automl.tasks",
    "StructuredDataClassifier": "automl.tasks",
    "StructuredDataRegressor": "automl.tasks",
    "ArchitectureGraph": "automl.graph.architecture",
    "AutoMLError": "automl.errors",
    "InputError": "automl.errors",
    "NotFittedError": "automl.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'automl' has no attribute {name!r}")


def __dir__():
    return __all__
