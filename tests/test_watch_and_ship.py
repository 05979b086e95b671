"""What a user sees and controls around a search: progress, logs, summary, plots, fit
options, the size choice, and the command line's options."""

import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

import automl
from automl.cli import commands as cli
from automl.errors import InputError


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:200].reshape(-1, 8, 8), y[:200]


@pytest.fixture
def fitted(digits_ensemble):
    """3 trials of 2 epochs on `digits`, an ensemble of 2 (conftest's, fitted once)."""
    return digits_ensemble


# ---------------------------------------------------------------------- progress
@pytest.mark.parametrize("verbose", [0, 1, pytest.param(2, marks=pytest.mark.slow)])
def test_progress_display_follows_verbose(digits, tmp_path, capsys, monkeypatch, verbose):
    x, y = digits
    monkeypatch.setattr("automl.reporting.progress.interactive", lambda: True)  # as in a terminal
    clf = automl.ImageClassifier(max_trials=2, epochs=2, verbose=verbose, directory=tmp_path)
    clf.fit(x, y)
    captured = capsys.readouterr()
    out = captured.out
    assert "Reloading" not in out + captured.err
    if verbose == 0:
        assert out == ""
        return
    assert "[automl] trial 0: val_accuracy=" in out and "[automl] trial 1: val_accuracy=" in out
    if verbose == 1:  # one bar: trials done, best so far, the running trial's epoch
        assert "search: 2/2 trials" in out and "best val_accuracy=" in out
        assert "trial 1 epoch 2/2: loss=" in out
    else:  # a line per epoch, no bar
        assert "[automl] trial 0 epoch 2/2: loss=" in out and "search:" not in out


def test_resumed_search_says_so_in_its_own_words(digits, tmp_path, capsys):
    """Captured output is not a terminal: a line per trial carries the progress."""
    x, y = digits
    settings = {"epochs": 1, "directory": tmp_path, "project_name": "p"}
    automl.ImageClassifier(max_trials=1, verbose=0, **settings).fit(x, y)
    automl.ImageClassifier(max_trials=2, verbose=1, **settings).fit(x, y)
    out = capsys.readouterr().out
    assert "continuing the search in" in out and "Reloading Tuner" not in out
    assert "[automl] trial 1: val_accuracy=" in out and "| 2/2 trials, best val_accuracy=" in out
    assert "search:" not in out  # no bar redrawn into a log


def test_verbose_must_be_0_1_or_2(tmp_path):
    with pytest.raises(InputError, match="verbose must be 0, 1 or 2"):
        automl.ImageClassifier(verbose=3, directory=tmp_path).fit(np.zeros((8, 4, 4)), [0, 1] * 4)


def test_importing_keras_after_automl_prints_no_tensorflow_log_lines():
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "AUTOML_TF_LOGS")
    }
    code = "import automl, keras, numpy; keras.ops.convert_to_tensor(numpy.ones(2)); print('ok')"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok"
    assert proc.stderr == ""


# ---------------------------------------------------------------------- summary
def test_search_summary_plots_and_html(fitted):
    import matplotlib

    matplotlib.use("Agg")
    summary = fitted.search_summary()
    scores = summary["score"].to_list()
    assert scores == sorted(scores, reverse=True)
    assert summary["ensemble"].sum() == len(fitted.ensemble_trial_ids_)
    assert (summary["val_loss"] > 0).all() and (summary["inference_ms"] > 0).all()
    children = summary[summary["parent"].notna()]
    assert children["morphism"].notna().all()
    assert summary["elapsed"].max() >= summary["seconds"].max()
    fig = fitted.plot_search()
    assert len(fig.axes) == 2
    assert len(fitted.plot_architecture().axes) >= 1
    html = fitted._repr_html_()
    assert "ImageClassifier" in html and "best val_accuracy" in html
    assert f"{summary['score'][0]:.4f}" in html


def test_best_single_model_within_a_size_budget(fitted):
    summary = fitted.search_summary()
    smallest = int(summary["params"].min())
    model = fitted.export_model(max_params=smallest)
    assert model.count_params() <= smallest
    with pytest.raises(InputError, match="No finished trial has at most max_params=10"):
        fitted.export_model(max_params=10)
    slowest = float(summary["inference_ms"].max())
    assert fitted.export_model(max_latency_ms=slowest).count_params() > 0


# ---------------------------------------------------------------------- fit options
class CountFits(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.fits = 0

    def on_train_begin(self, logs=None):
        self.fits += 1


def test_callbacks_and_tensorboard_reach_every_trial_and_the_refit(digits, tmp_path):
    x, y = digits
    counter = CountFits()
    clf = automl.ImageClassifier(
        max_trials=2,
        epochs=1,
        ensemble_size=1,
        verbose=0,
        directory=tmp_path / "runs",
        tensorboard_dir=tmp_path / "logs",
    )
    clf.fit(x, y, callbacks=[counter])
    assert counter.fits == 3  # two trials, then the refit of the final model
    runs = sorted(os.listdir(tmp_path / "logs"))
    assert runs == ["refit_" + clf.best_trial_id_, "trial_0", "trial_1"]
    with pytest.raises(InputError, match="keras.callbacks.Callback"):
        clf.fit(x, y, callbacks=[print])


def test_sample_weight_and_class_weight_reach_the_loss(digits, tmp_path):
    x, y = digits
    weights = np.isin(y, [0, 1]).astype("float32")  # only classes 0 and 1 count
    clf = automl.ImageClassifier(
        max_trials=1, epochs=10, ensemble_size=1, verbose=0, directory=tmp_path / "a"
    )
    clf.fit(x, y, sample_weight=weights)
    assert np.isin(clf.predict(x), [0, 1]).mean() >= 0.8  # 20% of the labels are 0 or 1
    only_three = {c: (1.0 if c == 3 else 0.0) for c in range(10)}
    clf = automl.ImageClassifier(
        max_trials=1, epochs=10, ensemble_size=1, verbose=0, directory=tmp_path / "b"
    )
    clf.fit(x, y, class_weight=only_three)
    assert (clf.predict(x) == 3).mean() >= 0.4  # 10% of the labels are 3
    with pytest.raises(InputError, match="one weight per sample: 200"):
        clf.fit(x, y, sample_weight=np.ones(5))
    with pytest.raises(InputError, match="finite and non-negative"):
        clf.fit(x, y, sample_weight=-np.ones(200))
    with pytest.raises(InputError, match=r"labels not in y: \[42\]"):
        clf.fit(x, y, class_weight={42: 2.0})
    with pytest.raises(InputError, match="classifiers only"):
        automl.ImageRegressor(directory=tmp_path).fit(x, y.astype(float), class_weight={0: 1.0})


def test_balanced_class_weight(tmp_path, rng):
    frame = pd.DataFrame({"a": rng.normal(size=120)})
    label = np.where(frame["a"] > 1.0, "rare", "common")
    clf = automl.StructuredDataClassifier(max_trials=1, epochs=5, verbose=0, directory=tmp_path)
    clf.fit(frame, label, class_weight="balanced")
    assert "rare" in set(clf.predict(frame))


# ---------------------------------------------------------------------- command line
@pytest.mark.parametrize(
    "words, seconds",
    [(["5", "minutes"], 300.0), (["5m"], 300.0), (["1h", "30m"], 5400.0), (["90"], 90.0)],
)
def test_time_limit_words_parse(words, seconds):
    from automl.estimators.options import parse_time_limit

    assert parse_time_limit(" ".join(words)) == seconds


def test_cli_proba_validation_split_batch_size_and_export(tmp_path, capsys):
    model = tmp_path / "iris.keras"
    code = cli.main(
        [
            "fit",
            "iris",
            "--max-trials",
            "1",
            "--epochs",
            "2",
            "--time-limit",
            "5",
            "minutes",
            "--validation-split",
            "0.3",
            "--batch-size",
            "16",
            "--quiet",
            "--directory",
            str(tmp_path / "runs"),
            "--output",
            str(model),
        ]
    )
    assert code == 0
    from sklearn.datasets import load_iris

    np.savez(tmp_path / "x.npz", x=load_iris().data[:6])
    assert (
        cli.main(
            [
                "predict",
                str(model),
                str(tmp_path / "x.npz"),
                "--proba",
                "--output",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    proba = pd.read_csv(tmp_path / "p.csv")
    assert list(proba.columns) == ["p_0", "p_1", "p_2"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert cli.main(["export", str(model), str(tmp_path / "iris.tflite")]) == 0
    assert (tmp_path / "iris.tflite").stat().st_size > 0
    assert "wrote tflite model" in capsys.readouterr().out
    assert cli.main(["fit", "iris", "--time-limit", "5", "parsecs"]) == 2
    assert "'5 parsecs'" in capsys.readouterr().err
    assert cli.main(["fit", "iris", "--validation-split", "1.5"]) == 2
    assert "validation_split" in capsys.readouterr().err
