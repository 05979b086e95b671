"""Every export format, loaded by its own runtime in a fresh process, predicts as the estimator.

An image model (an ensemble of two trials, weighted and temperature-scaled) and a
table model (a DataFrame with a text column, missing values and a category unseen in
fit) are written as .keras, SavedModel, TFLite and ONNX. A separate Python process
loads each with its runtime (Keras through automl's loader, TensorFlow, the TFLite
interpreter, onnxruntime) and its outputs must match `predict_proba` to within
MAX_ABS_DIFF.
"""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import automl
from automl.errors import InputError
from automl.export import formats as serving

MAX_ABS_DIFF = 1e-5  # float32 graphs of the same weights; measured differences are ~1e-7
FORMATS = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}

RUNTIMES = r"""
import json, sys
import numpy as np

folder, kind = sys.argv[1], sys.argv[2]
feed = dict(np.load(f"{folder}/feed.npz"))
out = {}
if kind == "table":
    import pandas as pd
    from automl.export.keras_file import load_model, predict_with

    model, pre, _ = load_model(f"{folder}/model.keras")
    out["keras"] = predict_with(model, pre, None, pd.read_pickle(f"{folder}/frame.pkl"))
else:
    import keras

    out["keras"] = keras.models.load_model(f"{folder}/model.keras").predict(feed["input"], verbose=0)
import tensorflow as tf

loaded = tf.saved_model.load(f"{folder}/model").signatures["serving_default"]
out["savedmodel"] = loaded(**{k: tf.constant(v) for k, v in feed.items()})["output"].numpy()
runner = tf.lite.Interpreter(model_path=f"{folder}/model.tflite").get_signature_runner()
out["tflite"] = runner(**feed)["output"]
import onnxruntime

session = onnxruntime.InferenceSession(f"{folder}/model.onnx")
onnx_feed = {k: v.astype(object) if v.dtype.kind == "U" else v for k, v in feed.items()}
out["onnx"] = session.run(["output"], onnx_feed)[0]
np.savez(f"{folder}/out.npz", **out)
print(json.dumps(sorted(m for m in sys.modules if m in ("automl.estimators.base",))))
"""


def _export_all(estimator, folder) -> dict:
    paths = {}
    for fmt, ext in FORMATS.items():
        path = estimator.export_model(format=fmt, path=folder / f"model{ext}")
        assert path == str(folder / f"model{ext}")
        paths[fmt] = path
    return paths


def _run_runtimes(folder, kind: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", RUNTIMES, str(folder), kind],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []  # no estimator was needed
    return dict(np.load(folder / "out.npz"))


def test_image_model_agrees_in_every_format(tmp_path, digits_weighted):
    from sklearn.datasets import load_digits

    x, _ = load_digits(return_X_y=True)
    x = x.reshape(-1, 8, 8)
    clf = digits_weighted  # fitted on x[:200]: 3 trials of 2 epochs; 2 weighted, T = 1.5
    layers = {layer.name for layer in clf.model_.layers}
    assert {"ensemble_sum", "m0_weight", "m1_temperature", "m1_calibrated"} <= layers
    _export_all(clf, tmp_path)
    images = x[200:240].astype("float32")
    np.savez(tmp_path / "feed.npz", input=images)
    expected = clf.predict_proba(images)
    outputs = _run_runtimes(tmp_path, "image")
    assert set(outputs) == set(FORMATS)
    for fmt, out in outputs.items():
        assert out.shape == expected.shape, fmt
        assert np.abs(out - expected).max() <= MAX_ABS_DIFF, fmt


def _table(rng, n):
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "colour": rng.choice(["red", "blue", "green"], n),
            "weight": rng.exponential(size=n),
        }
    )
    label = np.where((frame["size"] > 0) ^ (frame["colour"] == "red"), "yes", "no")
    return frame, label


def test_table_model_fills_missing_values_and_agrees_in_every_format(tmp_path, rng):
    frame, label = _table(rng, 160)
    frame.loc[::9, "size"] = np.nan
    clf = automl.StructuredDataClassifier(
        max_trials=2, epochs=3, verbose=0, directory=tmp_path / "runs"
    )
    clf.fit(frame[:120], label[:120])
    _export_all(clf, tmp_path)
    test = frame[120:].reset_index(drop=True)
    test.loc[0, "colour"] = "purple"  # never seen in fit
    test.loc[1, "size"] = np.nan
    feed = serving.table_feed(clf.preprocessor_, test)
    assert feed["colour"].dtype.kind == "U" and np.isnan(feed["size"][1, 0])
    np.savez(tmp_path / "feed.npz", **feed)
    test.to_pickle(tmp_path / "frame.pkl")
    expected = clf.predict_proba(test)
    outputs = _run_runtimes(tmp_path, "table")
    for fmt, out in outputs.items():
        assert np.isfinite(out).all(), fmt  # the missing values were filled inside
        assert np.abs(out - expected).max() <= MAX_ABS_DIFF, fmt


def test_keras_file_has_no_optimizer_state_and_formats_are_checked(tmp_path, rng):
    import keras

    frame, label = _table(rng, 60)
    clf = automl.StructuredDataClassifier(
        max_trials=1, epochs=1, verbose=0, directory=tmp_path / "runs"
    )
    clf.fit(frame, label)
    path = clf.export_model(path=tmp_path / "m.keras")
    loaded = keras.models.load_model(path)
    assert getattr(loaded, "optimizer", None) is None  # shipped without the optimizer's state
    assert clf.export_model() is clf.model_
    with pytest.raises(InputError, match="Unknown export format 'pb'"):
        clf.export_model(format="pb", path=tmp_path / "m.pb")
    with pytest.raises(InputError, match="ends in '.onnx', which is not the format 'tflite'"):
        clf.export_model(format="tflite", path=tmp_path / "m.onnx")
    with pytest.raises(InputError, match="Cannot tell the format"):
        clf.export_model(path=tmp_path / "m.bin")
    with pytest.raises(InputError, match="does not exist"):
        clf.export_model(path=tmp_path / "missing" / "m.tflite")
