"""The promise that a search needs no TensorFlow on JAX, kept where it can be checked.

CI's JAX step runs this file with AUTOML_TEST_WITHOUT_TENSORFLOW=1 (see conftest.py):
every `import tensorflow` then fails as on a machine without it. Elsewhere it is skipped.
"""

from __future__ import annotations

import sys

import no_tensorflow
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    not no_tensorflow.blocked(), reason="needs AUTOML_TEST_WITHOUT_TENSORFLOW=1 (CI's JAX step)"
)


def test_the_default_image_search_reaches_99_percent_on_digits_in_3_minutes(tmp_path):
    import automl
    from automl.data.datasets import load_builtin

    data = load_builtin("digits")  # the same split as `automl fit digits`
    clf = automl.ImageClassifier(time_limit="3m", seed=0, directory=str(tmp_path), verbose=0)
    clf.fit(data.x_train, data.y_train)
    accuracy = float(np.mean(clf.predict(data.x_test) == data.y_test))
    assert accuracy >= 0.99
    assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"]


def test_a_milenas_search_runs_and_predicts(tmp_path):
    import automl
    from automl.data.datasets import load_builtin

    data = load_builtin("digits")
    small = {"space": "nb201", "stages": 1, "search_epochs": 2, "search_cells": 1,
             "search_channels": 8, "cells": 1, "channels": 8}  # fmt: skip
    clf = automl.ImageClassifier(
        strategy="milenas", cell_options=small, max_trials=1, epochs=3, seed=0,
        directory=str(tmp_path), verbose=0,
    )  # fmt: skip
    clf.fit(data.x_train, data.y_train)
    accuracy = float(np.mean(clf.predict(data.x_test) == data.y_test))
    assert accuracy > 0.5  # ten classes: far above chance after three epochs
    assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
