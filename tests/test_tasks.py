import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import automl
from automl.errors import InputError, NotFittedError

SMALL = {"max_trials": 1, "epochs": 2, "max_model_size": 20_000, "verbose": 0}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:240].reshape(-1, 8, 8), y[:240]


@pytest.fixture(scope="module")
def small_fit(digits, tmp_path_factory):
    """ImageClassifier(**SMALL) fitted once on `digits`, for the tests that only read it
    or copy its folder (DIR/image_classifier)."""
    x, y = digits
    return automl.ImageClassifier(directory=tmp_path_factory.mktemp("small"), **SMALL).fit(x, y)


def test_image_classifier_string_labels_end_to_end(digits, tmp_path):
    x, y = digits
    labels = np.array([f"digit{v}" for v in y])
    clf = automl.ImageClassifier(directory=tmp_path, seed=1, **SMALL)
    assert clf.fit(x, labels) is clf
    pred = clf.predict(x[:10])
    assert pred.shape == (10,) and set(pred) <= set(labels)
    proba = clf.predict_proba(x[:10])
    assert proba.shape == (10, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert list(clf.classes_) == sorted(set(labels))
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert set(clf.evaluate(x, labels)) == {"loss", "accuracy"}
    summary = clf.search_summary()
    assert list(summary.columns) == [
        "trial_id",
        "score",
        "ensemble",
        "val_loss",
        "params",
        "inference_ms",
        "seconds",
        "epochs",
        "elapsed",
        "parent",
        "morphism",
        "status",
        "reason",
        "strategy",
        "key",
        "search_score",
    ]
    scores = summary["score"].dropna().to_list()
    assert scores == sorted(scores, reverse=True)  # best first
    assert (summary["inference_ms"].dropna() > 0).all()
    assert summary.loc[0, "status"] == "COMPLETED" and summary.loc[0, "epochs"] == 2
    assert summary.loc[0, "params"] <= SMALL["max_model_size"]


def test_image_classifier_tf_data_and_one_hot(digits, tmp_path):
    import tensorflow as tf

    x, y = digits
    one_hot = np.eye(10)[y]
    ds = tf.data.Dataset.from_tensor_slices((x[..., None].astype("uint8"), one_hot)).batch(16)
    clf = automl.ImageClassifier(directory=tmp_path, **SMALL).fit(ds)
    pred = clf.predict(x[:5, :, :, None])
    proba = clf.predict_proba(x[:5, :, :, None])
    np.testing.assert_array_equal(pred, np.eye(10, dtype=int)[proba.argmax(axis=1)])


def _mse(pred, y) -> float:
    return float(np.mean((np.asarray(pred) - y) ** 2))


def test_image_regressor_beats_the_mean_in_target_units(tmp_path, rng):
    # the target is linear in each image's brightness, far from 0 (scaling lives in the model)
    x = rng.uniform(0, 255, size=(80, 6, 6, 3)) * rng.uniform(0, 1, size=(80, 1, 1, 1))
    y = 1000 + 50 * x.mean(axis=(1, 2, 3)) / 255
    reg = automl.ImageRegressor(directory=tmp_path, **{**SMALL, "epochs": 20})
    reg.fit(x[:64], y[:64])
    pred = reg.predict(x[64:])
    assert pred.shape == (16,)
    baseline = _mse(y[:64].mean(), y[64:])  # the constant-mean predictor
    assert _mse(pred, y[64:]) < 0.25 * baseline
    assert reg.evaluate(x[64:], y[64:])["mse"] == pytest.approx(_mse(pred, y[64:]), rel=1e-4)


def test_structured_classifier_dataframe_with_categories_and_missing(tmp_path, rng):
    n = 120
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "colour": rng.choice(["red", "green", None], size=n),
            "count": rng.integers(0, 5, size=n).astype(float),
        }
    )
    frame.loc[::7, "count"] = np.nan
    y = np.where(frame["size"] > 0, "big", "small")
    clf = automl.StructuredDataClassifier(directory=tmp_path, **SMALL).fit(frame, y)
    pred = clf.predict(frame.iloc[:8])
    assert set(pred) <= {"big", "small"}
    unseen = frame.iloc[:2].assign(colour=["purple", None])
    proba = clf.predict_proba(unseen)
    assert np.isfinite(proba).all()
    np.testing.assert_array_equal(clf.predict(unseen), clf.classes_[proba.argmax(axis=1)])


def test_structured_regressor_numpy_with_validation_data(tmp_path, rng):
    x = rng.normal(size=(80, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0])
    reg = automl.StructuredDataRegressor(directory=tmp_path, **{**SMALL, "epochs": None})
    reg.fit(x[:60], y[:60], validation_data=(x[60:], y[60:]))  # a linear model, to convergence
    pred = reg.predict(x[60:])
    assert _mse(pred, y[60:]) < 0.25 * _mse(y[:60].mean(), y[60:])
    exported = reg.export_model().predict(x[60:], verbose=0)  # raw features in, targets out
    np.testing.assert_allclose(pred, exported[:, 0], rtol=1e-5, atol=1e-4)


def test_early_stopping_keeps_the_epoch_with_the_lowest_validation_loss(digits, tmp_path):
    import keras

    class Record(keras.callbacks.Callback):
        losses, accuracies = [], []

        def on_epoch_end(self, epoch, logs=None):
            if "val_loss" in (logs or {}):  # trials only: the refit has no validation data
                self.losses.append(logs["val_loss"])
                self.accuracies.append(logs["val_accuracy"])

    x, y = digits
    clf = automl.ImageClassifier(
        directory=tmp_path, seed=0, ensemble_size=1, **{**SMALL, "epochs": None}
    )
    clf.fit(x, y, callbacks=[Record()])
    row = clf.search_summary().iloc[0]
    summary = clf.backend_.tuner.trial_summary(row["trial_id"])
    kept = int(np.argmin(Record.losses))
    assert summary["epochs"] == len(Record.losses) == kept + 6  # patience 5 after the lowest
    assert summary["best_epoch"] == kept + 1
    assert summary["val_loss"] == pytest.approx(Record.losses[kept])
    assert row["score"] == pytest.approx(Record.accuracies[kept])


def test_resume_keeps_finished_trials(digits, tmp_path):
    x, y = digits
    args = {**SMALL, "directory": tmp_path, "project_name": "resume", "seed": 3}
    first = automl.ImageClassifier(**{**args, "max_trials": 2}).fit(x, y)
    before = first.search_summary()
    trial_file = tmp_path / "resume" / "trial_0" / "summary.json"
    stamp = os.path.getmtime(trial_file)
    del first
    second = automl.ImageClassifier(**{**args, "max_trials": 3}).fit(x, y)
    after = second.search_summary()
    assert len(after) == 3
    assert os.path.getmtime(trial_file) == stamp  # not re-run
    same = [c for c in before.columns if c != "ensemble"]  # membership changes with trial 2

    def rows(frame) -> list[dict]:  # missing values as None, whatever the column's dtype
        frame = frame[same].astype(object)
        return frame.where(frame.notna(), None).to_dict("records")

    kept = after[after["trial_id"].isin(before["trial_id"])].sort_values("trial_id")
    assert rows(kept) == rows(before.sort_values("trial_id"))


def test_resume_refuses_other_data(digits, small_fit, tmp_path):
    import shutil

    x, y = digits
    args = {**SMALL, "directory": tmp_path, "project_name": "p"}
    shutil.copytree(os.path.join(small_fit.directory, "image_classifier"), tmp_path / "p")
    with pytest.raises(InputError, match="overwrite=True"):
        automl.ImageClassifier(**args).fit(x[:, :6, :6], y)


def test_export_loads_in_fresh_process_without_automl(digits, small_fit, tmp_path):
    x, _ = digits
    clf = small_fit
    path = tmp_path / "model.keras"
    clf.export_model().save(path)
    np.save(tmp_path / "x.npy", x[:20])
    code = (
        "import sys, numpy as np, keras;"
        f"m = keras.models.load_model({str(path)!r});"
        f"np.save({str(tmp_path / 'p.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0));"
        "assert 'automl' not in sys.modules"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), clf.predict_proba(x[:20]), atol=1e-5)


def test_the_final_model_combines_the_chosen_trials_as_reported_and_saves(digits, tmp_path):
    import keras

    from automl.engine.calibration import combine

    x, y = digits
    clf = automl.ImageClassifier(
        directory=tmp_path, seed=2, ensemble_size=2, **{**SMALL, "max_trials": 3}
    )
    clf.fit(x[:160], y[:160], validation_data=(x[160:], y[160:]))  # no refit: members unchanged
    tuner = clf.backend_.tuner
    trials = tuner.oracle.get_best_trials(3)
    assert clf.best_trial_id_ == trials[0].trial_id == clf.ensemble_trial_ids_[0]
    report = clf.calibration_
    assert list(report["weights"]) == clf.ensemble_trial_ids_
    assert report["ensemble_score"] >= report["best_single_score"]
    assert report["best_single_score"] == pytest.approx(trials[0].score, abs=1e-6)
    members = [tuner.load_model(tuner.oracle.get_trial(t)) for t in clf.ensemble_trial_ids_]
    expected = combine(
        [m.predict(x[:20], verbose=0) for m in members],
        list(report["weights"].values()),
        report["temperature"],
    )
    np.testing.assert_allclose(clf.predict_proba(x[:20]), expected, atol=1e-5)
    path = tmp_path / "ensemble.keras"
    clf.export_model().save(path)
    loaded = keras.models.load_model(path)  # safe mode, built-in layers only
    np.testing.assert_allclose(loaded.predict(x[:20], verbose=0), expected, atol=1e-5)
    single = automl.ImageClassifier(  # the same 3 trials, resumed: nothing trains again
        directory=tmp_path, seed=2, ensemble_size=1, **{**SMALL, "max_trials": 3}
    ).fit(x[:160], y[:160], validation_data=(x[160:], y[160:]))
    assert single.ensemble_trial_ids_ == [clf.best_trial_id_]
    names = [layer.name for layer in single.export_model().layers]
    assert "ensemble_mean" not in names and "ensemble_sum" not in names


def test_bad_input_fails_before_training(tmp_path):
    x = np.zeros((10, 8, 8))
    y = np.arange(10) % 2
    with pytest.raises(InputError, match="Unknown strategy 'nope'"):
        automl.ImageClassifier(strategy="nope", directory=tmp_path).fit(x, y)
    with pytest.raises(InputError, match="time_limit"):
        automl.ImageClassifier(time_limit="soon", directory=tmp_path).fit(x, y)
    with pytest.raises(InputError, match=r"len\(x\)=10, len\(y\)=9"):
        automl.ImageClassifier(directory=tmp_path).fit(x, y[:9])
    with pytest.raises(InputError, match=r"x.shape=\(10, 64\)"):
        automl.ImageClassifier(directory=tmp_path).fit(x.reshape(10, 64), y)
    with pytest.raises(InputError, match="at least 2 classes"):
        automl.ImageClassifier(directory=tmp_path).fit(x, np.zeros(10))
    with pytest.raises(InputError, match="ensemble_size must be a positive integer"):
        automl.ImageClassifier(ensemble_size=0, directory=tmp_path).fit(x, y)
    with pytest.raises(NotFittedError, match="Call fit"):
        automl.ImageClassifier().predict(x)
    assert not any(tmp_path.iterdir())  # nothing started


@pytest.mark.parametrize(
    "text, seconds", [(90, 90.0), ("90s", 90.0), ("30m", 1800.0), ("1h30m", 5400.0), (None, None)]
)
def test_parse_time_limit(text, seconds):
    from automl.estimators.options import parse_time_limit

    assert parse_time_limit(text) == seconds


def test_child_trial_starts_from_parent_weights(digits, tmp_path):
    from automl.morphism.operators import random_children

    x, y = digits
    clf = automl.ImageClassifier(strategy="random", directory=tmp_path, **SMALL).fit(x, y)
    tuner = clf.backend_.tuner
    parent_graph = tuner.trial_graph("0")
    parent = tuner.load_model(tuner.oracle.get_trial("0"))
    child_graph = random_children(parent_graph, np.random.default_rng(0), n=1)[0]
    child = tuner.build_fn(child_graph)
    assert child.count_params() == child_graph.count_params() != parent.count_params()
    assert np.abs(child.predict(x[:32], verbose=0) - parent.predict(x[:32], verbose=0)).max() > 1e-3
    tuner._inherit("1", child, child_graph, "0")
    np.testing.assert_allclose(
        child.predict(x[:32], verbose=0), parent.predict(x[:32], verbose=0), atol=1e-4
    )


def test_bayesian_search_grows_children_from_trained_parents(digits, tmp_path):
    x, y = digits
    clf = automl.ImageClassifier(
        strategy="bayesian", directory=tmp_path, **{**SMALL, "max_trials": 3, "epochs": 1}
    )
    clf.fit(x, y)
    parents = [clf.backend_.tuner.trial_summary(t)["parent"] for t in ("0", "1", "2")]
    assert parents[:2] == ["", ""]  # n_initial random/default starts
    assert parents[2] in ("0", "1")  # then a morphism child of a trained graph


def test_image_classifier_milenas_strategy_exports(digits, tmp_path):
    import keras

    x, y = digits
    options = {
        "space": "nb201",
        "stages": 1,
        "search_epochs": 1,
        "search_cells": 1,
        "search_channels": 4,
        "cells": 2,
        "channels": 6,
    }
    clf = automl.ImageClassifier(
        strategy="milenas", epochs=1, directory=tmp_path, verbose=0, cell_options=options
    )
    clf.fit(x[:120], y[:120])
    summary = clf.search_summary()
    assert summary["status"].tolist()[-1] == "COMPLETED"
    assert summary["key"].iloc[-1].count("~") == 6  # an NB201 genotype string
    path = tmp_path / "cells.keras"
    clf.export_model().save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x[:8], verbose=0), clf.predict_proba(x[:8]), atol=1e-5
    )


def test_cell_strategies_refuse_other_tasks_and_bad_options(tmp_path):
    x, y = np.zeros((10, 4)), np.arange(10) % 2
    with pytest.raises(InputError, match="image classifiers only"):
        automl.StructuredDataClassifier(strategy="milenas", directory=tmp_path).fit(x, y)
    with pytest.raises(InputError, match="Unknown cell_options"):
        automl.ImageClassifier(strategy="darts", cell_options={"cels": 3}).fit(
            np.zeros((10, 8, 8)), y
        )
