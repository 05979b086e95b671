"""NAS-Bench-201: compare search strategies in seconds, with a table lookup as the score.

The CIFAR-100 test accuracy of each of the 15,625 NAS-Bench-201 cells ships with
automl, so a trial is a lookup. Prints the best accuracy found after N queries
(mean ± std over seeds) and writes the numbers as JSON.

Run:
    python examples/nb201_benchmark.py            # 150 queries, 5 seeds: about 3 minutes
    python examples/nb201_benchmark.py --quick    # 50 queries, 3 seeds: seconds
"""

from __future__ import annotations

import argparse
import json
import os

from automl.nb201 import codec as nb201
from automl.search.tabular import run_tabular


def main(out: str, strategies: list[str], budget: int, seeds: int) -> None:
    """Run each strategy ("bayesian", "evolution", "random") `seeds` times for `budget` queries."""
    table = nb201.load_table()  # {arch string: CIFAR-100 test accuracy}
    optimum = max(table.values())
    results = [run_tabular(name, table, budget, range(seeds)) for name in strategies]

    marks = results[0]["budgets"]
    print(f"{len(table)} cells, best test accuracy {optimum:.2f}; mean ± std over {seeds} seeds")
    print(f"{'strategy':<10}" + "".join(f"{f'after {b}':>16}" for b in marks) + f"{'s/query':>9}")
    for r in results:
        cells = "".join(f"{m:>9.2f} ± {s:<4.2f}" for m, s in zip(r["mean_best"], r["std_best"]))
        print(f"{r['strategy']:<10}{cells}{r['seconds_per_query']:>9.4f}")

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "nb201_benchmark.json")
    with open(path, "w") as f:
        json.dump({"optimum": optimum, "results": results}, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--strategy",
        default="bayesian,evolution,random",
        help="comma-separated: bayesian, evolution, random",
    )
    parser.add_argument("--budget", type=int, help="queries per search (default 150)")
    parser.add_argument("--seeds", type=int, help="searches per strategy (default 5)")
    parser.add_argument("--quick", action="store_true", help="default to 50 queries, 3 seeds")
    parser.add_argument("--out", default="automl_examples", help="output folder")
    args = parser.parse_args()
    budget = args.budget or (50 if args.quick else 150)
    seeds = args.seeds or (3 if args.quick else 5)
    main(args.out, args.strategy.split(","), budget, seeds)
