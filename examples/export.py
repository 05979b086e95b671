"""Export: write fitted models as Keras, SavedModel, TFLite and ONNX, and check each file.

An image classifier (digits) and a table classifier (iris with a text column and
NaN) are exported with `export_model(format=..., path=...)`; each file is loaded
with its own runtime (no automl) and compared with `predict_proba`. ONNX needs
`pip install 'automl-keras[onnx]'`.

Run: python examples/export.py [--quick]    # about 3 minutes; with --quick, under one
"""

from __future__ import annotations

import argparse
import os

import keras
import numpy as np
import onnxruntime
import tensorflow as tf
from sklearn.datasets import load_digits, load_iris

import automl
from automl.export.formats import table_feed

FILES = {"keras": ".keras", "savedmodel": "_savedmodel", "tflite": ".tflite", "onnx": ".onnx"}


def run(fmt: str, path: str, feed):
    """Probabilities from the file at `path`, loaded with the runtime of `fmt`."""
    if fmt == "keras":  # Keras takes strings as tensors, not as numpy arrays
        model = keras.models.load_model(path)
        return model.predict(tf.nest.map_structure(tf.constant, feed), verbose=0)
    if fmt == "savedmodel":
        serve = tf.saved_model.load(path).signatures["serving_default"]
        return serve(**{k: tf.constant(v) for k, v in feed.items()})["output"].numpy()
    if fmt == "tflite":
        return tf.lite.Interpreter(model_path=path).get_signature_runner()(**feed)["output"]
    feed = {k: v.astype(object) if v.dtype.kind == "U" else v for k, v in feed.items()}
    return onnxruntime.InferenceSession(path).run(["output"], feed)[0]


def check(name: str, clf, x, keras_feed, feed: dict, out: str) -> None:
    """Export `clf` in every format; print each file's largest difference from `clf`."""
    expected = clf.predict_proba(x)
    for fmt, suffix in FILES.items():
        path = clf.export_model(format=fmt, path=os.path.join(out, name + suffix))
        got = run(fmt, path, keras_feed if fmt == "keras" else feed)
        print(f"{name:<7}{fmt:<11} max |difference| {np.abs(got - expected).max():.1e}  {path}")


def main(out: str, quick: bool) -> None:
    """Fit both classifiers (`quick`: one trial of 2 epochs each) and check their exports."""
    settings = dict(
        max_trials=1 if quick else 5,
        epochs=2 if quick else None,
        time_limit=None if quick else "90s",
        directory=os.path.join(out, "runs"),
        overwrite=True,
        seed=0,
    )
    x, y = load_digits(return_X_y=True)
    images = x.reshape(-1, 8, 8).astype("float32")  # the graph formats take float32
    clf = automl.ImageClassifier(project_name="images", **settings).fit(images, y)
    check("images", clf, images, images, {"input": images}, out)

    frame, y = load_iris(return_X_y=True, as_frame=True)
    frame["size"] = np.where(frame["petal length (cm)"] > 4, "long", "short")
    frame.loc[::7, "sepal width (cm)"] = np.nan
    clf = automl.StructuredDataClassifier(project_name="table", **settings).fit(frame, y)
    # .keras takes missing values filled in (by preprocessor_.transform); the others take NaN
    feed = table_feed(clf.preprocessor_, frame)
    check("table", clf, frame, clf.preprocessor_.transform(frame), feed, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short trial per model")
    parser.add_argument("--out", default="automl_examples", help="output folder")
    args = parser.parse_args()
    main(args.out, args.quick)
