"""Streaming data: tf.data, PyDataset, image folders and CSV files, read batch by batch."""

import json
import os
import weakref

import numpy as np
import pandas as pd
import pytest

import automl
from automl.data import streaming
from automl.data.heads import TargetEncoder
from automl.data.preprocessing import Preprocessor
from automl.data.streaming import sources
from automl.data.streaming.split import held_out
from automl.errors import InputError
from automl.estimators import streaming as stream_fitting
from automl.estimators.streaming import fit_stream

SMALL = {"max_trials": 1, "epochs": 1, "max_model_size": 20_000, "verbose": 0}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:400].reshape(-1, 8, 8).astype("float32"), y[:400]


@pytest.fixture(scope="module")
def image_dir(digits, tmp_path_factory):
    """digits as PNG files, one subfolder per class (d0 .. d9)."""
    from PIL import Image

    x, y = digits
    root = tmp_path_factory.mktemp("images")
    for i in range(300):
        folder = root / f"d{y[i]}"
        folder.mkdir(exist_ok=True)
        Image.fromarray((x[i] * 15).astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


def _batches():
    import keras

    class Batches(keras.utils.PyDataset):
        """(x, y) batches of arrays; counts how many of the batches it made are alive."""

        def __init__(self, x, y, size=16, targets=True):
            super().__init__()
            self.x, self.y, self.size, self.targets = x, y, size, targets
            self.alive, self.most_alive, self.calls = 0, 0, 0

        def __len__(self):
            return -(-len(self.x) // self.size)

        def _freed(self):
            self.alive -= 1

        def __getitem__(self, index):
            rows = slice(index * self.size, (index + 1) * self.size)
            x = self.x[rows].copy()
            self.calls += 1
            self.alive += 1
            self.most_alive = max(self.most_alive, self.alive)
            weakref.finalize(x, self._freed)
            return (x, self.y[rows]) if self.targets else x

    return Batches


def _dataset(x, y=None, batch=None):
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))  # x: or a tuple
    return data.batch(batch) if batch else data


# ------------------------------------------------------------------ the split
def test_split_is_deterministic_and_of_the_right_size():
    positions = np.arange(20_000)
    held = held_out(positions, 0.2, seed=0)
    assert abs(held.mean() - 0.2) < 0.01
    np.testing.assert_array_equal(held, held_out(positions, 0.2, seed=0))
    assert (held != held_out(positions, 0.2, seed=1)).mean() > 0.2
    assert not held_out(positions, None, seed=0).any()


def test_stream_parts_are_disjoint_cover_the_stream_and_repeat(digits):
    x, y = digits
    stream = stream_fitting.open_stream(
        _dataset(x, np.arange(len(x)), batch=32), None, "image", "fit"
    )
    rest, held = stream.split(0.25, seed=3)

    def ids(part):
        return np.concatenate([b[1] for b in part.batches()])

    first_rest, first_held = ids(rest), ids(held)
    assert set(first_rest).isdisjoint(first_held)
    assert sorted([*first_rest, *first_held]) == list(range(len(x)))
    assert 0.15 < len(first_held) / len(x) < 0.35
    np.testing.assert_array_equal(ids(rest), first_rest)  # the same on every pass
    # unbatched, the same elements go to the same part
    unbatched = stream_fitting.open_stream(_dataset(x, np.arange(len(x))), None, "image", "fit")
    np.testing.assert_array_equal(ids(unbatched.split(0.25, seed=3)[1]), first_held)
    # a PyDataset is split by batch
    data = _batches()(x, np.arange(len(x)), size=10)
    rest, held = stream_fitting.open_stream(data, None, "image", "fit").split(0.25, seed=3)
    assert len(rest) + len(held) == len(data)
    assert all(len(set(b[1] // 10)) == 1 for b in held.batches())


# ------------------------------------------------------------------ statistics
def test_streaming_statistics_equal_the_in_memory_ones(digits, rng):
    x, y = digits
    stream = stream_fitting.open_stream(_dataset(x, y, batch=37), None, "image", "fit")
    fitted = fit_stream(stream, "image", "classification", None, seed=0)
    expected = Preprocessor.fit_images(x)
    assert fitted.preprocessor.raw_shape == expected.raw_shape
    np.testing.assert_allclose(fitted.preprocessor.mean, expected.mean, rtol=1e-9)
    np.testing.assert_allclose(fitted.preprocessor.variance, expected.variance, rtol=1e-9)
    assert fitted.target == TargetEncoder.fit(y, "classification")

    frame = pd.DataFrame(
        {
            "a": rng.normal(size=900),
            "skewed": rng.lognormal(0, 1, 900),
            "few": rng.integers(0, 3, 900).astype(float),
            "text": rng.choice(["x", "y", "z", "w"], 900, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    frame.loc[rng.random(900) < 0.1, ["a", "skewed", "text"]] = np.nan
    target = 3 + 2 * rng.normal(size=(900, 2))
    chunks = [(frame.iloc[i : i + 128], target[i : i + 128], None) for i in range(0, 900, 128)]

    class Chunks(streaming.Stream):
        def batches(self):
            yield from chunks

    fitted = fit_stream(Chunks(), "table", "regression", None, seed=0)
    expected = Preprocessor.fit_table(frame)
    for got, want in zip(fitted.preprocessor.columns, expected.columns):
        assert got.keys() == want.keys() and got["kind"] == want["kind"]
        for key in ("fill", "mean", "variance", "quantiles"):
            np.testing.assert_allclose(got.get(key, []), want.get(key, []), rtol=1e-9)
        assert got.get("vocabulary") == want.get("vocabulary")
    assert fitted.preprocessor.graph_shape == expected.graph_shape
    want = TargetEncoder.fit(target, "regression")
    np.testing.assert_allclose(fitted.target.mean, want.mean, rtol=1e-9)
    np.testing.assert_allclose(fitted.target.std, want.std, rtol=1e-9)

    numbers = frame[["a", "skewed"]].to_numpy()
    fitted = fit_stream(
        stream_fitting.open_stream(_dataset(numbers, target, 50), None, "table", "fit"),
        "table",
        "regression",
        None,
        seed=0,
    )
    expected = Preprocessor.fit_table(numbers)
    for key in ("fill", "mean", "variance"):
        np.testing.assert_allclose(getattr(fitted.preprocessor, key), getattr(expected, key))


# ------------------------------------------------------------------ fit on each kind
def test_tf_data_batched_fit_predict_evaluate(digits, tmp_path):
    x, y = digits
    clf = automl.ImageClassifier(directory=tmp_path, **SMALL).fit(_dataset(x[:300], y[:300], 32))
    assert clf.preprocessor_.raw_shape == [8, 8]
    pred = clf.predict(_dataset(x[300:], batch=16))
    np.testing.assert_array_equal(pred, clf.predict(x[300:]))  # the same as arrays
    proba = clf.predict_proba(_dataset(x[300:], y[300:], 16))  # targets are ignored
    assert proba.shape == (100, 10)
    scores = clf.evaluate(_dataset(x[300:], y[300:], 16))
    assert scores == pytest.approx(clf.evaluate(x[300:], y[300:]), rel=1e-5)
    with pytest.raises(InputError, match="Expected inputs of shape"):
        clf.predict(_dataset(x[:, :6, :6], batch=16))
    with pytest.raises(InputError, match="targets"):
        clf.evaluate(_dataset(x[300:], batch=16))


def test_tf_data_unbatched_regression_with_weights_and_a_stream_for_validation(digits, tmp_path):
    import tensorflow as tf

    x, y = digits
    target = (x.mean(axis=(1, 2)) * 10 + 100).astype("float32")
    weights = np.where(y[:300] == 0, 0.0, 1.0).astype("float32")
    train = tf.data.Dataset.from_tensor_slices((x[:300], target[:300], weights))
    reg = automl.ImageRegressor(directory=tmp_path, **SMALL)
    reg.fit(train, validation_data=_dataset(x[300:], target[300:], 25))
    assert abs(reg.target_.mean[0] - target[:300].mean()) < 1e-3
    assert reg.search_summary().loc[0, "status"] == "COMPLETED"
    assert reg.predict(_dataset(x[300:])).shape == (100,)
    assert set(reg.evaluate(_dataset(x[300:], target[300:]))) == {"loss", "mse"}


def test_pydataset_fit_reads_a_few_batches_at_a_time(digits, tmp_path):
    x, y = digits
    data = _batches()(x[:320], y[:320], size=8)  # 40 batches
    clf = automl.ImageClassifier(directory=tmp_path, **SMALL)
    clf.fit(data, class_weight="balanced")
    assert data.calls > 3 * len(data)  # read again by the trial and the refit
    assert data.most_alive <= 3, f"{data.most_alive} of {len(data)} batches alive at once"
    inputs_only = _batches()(x[320:], y[320:], size=8, targets=False)
    assert clf.predict(inputs_only).shape == (80,)
    assert inputs_only.most_alive <= 3
    assert 0 <= clf.evaluate(_batches()(x[320:], y[320:]))["accuracy"] <= 1


def test_image_folder_fit_predict_evaluate(image_dir, tmp_path):
    clf = automl.ImageClassifier(directory=tmp_path, **SMALL).fit(str(image_dir))
    assert clf.preprocessor_.raw_shape == [8, 8, 1]  # grayscale, size of the first image
    assert list(clf.classes_) == [f"d{i}" for i in range(10)]
    pred = clf.predict(image_dir)  # sorted by path: the d0 folder first
    assert len(pred) == 300 and set(pred) <= set(clf.classes_)
    assert clf.evaluate(image_dir)["accuracy"] > 0.3
    model = clf.export_model()
    assert model.input_shape == (None, 8, 8, 1)


def test_csv_file_in_chunks(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(sources, "CSV_CHUNK_ROWS", 100)
    n = 1500
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.lognormal(size=n),
            "city": rng.choice(["x", "y", "z"], n),
        }
    )
    frame.loc[rng.random(n) < 0.05, "a"] = np.nan
    frame["label"] = np.where(frame["a"].fillna(0) + (frame["city"] == "x") > 0.5, "pos", "neg")
    frame.loc[::97, "label"] = np.nan  # rows without a target are skipped
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    clf = automl.StructuredDataClassifier(directory=tmp_path, **{**SMALL, "epochs": 3})
    clf.fit(path, y="label")
    assert [c["name"] for c in clf.preprocessor_.columns] == ["a", "b", "city"]
    assert clf.search_summary().loc[0, "status"] == "COMPLETED"
    assert list(clf.classes_) == ["neg", "pos"]
    assert len(clf.predict(path)) == n  # the target column is dropped
    assert clf.evaluate(path)["accuracy"] > 0.6  # the label column of fit
    with pytest.raises(InputError, match="not in"):
        clf.evaluate(path, "nope")


def test_resume_reuses_the_finished_trial(digits, tmp_path):
    x, y = digits
    settings = {**SMALL, "directory": tmp_path, "project_name": "resume", "strategy": "random"}
    first = automl.ImageClassifier(**settings).fit(_dataset(x, y, 32))
    (trial,) = first.search_summary()["trial_id"]
    finished = first.backend_.tuner.trial_summary(trial)["finished_at"]
    second = automl.ImageClassifier(**{**settings, "max_trials": 2}).fit(_dataset(x, y, 32))
    assert len(second.search_summary()) == 2
    assert second.backend_.tuner.trial_summary(trial)["finished_at"] == finished  # not re-run
    other = automl.ImageClassifier(**{**settings, "max_trials": 3})
    with pytest.raises(InputError, match="other data"):
        other.fit(_dataset(x[:-8], y[:-8], 32))


def test_cli_image_dir(image_dir, tmp_path, monkeypatch):
    from automl.cli import commands as cli

    monkeypatch.chdir(tmp_path)
    code = cli.main(
        [
            "fit",
            "--image-dir",
            str(image_dir),
            "--max-trials",
            "1",
            "--epochs",
            "1",
            "--quiet",
            "--json",
            "r.json",
            "--directory",
            str(tmp_path),
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert 0 <= result["test_score"] <= 1 and os.path.exists(result["model_path"])
    assert cli.main(["fit", "--image-dir", str(tmp_path / "none"), "--quiet"]) == 2


def test_cli_streams_a_large_csv(tmp_path, rng, monkeypatch):
    from automl.cli import commands as cli
    from automl.data import datasets

    monkeypatch.setattr(datasets, "STREAM_CSV_BYTES", 0)  # every file counts as large
    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    frame["y"] = frame["a"] * 3 - frame["b"] + rng.normal(0, 0.1, 600)
    frame.to_csv(tmp_path / "big.csv", index=False)
    code = cli.main(
        [
            "fit",
            "--csv",
            "big.csv",
            "--target",
            "y",
            "--max-trials",
            "1",
            "--epochs",
            "5",
            "--quiet",
            "--json",
            "r.json",
            "--directory",
            "runs",
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "r.json").read_text())["metric"] == "mse"


# ------------------------------------------------------------------ errors
def _folder(root, *names):
    root.mkdir(parents=True)
    for name in names:
        (root / name).mkdir(parents=True)
    return root


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing folder", "No such image folder"),
        ("no class subfolders", "no class subfolders"),
        ("empty class subfolders", "holds no images"),
        ("file for images", "is a file"),
        ("labels with a folder", "do not pass y"),
        ("dataset without targets", "fit needs targets"),
        ("dataset and y", "do not pass y as well"),
        ("sample_weight", "sample_weight cannot be passed with a stream"),
        ("cell strategy", "images held in memory"),
        ("csv without y", "y must name its target column"),
        ("csv missing column", "Column 'nope' is not in"),
        ("missing csv", "No such CSV file"),
        ("pydataset without length", "finite number of batches"),
        ("too few batches to split", "both need at least one"),
        ("infinite dataset", "infinite"),
        ("negative weights", "non-negative"),
    ],
)
def test_clear_errors_before_training(case, message, digits, tmp_path):
    import keras

    x, y = digits
    clf = automl.ImageClassifier(directory=tmp_path / "runs", **SMALL)
    table = automl.StructuredDataClassifier(directory=tmp_path / "runs", **SMALL)
    csv = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2, 3, 4], "label": [0, 1, 0, 1]}).to_csv(csv, index=False)

    class Endless(keras.utils.PyDataset):
        num_batches = None

        def __getitem__(self, index):
            return x[:8], y[:8]

    calls = {
        "missing folder": lambda: clf.fit(tmp_path / "none"),
        "no class subfolders": lambda: clf.fit(_folder(tmp_path / "empty")),
        "empty class subfolders": lambda: clf.fit(_folder(tmp_path / "e", "a", "b")),
        "file for images": lambda: clf.fit(str(csv)),
        "labels with a folder": lambda: clf.fit(_folder(tmp_path / "f", "a"), y),
        "dataset without targets": lambda: clf.fit(_dataset(x, batch=32)),
        "dataset and y": lambda: clf.fit(_dataset(x, y, 32), y),
        "sample_weight": lambda: clf.fit(_dataset(x, y, 32), sample_weight=np.ones(len(y))),
        "cell strategy": lambda: clf.set_params(strategy="milenas").fit(_dataset(x, y, 32)),
        "csv without y": lambda: table.fit(csv),
        "csv missing column": lambda: table.fit(csv, y="nope"),
        "missing csv": lambda: table.fit(tmp_path / "none.csv", y="label"),
        "pydataset without length": lambda: clf.fit(Endless()),
        "too few batches to split": lambda: clf.fit(_batches()(x[:40], y[:40], size=40)),
        "infinite dataset": lambda: clf.fit(_dataset(x, y, 32).repeat()),
        "negative weights": lambda: clf.fit(_dataset((x, y, -np.ones(len(y))), batch=32)),
    }
    with pytest.raises(InputError, match=message):
        calls[case]()
    assert not (tmp_path / "runs").exists()  # refused before any training
