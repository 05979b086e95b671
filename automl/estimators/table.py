"""Estimators for tables: 2-D arrays, DataFrames with any column types, or a CSV file."""

from __future__ import annotations

from automl.estimators.base import AutoClassifier, AutoModel


class StructuredDataClassifier(AutoClassifier):
    """Searches a Keras classifier for tables (2-D arrays or DataFrames with any column types)."""

    _kind = "table"


class StructuredDataRegressor(AutoModel):
    """Searches a Keras regressor for tables (2-D arrays or DataFrames with any column types)."""

    _kind = "table"
    _task = "regression"
