"""What shipping a digits model costs in each format: file size, agreement, speed.

Fits an ImageClassifier on scikit-learn's 8x8 digits (the `automl fit digits`
split), then exports two models: the final model (an ensemble of up to
`ensemble_size` trials) and the best single trial within `--max-params`. Each is
written as .keras, SavedModel, TFLite and ONNX; each file is loaded by its own
runtime and scored on the held-out test split: accuracy, the largest difference
from `predict_proba`, and milliseconds per sample (the median of 5 runs over the
test split in one batch, after a warm-up run, on this machine's CPU).

    python benchmarks/export.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def _size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def _runner(fmt: str, path: str):
    """A function images -> probabilities, with the runtime of `fmt`."""
    if fmt == "keras":
        import keras

        model = keras.models.load_model(path)
        return lambda x: model.predict_on_batch(x)
    if fmt == "savedmodel":
        import tensorflow as tf

        serve = tf.saved_model.load(path).signatures["serving_default"]
        return lambda x: serve(input=tf.constant(x))["output"].numpy()
    if fmt == "tflite":
        from automl.export.formats import load_tflite

        run = load_tflite(path)
        return lambda x: run(input=x)["output"]
    import onnxruntime

    session = onnxruntime.InferenceSession(path)
    return lambda x: session.run(["output"], {"input": x})[0]


def measure(clf, model_kwargs: dict, x, y, folder: str) -> list[dict]:
    """One row per format for the model `export_model(**model_kwargs)` picks."""
    expected = None
    rows = []
    for fmt, ext in (
        ("keras", ".keras"),
        ("savedmodel", ""),
        ("tflite", ".tflite"),
        ("onnx", ".onnx"),
    ):
        path = clf.export_model(
            format=fmt, path=os.path.join(folder, f"model{ext}"), **model_kwargs
        )
        run = _runner(fmt, path)
        proba = np.asarray(run(x))
        if expected is None:
            expected = proba  # the Keras model's own output
        times = []
        for _ in range(5):
            start = time.perf_counter()
            run(x)
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "format": fmt,
                "bytes": _size(path),
                "accuracy": float((proba.argmax(1) == y).mean()),
                "max_abs_diff": float(np.abs(proba - expected).max()),
                "ms_per_sample": 1000 * float(np.median(times)) / len(x),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 trials of 2 epochs")
    parser.add_argument("--time-limit", default="2m")
    parser.add_argument("--max-params", type=int, default=100_000)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    import automl
    from automl.data import datasets

    data = datasets.load_builtin("digits")
    settings = {"max_trials": 2, "epochs": 2} if args.quick else {"time_limit": args.time_limit}
    with tempfile.TemporaryDirectory() as folder:
        clf = automl.ImageClassifier(seed=0, verbose=0, directory=folder, **settings)
        clf.fit(data.x_train, data.y_train)
        x = np.asarray(data.x_test, dtype="float32")
        y = np.asarray(data.y_test)
        result = {"trials": len(clf.search_summary()), "models": {}}
        for name, kwargs in (("final", {}), ("single", {"max_params": args.max_params})):
            os.makedirs(os.path.join(folder, name))
            model = clf.export_model(**kwargs)
            rows = measure(clf, kwargs, x, y, os.path.join(folder, name))
            result["models"][name] = {"params": int(model.count_params()), "formats": rows}
    print(f"digits: {result['trials']} trials; {len(y)} test images, one batch\n")
    print(
        f"{'model':<8}{'params':>10}  {'format':<11}{'KiB':>9}{'accuracy':>10}"
        f"{'max|diff|':>11}{'ms/sample':>11}"
    )
    for name, entry in result["models"].items():
        for row in entry["formats"]:
            print(
                f"{name:<8}{entry['params']:>10,}  {row['format']:<11}{row['bytes'] / 1024:>9.0f}"
                f"{row['accuracy']:>10.4f}{row['max_abs_diff']:>11.1e}"
                f"{row['ms_per_sample']:>11.4f}"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
