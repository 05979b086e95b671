"""Quick start: search an image classifier for 8x8 digits, then save, reload and predict.

Shows `fit` with a time limit, `evaluate` on held-out images, `search_summary()`,
and `automl.export.keras_file.save_model` / `load_model` / `predict_with`.

Run:
    python examples/quickstart.py            # about 3 minutes
    python examples/quickstart.py --quick    # about a minute
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import automl
import automl.export.keras_file


def main(out: str, quick: bool) -> None:
    """Fit, evaluate, save and reload; `out` gets the search project and the model."""
    x, y = load_digits(return_X_y=True)
    x = x.reshape(-1, 8, 8)  # images: (samples, height, width)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=0
    )
    clf = automl.ImageClassifier(
        max_trials=3 if quick else 10,
        time_limit="40s" if quick else "3m",
        directory=os.path.join(out, "runs"),
        project_name="quickstart",
        overwrite=True,
        seed=0,
    )
    clf.fit(x_train, y_train)
    columns = ["trial_id", "params", "score", "epochs", "seconds", "parent", "status", "ensemble"]
    print(clf.search_summary()[columns].to_string(index=False))
    print(f"held-out accuracy: {clf.evaluate(x_test, y_test)['accuracy']:.4f}")

    path = automl.export.keras_file.save_model(clf, os.path.join(out, "digits.keras"))
    model, preprocessor, target = automl.export.keras_file.load_model(path)
    reloaded = automl.export.keras_file.predict_with(model, preprocessor, target, x_test)
    same = np.array_equal(reloaded, clf.predict(x_test))
    print(f"saved to {path}; reloaded model gives the same labels: {same}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small search (about a minute)")
    parser.add_argument("--out", default="automl_examples", help="output folder")
    args = parser.parse_args()
    main(args.out, args.quick)
