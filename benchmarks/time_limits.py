"""Does `fit(time_limit=...)` return on time? The whole fit: search, refit and ensemble.

For each limit, an `ImageClassifier` (default strategy, `max_trials=100` so that
only the clock stops it) is fit on scikit-learn's `load_digits` (8x8 images, a
fixed stratified 80/20 train / test split) in a fresh project. Reported: the wall
seconds of `fit` against the limit (ratio; the goal is within 10%), the trials
finished, the ensemble members and the test accuracy.

Usage:
    python benchmarks/time_limits.py [--quick] [--limits 30 60 180] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def load_data(seed: int = 0):
    """Digits as (x_train, y_train, x_test, y_test), 8x8 images with values 0..16."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.reshape(-1, 8, 8), y, test_size=0.2, random_state=seed, stratify=y
    )
    return x_train, y_train, x_test, y_test


def run_limit(limit: float, data, seed: int = 0) -> dict:
    """Fit once with `time_limit=limit` seconds; the row of the table."""
    import automl

    x_train, y_train, x_test, y_test = data
    model = automl.ImageClassifier(
        time_limit=limit,
        max_trials=100,
        seed=seed,
        verbose=0,
        directory=tempfile.mkdtemp(prefix="automl-time-"),
    )
    start = time.time()
    model.fit(x_train, y_train)
    wall = time.time() - start
    summary = model.search_summary()
    return {
        "time_limit": limit,
        "wall_seconds": round(wall, 2),
        "ratio": round(wall / limit, 3),
        "within_10_percent": bool(abs(wall / limit - 1) <= 0.10),
        "trials_finished": int((summary["status"] == "COMPLETED").sum()),
        "ensemble": list(model.ensemble_trial_ids_),
        "test_accuracy": round(float(np.mean(model.predict(x_test) == y_test)), 4),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="limits of 15 and 30 s")
    parser.add_argument("--limits", type=float, nargs="+", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    limits = args.limits or ([15.0, 30.0] if args.quick else [30.0, 60.0, 180.0])
    data = load_data(args.seed)
    rows = []
    print(
        f"{'limit s':>8} {'fit s':>7} {'ratio':>6} {'ok':>3} {'trials':>6} {'test acc':>8}  ensemble"
    )
    for limit in limits:
        row = run_limit(limit, data, args.seed)
        rows.append(row)
        print(
            f"{limit:8.0f} {row['wall_seconds']:7.1f} {row['ratio']:6.3f} "
            f"{'yes' if row['within_10_percent'] else 'NO':>3} {row['trials_finished']:6d} "
            f"{row['test_accuracy']:8.4f}  {', '.join(row['ensemble'])}",
            flush=True,
        )
    result = {
        "benchmark": "time_limits",
        "dataset": "load_digits 8x8, 80/20 split",
        "all_within_10_percent": all(r["within_10_percent"] for r in rows),
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
