"""Cell search: find a convolutional cell for 8x8 digits with MiLeNAS or DARTS.

A supernet whose edges mix every candidate operation is trained, a genotype (one
operation per edge) is read from it, and the genotypes found are trained as
trials. `cell_options` sizes the search: `--quick` uses one small NAS-Bench-201
cell, a real run the library's defaults (the DARTS space).

Run:
    python examples/cell_search.py                      # MiLeNAS, about 10 minutes
    python examples/cell_search.py --strategy darts     # second-order DARTS
    python examples/cell_search.py --quick              # about a minute
"""

from __future__ import annotations

import argparse
import os

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import automl

QUICK_CELLS = {
    "space": "nb201",
    "stages": 1,
    "search_epochs": 6,
    "search_cells": 1,
    "search_channels": 8,
    "cells": 1,
    "channels": 8,
}


def main(out: str, strategy: str, quick: bool) -> None:
    """Search a cell with `strategy` ("milenas" or "darts"); print the genotype and score."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.reshape(-1, 8, 8), y, test_size=0.2, stratify=y, random_state=0
    )
    clf = automl.ImageClassifier(
        strategy=strategy,
        cell_options=QUICK_CELLS if quick else None,
        max_trials=2 if quick else 5,
        epochs=5 if quick else None,
        time_limit="60s" if quick else "10m",
        directory=os.path.join(out, "runs"),
        project_name=strategy,
        overwrite=True,
        seed=0,
    )
    clf.fit(x_train, y_train)
    columns = ["trial_id", "key", "params", "search_score", "score", "seconds", "status"]
    print(clf.search_summary()[columns].to_string(index=False))
    print(f"best genotype: {clf.best_architecture_}")
    print(f"test accuracy: {clf.evaluate(x_test, y_test)['accuracy']:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", choices=["milenas", "darts"], default="milenas")
    parser.add_argument("--quick", action="store_true", help="a tiny search (about a minute)")
    parser.add_argument("--out", default="automl_examples", help="output folder")
    args = parser.parse_args()
    main(args.out, args.strategy, args.quick)
