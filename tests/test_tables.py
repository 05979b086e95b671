"""Tables: the linear seed first, cross-validated trials on small tables, target scaling on
the training part, quantile ranks of skewed columns, the size cap by rows."""

import os

import numpy as np
import pandas as pd
import pytest

import automl
from automl.data import arrays as data_mod

SMALL = {"max_trials": 2, "epochs": 2, "verbose": 0}


def linear_table(rng, n: int, noise: float = 0.1):
    x = rng.normal(size=(n, 4))
    return x, x @ np.array([1.0, -2.0, 0.5, 0.0]) + 3.0 + noise * rng.normal(size=n)


@pytest.mark.parametrize("stratify", [True, False])
def test_cross_validation_folds_cover_every_sample_once(stratify):
    y = np.array([0] * 30 + [1] * 10 + [2] * 5)
    folds = data_mod.cross_validation_folds(y, 5, stratify, seed=0)
    assert len(folds) == 5
    validation = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(validation), np.arange(len(y)))
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == len(y)
        if stratify:  # each class in every validation part, in proportion
            np.testing.assert_array_equal(np.bincount(y[val]), [6, 2, 1])
    assert [list(v) for _, v in folds] == [
        list(v) for _, v in data_mod.cross_validation_folds(y, 5, stratify, seed=0)
    ]


def test_a_small_table_is_cross_validated_and_its_model_averages_the_folds(tmp_path, rng):
    from automl.training.fit import load_weights

    x, y = linear_table(rng, 150)
    reg = automl.StructuredDataRegressor(directory=tmp_path, ensemble_size=1, **SMALL).fit(x, y)
    tuner = reg.backend_.tuner
    summary = tuner.trial_summary(reg.best_trial_id_)
    assert summary["folds"] == 5 and len(summary["fold_scores"]) == 5
    assert summary["score"] == pytest.approx(np.mean(summary["fold_scores"]))
    assert reg.search_summary()["score"].notna().all()
    # the exported model is the mean of the five fold models, each loaded from its file
    fold_predictions = []
    for fold in range(5):
        path = tuner.weights_path(reg.best_trial_id_, fold)
        assert os.path.exists(path) and (fold == 0) == path.endswith("model.weights.h5")
        model = reg.backend_.build(reg.best_architecture_)
        load_weights(model, path)
        fold_predictions.append(model.predict(x[:16], verbose=0))
    np.testing.assert_allclose(
        reg.export_model().predict(x[:16], verbose=0),
        np.mean(fold_predictions, axis=0),
        rtol=1e-4,
        atol=1e-4,
    )
    assert np.ptp([p[0, 0] for p in fold_predictions]) > 0  # the folds trained differently


def test_the_first_table_trials_are_a_linear_model_then_an_mlp(tmp_path, rng):
    from automl.graph.seeds import linear

    x, y = linear_table(rng, 150)
    reg = automl.StructuredDataRegressor(directory=tmp_path, **SMALL).fit(x, y)
    summary = reg.search_summary().sort_values("trial_id")  # in trial order
    ids, keys = summary["trial_id"].tolist(), summary["key"].tolist()
    assert keys[0] == linear((4,), 1, "linear").key()
    params = summary["params"].tolist()
    assert params[0] == 5 and params[1] > 5  # 4 weights and a bias, then the MLP
    rates = [
        float(reg.backend_.build(reg.backend_.tuner.trial_graph(t)).optimizer.learning_rate)
        for t in ids
    ]
    assert rates == pytest.approx([1e-2, 1e-3])  # the linear model trains at a higher rate


def test_a_large_table_is_split_once_and_regression_scaling_sees_its_training_part(tmp_path, rng):
    x, y = linear_table(rng, 1200)
    y[:600] += 50.0  # the first half shifted: the training part's mean is not the whole mean
    reg = automl.StructuredDataRegressor(directory=tmp_path, max_trials=1, epochs=1, verbose=0)
    train, val, full, folds, _ = reg._prepare(x, y, 0.2, None)
    assert folds == [] and len(train[1]) == 960 and len(val[1]) == 240
    assert reg.target_.mean[0] == pytest.approx(float(np.mean(train[1])), rel=1e-5)
    assert reg.target_.mean[0] != pytest.approx(float(np.mean(y)), rel=1e-3)
    small = automl.StructuredDataRegressor(directory=tmp_path, max_trials=1, verbose=0)
    train, val, _, folds, _ = small._prepare(x[:300], y[:300], 0.2, None)
    assert len(folds) == 5 and folds[0][0][1] is train[1]


def test_validation_split_is_still_checked_on_small_tables(tmp_path, rng):
    from automl.errors import InputError

    x, y = linear_table(rng, 60)
    reg = automl.StructuredDataRegressor(directory=tmp_path, **SMALL)
    with pytest.raises(InputError, match="validation_split must be a number between 0 and 1"):
        reg.fit(x, y, validation_split=1.5)


def test_a_skewed_column_also_enters_as_its_quantile_rank(tmp_path, rng):
    import keras

    from automl.data.preprocessing import QUANTILE_BINS, Preprocessor

    n = 400
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(0, 1.5, n),
            "age": rng.normal(40, 10, n),
            "flag": rng.integers(0, 2, n).astype(float),
        }
    )
    pre = Preprocessor.fit_table(frame)
    columns = {c["name"]: c for c in pre.columns}
    assert 0 < len(columns["income"]["quantiles"]) <= QUANTILE_BINS - 1
    assert columns["age"]["quantiles"] == [] and columns["flag"]["quantiles"] == []
    assert pre.graph_shape == [4]  # three columns and one rank
    inputs, x = pre.build_inputs()
    model = keras.Model(inputs, x)
    out = model.predict(pre.transform(frame), verbose=0)
    rank = out[:, 1]  # income: normalised value, then its rank in [0, 1]
    assert rank.min() == 0.0 and rank.max() == 1.0
    order = np.argsort(frame["income"].to_numpy())
    assert (np.diff(rank[order]) >= 0).all()  # the rank follows the value
    assert abs(np.mean(rank) - 0.5) < 0.05  # spread evenly, unlike the long-tailed value


def test_table_size_cap_follows_the_rows():
    from automl.search.spaces import DEFAULT_MAX_MODEL_SIZE, table_size_cap

    assert table_size_cap(100) == 2**13
    assert table_size_cap(1000) == 50_000
    assert table_size_cap(10**6) == DEFAULT_MAX_MODEL_SIZE


def test_final_build_time_counts_each_fold_of_the_best_trials():
    from automl.search.cost import final_seconds

    summaries = [
        {"score": 0.9, "build_seconds": 1.0, "folds": 5},
        {"score": 0.8, "build_seconds": 2.0},
        {"score": 0.7, "build_seconds": 10.0},
        {"score": None},
    ]
    assert final_seconds(summaries, 2, +1.0) == pytest.approx(1.0 * 30 + 2.0 * 2)
    assert final_seconds(summaries, 1, -1.0) == pytest.approx(10.0 * 2)  # lower is better
    assert final_seconds([], 5, 1.0) == 0.0
