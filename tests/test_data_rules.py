"""The data rules the README states: missing values, infinite values, vocabularies.

A numpy table and the same table as a DataFrame are preprocessed alike: NaN is a
missing value filled with the column's median (computed on the training data),
inf is refused; a categorical column keeps its most frequent values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl.data.preprocessing import MAX_VOCABULARY, Preprocessor
from automl.errors import InputError

TABLE = np.array([[1.0, 10.0], [2.0, np.nan], [100.0, 30.0], [np.nan, 40.0], [3.0, 1000.0]])


def test_missing_values_are_filled_with_the_median_for_numpy_and_pandas_alike():
    by_array = Preprocessor.fit_table(TABLE)
    by_frame = Preprocessor.fit_table(pd.DataFrame(TABLE, columns=["a", "b"]))
    medians = [2.5, 35.0]  # of the present values; the means would be 26.5 and 270
    row = np.array([[np.nan, np.nan]])
    np.testing.assert_allclose(by_array.transform(row)[0], medians)
    frame = by_frame.transform(pd.DataFrame(row, columns=["a", "b"]))
    np.testing.assert_allclose([frame["a"][0, 0], frame["b"][0, 0]], medians)
    present = np.array([[7.0, 8.0]])  # present values pass through unchanged
    np.testing.assert_allclose(by_array.transform(present), present)


@pytest.mark.parametrize("as_frame", [False, True])
def test_infinite_values_are_refused_in_fit_and_in_predict(as_frame):
    def table(x):
        return pd.DataFrame(x, columns=["a", "b"]) if as_frame else x

    bad = TABLE.copy()
    bad[0, 1] = -np.inf
    with pytest.raises(InputError, match="infinite values"):
        Preprocessor.fit_table(table(bad))
    fitted = Preprocessor.fit_table(table(TABLE))
    with pytest.raises(InputError, match="infinite values"):
        fitted.transform(table(bad))


def test_a_categorical_column_keeps_its_most_frequent_values():
    rare = [f"a{i:04d}" for i in range(MAX_VOCABULARY)]  # alphabetically first, once each
    common = [f"z{i:04d}" for i in range(MAX_VOCABULARY)]  # alphabetically last, three times
    frame = pd.DataFrame({"city": rare + common * 3})
    vocabulary = Preprocessor.fit_table(frame).columns[0]["vocabulary"]
    assert len(vocabulary) == MAX_VOCABULARY
    assert set(vocabulary) == set(common)


def test_text_in_a_numeric_column_is_refused_at_predict():
    fitted = Preprocessor.fit_table(pd.DataFrame({"a": [1.0, 2.0, 3.0]}))
    with pytest.raises(InputError, match="held numbers in fit.*'n/a'"):
        fitted.transform(pd.DataFrame({"a": ["1", "n/a", None]}))
    out = fitted.transform(pd.DataFrame({"a": ["1", None, "3.5"]}))  # numbers as text are fine
    np.testing.assert_allclose(out["a"][:, 0], [1.0, 2.0, 3.5])


def test_regression_targets_near_1e30_are_refused_before_training(tmp_path):
    import automl

    x = np.random.default_rng(0).normal(size=(40, 2))
    model = automl.StructuredDataRegressor(directory=tmp_path, max_trials=1, verbose=0)
    with pytest.raises(InputError, match=r"reach 1\.\d+e\+30.*y / 1e12"):
        model.fit(x, 1e30 * (1 + 0.1 * np.abs(x[:, 0])))
    assert not (tmp_path / "structured_data_regressor").exists()
