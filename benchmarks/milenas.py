"""MiLeNAS vs DARTS (first and second order) on scikit-learn's digits.

Same supernet, data and epochs for every method (early stopping off), several seeds.
Reports the median seconds per train step (timed around each compiled step; the
first epoch, which traces it, excluded) and the seconds per search epoch (which add
Keras's per-epoch overhead, the same for every method), their ratios to "milenas",
the final search-validation accuracy of the supernet,
and the test accuracy of the derived genotype after retraining a larger fixed network.

The DARTS space (the default; 3 cells, 4 channels, 6 epochs) is the one MiLeNAS was
made for; about 35 min for 3 seeds here, mostly tracing the supernet's steps. The
NAS-Bench-201 space (1 cell per stage, 8 channels, 25 epochs) takes about 12 min.

Usage:
    python benchmarks/milenas.py [--quick] [--json OUT] [--space darts|nb201] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from automl.cells.search import run_search, train_network  # noqa: E402

METHODS = ("milenas", "darts1", "darts2")


def load_data(size: int = 8):
    """Digits scaled by 1/16 (optionally upsampled), with a fixed stratified 20% test split."""
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    if size != 8:
        x = np.kron(x, np.ones((1, size // 8, size // 8), "float32"))
    x = x[..., None]
    return train_test_split(x, digits.target, test_size=0.2, stratify=digits.target, random_state=0)


class StepTimer(keras.callbacks.Callback):
    """Seconds of every train step (the compiled call only, no per-epoch overhead)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[list[float]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seconds.append([])

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds[-1].append(time.perf_counter() - self._start)

    def median_step(self) -> float:
        """Median step time after the first epoch (which traces the step)."""
        steps = [s for epoch in self.seconds[1:] or self.seconds for s in epoch]
        return statistics.median(steps)


def run_one(method: str, seed: int, data, settings: dict) -> dict:
    x_train, x_test, y_train, y_test = data
    timer = StepTimer()
    search = run_search(
        x_train,
        y_train,
        num_classes=10,
        method=method,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        cells=settings["cells"],
        channels=settings["channels"],
        space=settings["space"],
        stages=settings["stages"],
        seed=seed,
        alpha_lr=settings["alpha_lr"],
        early_stop=False,
        verbose=1,
        callbacks=[timer],
    )
    seconds = [e["seconds"] for e in search.history]
    start = time.perf_counter()
    model = train_network(
        search.genotype,
        x_train,
        y_train,
        num_classes=10,
        epochs=settings["retrain_epochs"],
        batch_size=settings["batch_size"],
        cells=settings["retrain_cells"],
        channels=settings["retrain_channels"],
        seed=seed,
    )
    test_accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    return {
        "method": method,
        "seed": seed,
        "seconds_per_epoch": statistics.mean(seconds[1:] or seconds),
        "seconds_per_step": timer.median_step(),
        "first_epoch_seconds": seconds[0],
        "search_val_accuracy": search.history[-1]["search_val_accuracy"],
        "test_accuracy": test_accuracy,
        "genotype": str(search.genotype),
        "model_size": list(search.genotype.model_size),
        "retrain_seconds": time.perf_counter() - start,
    }


def summarise(runs: list[dict]) -> list[dict]:
    """Mean and standard deviation per method, with the step-time ratio to milenas."""
    rows = []
    for method in METHODS:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        row = {"method": method, "seeds": len(mine)}
        for key in (
            "seconds_per_step",
            "seconds_per_epoch",
            "search_val_accuracy",
            "test_accuracy",
        ):
            values = [r[key] for r in mine]
            row[key] = statistics.mean(values)
            row[key + "_std"] = statistics.pstdev(values)
        rows.append(row)
    base = next((r for r in rows if r["method"] == "milenas"), None)
    for row in rows:
        for key in ("seconds_per_step", "seconds_per_epoch"):
            ratio = row[key] / base[key] if base else None
            row[key.replace("seconds_per", "ratio_to_milenas")] = ratio
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        f"{'method':<8} {'ms/step':>14} {'ratio':>6} {'s/epoch':>14} {'ratio':>6} "
        f"{'search-val acc':>16} {'test acc':>16}"
    )
    for r in rows:
        print(
            f"{r['method']:<8} {1000 * r['seconds_per_step']:>7.1f} ± "
            f"{1000 * r['seconds_per_step_std']:<4.1f} {r['ratio_to_milenas_step']:>6.2f} "
            f"{r['seconds_per_epoch']:>7.2f} ± {r['seconds_per_epoch_std']:<4.2f} "
            f"{r['ratio_to_milenas_epoch']:>6.2f} "
            f"{r['search_val_accuracy']:>8.3f} ± {r['search_val_accuracy_std']:.3f} "
            f"{r['test_accuracy']:>8.3f} ± {r['test_accuracy_std']:.3f}"
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epochs: a smoke run")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--space", default="darts", choices=("darts", "nb201"))
    parser.add_argument("--epochs", type=int, help="search epochs (default: darts 6, nb201 25)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=8, choices=(8, 16))
    parser.add_argument(
        "--alpha-lr",
        type=float,
        default=3e-3,
        help="Adam lr of the alphas (MiLeNAS: 3e-4 over ~20k steps)",
    )
    args = parser.parse_args(argv)
    darts = args.space == "darts"
    settings = {
        "space": args.space,
        "epochs": 3 if args.quick else args.epochs or (6 if darts else 25),
        "batch_size": 64,
        "cells": 3 if darts else 1,
        "stages": 3,
        "channels": 4 if darts else 8,
        "retrain_epochs": 3 if args.quick else 15,
        "retrain_cells": 4 if darts else 2,
        "retrain_channels": 8 if darts else 16,
        "size": args.size,
        "alpha_lr": args.alpha_lr,
    }
    seeds = range(1 if args.quick else args.seeds)
    data = load_data(args.size)
    runs = []
    for seed in seeds:
        for method in METHODS:
            run = run_one(method, seed, data, settings)
            print(json.dumps(run), flush=True)
            runs.append(run)
    rows = summarise(runs)
    print_table(rows)
    output = {"results": runs, "summary": rows, "settings": settings}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(output, f, indent=2)
    return output


if __name__ == "__main__":
    main()
