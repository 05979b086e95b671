"""Every public entry point, given bad arguments, raises one of automl's errors with a message.

The rule: the estimators (constructors, fit, predict, predict_proba, evaluate,
export_model, search_summary, set_params), `get_strategy`, `export.save_model` /
`load_model`, the benchmark entry points, `cells.search.run_search` and the CLI raise
nothing but `InputError`, `SearchError`, `NotFittedError` (or `KeyboardInterrupt`), and
the message says what was received and what to do. Each row of `CASES` is one call
with one bad argument, the error class expected and a part of the message the user
should see. Most fail before any training; the few that need a fitted model share
one fitted per module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import automl
from automl.cli import commands as cli
from automl.errors import InputError, NotFittedError, SearchError
from automl.export import keras_file as export
from automl.nb201 import codec as nb201
from automl.search import tabular as benchmark
from automl.search.base import get_strategy

FAST = {
    "max_trials": 1,
    "epochs": 1,
    "ensemble_size": 1,
    "time_limit": None,
    "verbose": 0,
    "max_model_size": 20_000,
}
X = np.random.default_rng(0).uniform(0, 16, size=(12, 8, 8))  # 12 tiny images, 3 classes
Y = np.arange(12) % 3
CELL = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # a NAS-Bench-201 cell
FRAME = pd.DataFrame({"size": np.linspace(-1, 1, 12), "colour": ["red", "blue", "green"] * 4})


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:200].reshape(-1, 8, 8), y[:200]


@pytest.fixture(scope="module")
def fitted(digits, tmp_path_factory):
    x, y = digits
    directory = tmp_path_factory.mktemp("image_runs")
    return automl.ImageClassifier(directory=directory, **FAST).fit(x, y)


@pytest.fixture(scope="module")
def fitted_table(tmp_path_factory):
    frame = pd.concat([FRAME] * 4, ignore_index=True)
    y = np.where(frame["size"] > 0, "big", "small")
    directory = tmp_path_factory.mktemp("table_runs")
    return automl.StructuredDataClassifier(directory=directory, **FAST).fit(frame, y)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory) -> str:
    return export.save_model(fitted, tmp_path_factory.mktemp("model") / "digits.keras")


class Ctx:
    """What the calls of the table may use; fitted models are fitted on first use."""

    def __init__(self, request, tmp: Path):
        self.request, self.tmp = request, tmp
        self.runs = tmp / "runs"  # every fit below searches here: it must stay absent

    def __getattr__(self, name: str):
        if name in ("digits", "fitted", "fitted_table", "saved"):
            return self.request.getfixturevalue(name)
        raise AttributeError(name)

    def estimator(self, name: str = "ImageClassifier", **params):
        return getattr(automl, name)(directory=self.runs, **{**FAST, **params})

    def file(self, name: str, text: str) -> str:
        path = self.tmp / name
        path.write_text(text)
        return str(path)


@pytest.fixture
def ctx(request, tmp_path) -> Ctx:
    return Ctx(request, tmp_path)


@dataclass
class Case:
    id: str
    call: Callable[[Ctx], object]
    error: type
    message: str  # a part of the message the user should see


def _fit(name="ImageClassifier", x=X, y=Y, fit=None, **params) -> Callable[[Ctx], object]:
    return lambda c: c.estimator(name, **params).fit(x, y, **(fit or {}))


def _dataset():
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((X, Y)).batch(4)


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


# ---------------------------------------------------------------------- the table
CASES = [
    # estimator arguments: stored by the constructor, checked by fit before any training
    Case("fit/unknown strategy", _fit(strategy="nope"), InputError, "Unknown strategy 'nope'"),
    Case("fit/max_trials=0", _fit(max_trials=0), InputError, "max_trials must be a positive"),
    Case("fit/max_trials=2.5", _fit(max_trials=2.5), InputError, "max_trials=2.5"),
    Case("fit/epochs=0", _fit(epochs=0), InputError, "epochs must be a positive integer"),
    Case("fit/time_limit=soon", _fit(time_limit="soon"), InputError, "'90s', '30m'"),
    Case("fit/time_limit<0", _fit(time_limit=-5), InputError, "time_limit must be positive"),
    Case("fit/batch_size=0", _fit(batch_size=0), InputError, "batch_size must be a positive"),
    Case("fit/ensemble_size=0", _fit(ensemble_size=0), InputError, "ensemble_size must be"),
    Case("fit/max_model_size=big", _fit(max_model_size="big"), InputError, "max_model_size"),
    Case("fit/seed=zero", _fit(seed="zero"), InputError, "seed"),
    Case(
        "fit/cell strategy on a table",
        _fit("StructuredDataClassifier", x=FRAME, strategy="milenas"),
        InputError,
        "image classifiers only",
    ),
    Case(
        "fit/directory is a file",
        lambda c: automl.ImageClassifier(directory=c.file("runs.txt", "not a folder"), **FAST).fit(
            X, Y
        ),
        InputError,
        "runs.txt",
    ),
    # the data of fit
    Case("fit/x is a missing folder", _fit(x="digits.csv"), InputError, "No such image folder"),
    Case("fit/x is None", _fit(x=None), InputError, "x is None"),
    Case("fit/y is None", _fit(y=None), InputError, "fit needs targets"),
    Case("fit/y has None", _fit(y=[0, 1, None, 2] * 3), InputError, "missing value"),
    Case("fit/y is a string", _fit(y="labels"), InputError, "y='labels'"),
    Case("fit/lengths differ", _fit(y=Y[:11]), InputError, "len(x)=12, len(y)=11"),
    Case("fit/images are 2-D", _fit(x=X.reshape(12, 64)), InputError, "x.shape=(12, 64)"),
    Case("fit/images hold NaN", _fit(x=np.where(X > 15, np.nan, X)), InputError, "NaN"),
    Case("fit/ragged images", _fit(x=[[1, 2], [3]] * 6), InputError, "same shape"),
    Case("fit/one class", _fit(y=np.zeros(12)), InputError, "at least 2 classes"),
    Case(
        "fit/labels mix types",
        _fit(y=np.array([1, "a", 2] * 4, dtype=object)),
        InputError,
        "mix types",
    ),
    Case("fit/3 samples", _fit(x=X[:3], y=Y[:3]), InputError, "at least 4 samples"),
    Case(
        "fit/validation_split=1.5",
        _fit(fit={"validation_split": 1.5}),
        InputError,
        "validation_split must be a number between 0 and 1",
    ),
    Case(
        "fit/validation_data shape",
        _fit(fit={"validation_data": (X[:, :6, :6], Y)}),
        InputError,
        "Expected inputs of shape (samples, 8, 8)",
    ),
    Case(
        "fit/validation_data without y",
        _fit(fit={"validation_data": (X,)}),
        InputError,
        "validation_data needs targets",
    ),
    Case(
        "fit/validation_data unseen label",
        _fit(fit={"validation_data": (X, Y + 5)}),
        InputError,
        "not seen during fit",
    ),
    Case(
        "fit/dataset and y",
        lambda c: c.estimator().fit(_dataset(), Y),
        InputError,
        "do not pass y as well",
    ),
    Case(
        "fit/duplicated columns",
        _fit("StructuredDataClassifier", x=FRAME.set_axis(["a", "a"], axis=1)),
        InputError,
        "duplicated column names: ['a']",
    ),
    Case(
        "fit/inf in a numpy table",
        _fit("StructuredDataClassifier", x=np.r_[[[np.inf, 1.0]], np.ones((11, 2))]),
        InputError,
        "infinite values in column(s) [0]",
    ),
    Case(
        "fit/inf in a DataFrame",
        _fit("StructuredDataClassifier", x=FRAME.assign(size=np.r_[-np.inf, np.ones(11)])),
        InputError,
        "infinite values in column(s) ['size']",
    ),
    Case(
        "fit/1e200 in a table",
        _fit("StructuredDataClassifier", x=FRAME.assign(size=np.r_[1e200, np.ones(11)])),
        InputError,
        "too large for 32-bit floats",
    ),
    Case(
        "fit/as many classes as rows",
        _fit(y=np.arange(12)),
        InputError,
        "12 classes in 12 samples",
    ),
    Case("fit/time_limit=nan", _fit(time_limit=float("nan")), InputError, "time_limit=nan"),
    Case(
        "fit/table is 1-D",
        _fit("StructuredDataClassifier", x=np.arange(12.0)),
        InputError,
        "x.reshape(-1, 1)",
    ),
    Case(
        "fit/regression on strings",
        _fit("StructuredDataRegressor", x=FRAME, y=np.array(["a", "b"] * 6)),
        InputError,
        "Regression targets must be numbers",
    ),
    Case(
        "fit/regression on inf",
        _fit("StructuredDataRegressor", x=FRAME, y=np.r_[np.inf, np.arange(11.0)]),
        InputError,
        "finite",
    ),
    # before fit
    *[
        Case(
            f"unfitted/{method}",
            lambda c, m=method: getattr(c.estimator(), m)(X),
            NotFittedError,
            "not fitted yet. Call fit(x, y) first",
        )
        for method in ("predict", "predict_proba", "evaluate")
    ],
    *[
        Case(
            f"unfitted/{method}",
            lambda c, m=method: getattr(c.estimator(), m)(),
            NotFittedError,
            "not fitted yet",
        )
        for method in ("export_model", "search_summary")
    ],
    Case(
        "set_params/unknown",
        lambda c: c.estimator().set_params(epoch=3),
        InputError,
        "Unknown parameter 'epoch'",
    ),
    # a fitted estimator
    Case(
        "predict/shape",
        lambda c: c.fitted.predict(X[:, :6, :6]),
        InputError,
        "Expected inputs of shape (samples, 8, 8) as in fit. Received: x.shape=(12, 6, 6)",
    ),
    Case("predict/0 rows", lambda c: c.fitted.predict(X[:0]), InputError, "0 samples"),
    Case("predict/missing folder", lambda c: c.fitted.predict("x.npy"), InputError, "x.npy"),
    Case("predict/None", lambda c: c.fitted.predict(None), InputError, "x is None"),
    Case(
        "predict_proba/NaN",
        lambda c: c.fitted.predict_proba(np.full((2, 8, 8), np.nan)),
        InputError,
        "finite",
    ),
    Case("evaluate/no y", lambda c: c.fitted.evaluate(X), InputError, "evaluate needs targets"),
    Case(
        "evaluate/unseen label",
        lambda c: c.fitted.evaluate(X, Y + 10),
        InputError,
        "Label 10 was not seen during fit",
    ),
    Case(
        "evaluate/lengths differ",
        lambda c: c.fitted.evaluate(X, Y[:5]),
        InputError,
        "len(x)=12, len(y)=5",
    ),
    Case(
        "evaluate/y has NaN",
        lambda c: c.fitted.evaluate(X[:3], [0, np.nan, 1]),
        InputError,
        "missing value",
    ),
    Case(
        "set_params/fitted",
        lambda c: c.fitted.set_params(colour="red"),
        InputError,
        "Unknown parameter 'colour'",
    ),
    Case(
        "predict/missing column",
        lambda c: c.fitted_table.predict(FRAME[["size"]]),
        InputError,
        "Columns missing from the input: ['colour']",
    ),
    Case(
        "predict/text in a numeric column",
        lambda c: c.fitted_table.predict(FRAME.assign(size=["big"] * 12)),
        InputError,
        "Column 'size' held numbers in fit",
    ),
    Case(
        "predict/inf in a numeric column",
        lambda c: c.fitted_table.predict(FRAME.assign(size=np.inf)),
        InputError,
        "infinite values in column(s) ['size']",
    ),
    Case(
        "predict/inf in an image",
        lambda c: c.fitted.predict(np.where(X > 15, np.inf, X)),
        InputError,
        "finite",
    ),
    Case(
        "predict/0 table rows", lambda c: c.fitted_table.predict(FRAME[:0]), InputError, "0 samples"
    ),
    Case(
        "predict/duplicated columns",
        lambda c: c.fitted_table.predict(FRAME.set_axis(["size", "size"], axis=1)),
        InputError,
        "duplicated column names",
    ),
    Case(
        "predict/array of other width",
        lambda c: c.fitted_table.predict(np.zeros((2, 3))),
        InputError,
        "2-D array of 2 columns",
    ),
    # strategies
    Case("get_strategy/unknown", lambda c: get_strategy("nope"), InputError, "Choose one of"),
    Case(
        "get_strategy/bad kernel",
        lambda c: get_strategy("bayesian", kernel="rbf"),
        InputError,
        "Unknown kernel 'rbf'",
    ),
    Case(
        "get_strategy/bad argument",
        lambda c: get_strategy("random", colour=1),
        InputError,
        "colour",
    ),
    # saving and loading
    Case(
        "save_model/not .keras",
        lambda c: export.save_model(c.fitted, c.tmp / "m.h5"),
        InputError,
        "must end in '.keras'",
    ),
    Case(
        "save_model/missing folder",
        lambda c: export.save_model(c.fitted, c.tmp / "missing" / "m.keras"),
        InputError,
        "does not exist",
    ),
    Case(
        "save_model/a folder",
        lambda c: export.save_model(c.fitted, _folder(c.tmp / "m.keras")),
        InputError,
        "is a folder",
    ),
    Case(
        "save_model/unfitted",
        lambda c: export.save_model(c.estimator(), c.tmp / "m.keras"),
        NotFittedError,
        "Call fit",
    ),
    Case(
        "save_model/not an estimator",
        lambda c: export.save_model(object(), c.tmp / "m.keras"),
        InputError,
        "takes a fitted automl estimator",
    ),
    Case(
        "load_model/missing",
        lambda c: export.load_model(c.tmp / "none.keras"),
        InputError,
        "No model file",
    ),
    Case(
        "load_model/not a model",
        lambda c: export.load_model(c.file("bad.keras", "text")),
        InputError,
        "Cannot load",
    ),
    Case(
        "load_model/damaged sidecar",
        lambda c: export.load_model(_damaged_copy(c)),
        InputError,
        "is damaged",
    ),
    # the tabular benchmark
    Case(
        "load_table/missing",
        lambda c: nb201.load_table(c.tmp / "none.csv"),
        InputError,
        "No NAS-Bench-201 table at",
    ),
    Case(
        "load_table/no column",
        lambda c: nb201.load_table(c.file("t.csv", "arch,x\n")),
        InputError,
        "needs columns 'arch' and 'test_accuracy'",
    ),
    Case(
        "load_table/bad arch",
        lambda c: nb201.load_table(c.file("t.csv", "arch,test_accuracy\nnot-a-cell,1.0\n")),
        InputError,
        "not-a-cell",
    ),
    Case(
        "load_table/bad score",
        lambda c: nb201.load_table(c.file("t.csv", f"arch,test_accuracy\n{CELL},high\n")),
        InputError,
        "high",
    ),
    Case(
        "run_tabular/unknown strategy",
        lambda c: benchmark.run_tabular("nope", {}, 10, [0]),
        InputError,
        "Unknown strategy 'nope'",
    ),
    Case(
        "run_tabular/bad kernel",
        lambda c: benchmark.run_tabular("bayesian", {}, 10, [0], kernel="rbf"),
        InputError,
        "Unknown kernel 'rbf'",
    ),
    Case(
        "run_tabular/no seeds",
        lambda c: benchmark.run_tabular("random", {}, 10, []),
        InputError,
        "seeds",
    ),
    Case(
        "run_search/budget=0",
        lambda c: benchmark.run_search(get_strategy("random"), {}, 0, 0),
        InputError,
        "budget",
    ),
    Case(
        "run_search/partial table",
        lambda c: benchmark.run_search(get_strategy("random"), {"x": 1.0}, 5, 0),
        InputError,
        "must cover the whole space",
    ),
    # the differentiable cell search
    Case(
        "cells.run_search/method",
        lambda c: _cells(method="sgd"),
        InputError,
        "method must be one of",
    ),
    Case(
        "cells.run_search/3-D images",
        lambda c: _cells(x=np.zeros((8, 8, 8))),
        InputError,
        "Images must be (samples, height, width, channels)",
    ),
    Case(
        "cells.run_search/float labels",
        lambda c: _cells(y=np.zeros(8)),
        InputError,
        "Labels must be one integer per image",
    ),
    Case(
        "cells.run_search/label range",
        lambda c: _cells(y=np.arange(8) % 4),
        InputError,
        "labels in [0, 2)",
    ),
    Case("cells.run_search/space", lambda c: _cells(space="nope"), InputError, "nope"),
    Case("cells.run_search/epochs=0", lambda c: _cells(epochs=0), InputError, "epochs"),
]


def _damaged_copy(c: Ctx) -> str:
    import shutil

    path = c.tmp / "copy.keras"
    shutil.copy(c.saved, path)
    (c.tmp / ("copy.keras" + export.SIDECAR)).write_text("{not json")
    return str(path)


def _cells(**kwargs):
    from automl.cells.search import run_search

    args = {
        "x": np.zeros((8, 8, 8, 1), "float32"),
        "y": np.arange(8) % 2,
        "num_classes": 2,
        "method": "milenas",
        "epochs": 1,
        "space": "nb201",
        "stages": 1,
        "cells": 1,
        "channels": 4,
    }
    args.update(kwargs)
    x, y = args.pop("x"), args.pop("y")
    return run_search(x, y, **args)


ALLOWED = (InputError, SearchError, NotFittedError)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_arguments_raise_automl_errors_that_say_what_to_do(case, ctx):
    with pytest.raises(Exception) as info:
        case.call(ctx)
    err = info.value
    assert isinstance(err, case.error), f"{type(err).__name__} leaked: {err}"
    assert case.message in str(err)
    assert not ctx.runs.exists()  # refused before any search started


# ---------------------------------------------------------------------- failed searches
@pytest.mark.parametrize("max_trials, message", [(1, "No trial finished"), (3, "diverged")])
def test_a_search_whose_trials_all_fail_raises_search_error(
    tmp_path, monkeypatch, max_trials, message
):
    from automl.engine.keras_tuner_api import FailedTrialError
    from automl.engine.tuner import GraphTuner

    def diverge(self, trial, *args, **kwargs):
        raise FailedTrialError("The trial's val_accuracy is nan: training diverged.")

    monkeypatch.setattr(GraphTuner, "run_trial", diverge)
    clf = automl.ImageClassifier(directory=tmp_path, **{**FAST, "max_trials": max_trials})
    with pytest.raises(SearchError, match=message):
        clf.fit(X, Y)


# ---------------------------------------------------------------------- the command line
def _npz(c: Ctx, name: str, **arrays) -> str:
    path = c.tmp / name
    np.savez(path, **arrays)
    return str(path)


CLI_CASES = [
    ("fit/unknown dataset", lambda c: ["fit", "mnist_from_the_internet"], "Built-in datasets"),
    ("fit/no data", lambda c: ["fit"], "Give exactly one of"),
    ("fit/two sources", lambda c: ["fit", "iris", "--npz", "x.npz"], "Give exactly one of"),
    ("fit/csv without target", lambda c: ["fit", "--csv", "t.csv"], "--target COLUMN"),
    (
        "fit/missing csv",
        lambda c: ["fit", "--csv", str(c.tmp / "none.csv"), "--target", "y"],
        "No such CSV file",
    ),
    (
        "fit/csv without the target",
        lambda c: ["fit", "--csv", c.file("t.csv", "a,b\n1,2\n"), "--target", "y"],
        "Column 'y' is not in",
    ),
    ("fit/missing npz", lambda c: ["fit", "--npz", str(c.tmp / "none.npz")], "No such .npz"),
    (
        "fit/npz without y",
        lambda c: ["fit", "--npz", _npz(c, "d.npz", x=X)],
        "must hold arrays 'x' and 'y'",
    ),
    (
        "fit/output not .keras",
        lambda c: ["fit", "iris", "--output", str(c.tmp / "m.h5")],
        "must end in '.keras'",
    ),
    (
        "fit/output folder missing",
        lambda c: ["fit", "iris", "--output", str(c.tmp / "missing" / "m.keras")],
        "does not exist",
    ),
    (
        "fit/json folder missing",
        lambda c: ["fit", "iris", "--json", str(c.tmp / "missing" / "r.json")],
        "--json",
    ),
    ("fit/time limit", lambda c: ["fit", "iris", "--time-limit", "soon"], "time_limit"),
    ("fit/max trials", lambda c: ["fit", "iris", "--max-trials", "0"], "max_trials"),
    (
        "predict/missing model",
        lambda c: ["predict", str(c.tmp / "none.keras"), "x.npz"],
        "No model file",
    ),
    (
        "predict/damaged model",
        lambda c: ["predict", c.file("broken.keras", "not a zip file"), "x.npz"],
        "Cannot load",
    ),
    (
        "predict/missing data",
        lambda c: ["predict", c.saved, str(c.tmp / "none.npz")],
        "No such .npz file",
    ),
    (
        "predict/npz without x",
        lambda c: ["predict", c.saved, _npz(c, "d.npz", y=Y)],
        "must hold an array 'x'",
    ),
    (
        "predict/wrong shape",
        lambda c: ["predict", c.saved, _npz(c, "d.npz", x=X[:, :6, :6])],
        "Expected inputs of shape (samples, 8, 8)",
    ),
    (
        "predict/output folder missing",
        lambda c: [
            "predict",
            c.saved,
            _npz(c, "d.npz", x=X),
            "--output",
            str(c.tmp / "no" / "p.csv"),
        ],
        "--output",
    ),
    (
        "benchmark/missing table",
        lambda c: ["benchmark", "nb201", "--table", str(c.tmp / "none.csv")],
        "No NAS-Bench-201 table at",
    ),
    (
        "benchmark/unknown strategy",
        lambda c: ["benchmark", "nb201", "--strategy", "nope", "--budget", "5", "--seeds", "1"],
        "Unknown strategy 'nope'",
    ),
    (
        "benchmark/budget=0",
        lambda c: ["benchmark", "nb201", "--strategy", "random", "--budget", "0", "--seeds", "1"],
        "budget",
    ),
]


@pytest.mark.parametrize("argv, message", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_reports_errors_in_one_line_with_status_2(argv, message, ctx, capsys):
    args = argv(ctx)
    if args[0] == "fit":
        args += ["--directory", str(ctx.runs), "--quiet"]
    cwd = os.getcwd()
    os.chdir(ctx.tmp)  # whatever is written by mistake lands in the test's folder
    try:
        code = cli.main(args)
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith("automl: error: "), err
    assert message in err
    assert "Traceback" not in out + err
    assert not ctx.runs.exists()  # refused before the search


@pytest.mark.parametrize(
    "argv",
    [["nonsense"], ["fit", "iris", "--max-trials", "many"], ["predict", "only-a-model.keras"]],
)
def test_cli_bad_arguments_exit_2_through_argparse(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage: automl" in capsys.readouterr().err
