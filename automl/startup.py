"""What `import automl` sets up: quiet TensorFlow start-up lines, and automl's Keras
layers registered once Keras is imported (so saved cell models load), without
importing TensorFlow or Keras itself.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import sys


def _register_layers(cells: bool = True) -> None:
    """Register automl's custom Keras layers (cells, text layers), so saved models load."""
    if cells:
        importlib.import_module("automl.cells.layers")
    importlib.import_module("automl.graph.text_keras")


_QUIET = os.environ.get("AUTOML_TF_LOGS", "").lower() not in ("1", "true", "yes")
if _QUIET:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def native_stderr_silenced():
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
                with native_stderr_silenced():
                    exec_module(module)
            else:
                exec_module(module)
            sys.modules[name] = module
            if name != "keras":
                return
            try:  # automl.cells, if importing it imported Keras, registers its own layers
                _register_layers(cells="automl.cells" not in sys.modules)
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


def install() -> None:
    """Register the layers now if Keras is loaded, otherwise once it is."""
    if "keras" in sys.modules:
        _register_layers()
    elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
