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

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
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


_QUIET = os.environ.get("AUTOML_TF_LOGS", "").lower() not in ("1", "true", "yes")
if _QUIET:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send the process's C-level standard error nowhere (TensorFlow's start-up lines)."""
    try:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (an embedded interpreter)
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Registers automl's layers once Keras is imported, so `import automl` stays light.

    `keras.models.load_model` finds custom layers only if they are registered;
    importing them here eagerly would load TensorFlow for every `import automl`.
    While Keras or TensorFlow loads, their C++ start-up lines are kept quiet.
    """

    def find_spec(self, name, path=None, target=None):
        if name not in ("keras", "tensorflow") or name in sys.modules:
            return None
        if name == "keras":
            sys.meta_path.remove(self)
        elif not _QUIET:
            return None
        spec = importlib.util.find_spec(name) if name == "keras" else self._real_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            if _QUIET:
                with _native_stderr_silenced():
                    exec_module(module)
            else:
                exec_module(module)
            sys.modules[name] = module
            if name != "keras" or "automl.cells" in sys.modules:  # it registers its own layers
                return
            try:
                _register_layers()
            except Exception as err:  # never break `import keras` for the user
                import warnings

                warnings.warn(f"automl could not register its Keras layers: {err}", stacklevel=2)

        spec.loader.exec_module = exec_then_register
        return spec

    def _real_spec(self, name):
        sys.meta_path.remove(self)
        try:
            return importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)


if "keras" in sys.modules:
    _register_layers()
elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
