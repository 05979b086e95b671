"""Bayesian optimisation vs random search on digits, same budget and seeds.

Runs `ImageClassifier(strategy=S, max_trials=N, seed=s)` for each strategy and
seed on the digits training split (the CLI's fixed 80/20 split) and reports the
best validation accuracy each search found, and its held-out test accuracy.

    python benchmarks/strategies_digits.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run(strategy: str, seed: int, max_trials: int, directory: str) -> dict:
    import automl
    from automl.data.datasets import load_builtin

    data = load_builtin("digits")
    clf = automl.ImageClassifier(
        strategy=strategy,
        max_trials=max_trials,
        seed=seed,
        directory=directory,
        project_name=f"{strategy}_{seed}",
        overwrite=True,
        verbose=0,
    )
    start = time.time()
    clf.fit(data.x_train, data.y_train)
    summary = clf.search_summary()
    return {
        "strategy": strategy,
        "seed": seed,
        "best_val_accuracy": float(summary["score"].max()),
        "test_accuracy": clf.evaluate(data.x_test, data.y_test)["accuracy"],
        "trials": int(len(summary)),
        "seconds": round(time.time() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 4 trials")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    trials = 4 if args.quick else args.max_trials
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for seed in range(seeds):
            for strategy in ("bayesian", "random"):
                rows.append(run(strategy, seed, trials, directory))
                r = rows[-1]
                print(
                    f"{strategy:<9} seed {seed}: best val {r['best_val_accuracy']:.4f}  "
                    f"test {r['test_accuracy']:.4f}  ({r['seconds']:.0f} s)",
                    flush=True,
                )
    print(f"\n{'strategy':<10}{'mean best val':>15}{'mean test':>11}{'mean s':>9}")
    means = {}
    for strategy in ("bayesian", "random"):
        mine = [r for r in rows if r["strategy"] == strategy]
        val = sum(r["best_val_accuracy"] for r in mine) / len(mine)
        test = sum(r["test_accuracy"] for r in mine) / len(mine)
        secs = sum(r["seconds"] for r in mine) / len(mine)
        means[strategy] = val
        print(f"{strategy:<10}{val:>15.4f}{test:>11.4f}{secs:>9.0f}")
    wins = sum(
        b["best_val_accuracy"] > r["best_val_accuracy"] for b, r in zip(rows[0::2], rows[1::2])
    )
    print(
        f"bayesian beats random on {wins} of {seeds} seeds; mean gap "
        f"{means['bayesian'] - means['random']:+.4f}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"max_trials": trials, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
