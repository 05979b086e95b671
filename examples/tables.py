"""Tables: a StructuredDataClassifier on a DataFrame with a text column and missing values.

The wine data with 10% NaN in two columns, a text column `color` and string
labels. `predict` fills a missing number with the training median and maps a
category never seen in `fit` to an "unknown" slot.

Run:
    python examples/tables.py            # about 2 minutes
    python examples/tables.py --quick    # under a minute
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

import automl


def wine_frame(seed: int = 0):
    """(DataFrame, labels): wine with a text column and NaN in two numeric columns."""
    data = load_wine(as_frame=True)
    frame = data.frame.drop(columns="target")
    colors = np.asarray(["pale", "light", "medium", "deep"])
    frame["color"] = colors[np.digitize(frame.pop("color_intensity"), [3, 5, 8])]
    rng = np.random.default_rng(seed)
    for column in ("alcohol", "magnesium"):  # 10% missing
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    return frame, np.asarray(["barolo", "grignolino", "barbera"])[data.target]


def main(out: str, quick: bool) -> None:
    """Fit, then predict on the test rows as they are and with missing and unseen values."""
    frame, labels = wine_frame()
    x_train, x_test, y_train, y_test = train_test_split(
        frame, labels, test_size=0.3, stratify=labels, random_state=0
    )
    clf = automl.StructuredDataClassifier(
        max_trials=3 if quick else 10,
        time_limit="40s" if quick else "2m",
        directory=os.path.join(out, "runs"),
        project_name="tables",
        overwrite=True,
        seed=0,
    )
    clf.fit(x_train, y_train)
    print(f"test accuracy: {np.mean(clf.predict(x_test) == y_test):.4f}")

    # alcohol missing everywhere (the training median fills it), a color fit never saw
    predicted = clf.predict(x_test.assign(alcohol=np.nan, color="violet"))
    print(
        f"with alcohol missing and color unseen: first predictions {predicted[:4]}, "
        f"test accuracy {np.mean(predicted == y_test):.4f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small search (under a minute)")
    parser.add_argument("--out", default="automl_examples", help="output folder")
    args = parser.parse_args()
    main(args.out, args.quick)
