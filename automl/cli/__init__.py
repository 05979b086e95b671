"""The `automl` command (`automl fit`, `automl predict`, `automl export`, `automl benchmark`)."""

from automl.cli.commands import main

__all__ = ["main"]
