"""Make this process a machine without TensorFlow: every `import tensorflow` fails as
it does when the package is not installed (and `"tensorflow" in sys.modules` stays
False, as it does there)."""

from __future__ import annotations

import importlib.abc
import sys


class NoTensorFlow(importlib.abc.MetaPathFinder):
    """An import hook under which TensorFlow cannot be found."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def install() -> None:
    """Block TensorFlow in this process, before anything imports it."""
    if "tensorflow" in sys.modules:
        raise RuntimeError("TensorFlow is already imported; block it before importing keras.")
    if not any(isinstance(f, NoTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, NoTensorFlow())


def blocked() -> bool:
    return any(isinstance(f, NoTensorFlow) for f in sys.meta_path)
