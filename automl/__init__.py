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
import importlib.abc
import importlib.util
import sys

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
    "SearchError": "automl.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'automl' has no attribute {name!r}")


def __dir__():
    return __all__


def _register_layers() -> None:
    """Register automl's custom Keras layers (cells), so saved cell models load."""
    importlib.import_module("automl.cells.layers")


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Registers automl's layers once Keras is imported, so `import automl` stays light.

    `keras.models.load_model` finds custom layers only if they are registered;
    importing them here eagerly would load TensorFlow for every `import automl`.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            sys.modules[name] = module
            if "automl.cells" in sys.modules:  # being imported: it registers its own layers
                return
            try:
                _register_layers()
            except Exception as err:  # never break `import keras` for the user
                import warnings

                warnings.warn(f"automl could not register its Keras layers: {err}", stacklevel=2)

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_layers()
elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
