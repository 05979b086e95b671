"""Tabular NAS benchmarks: run strategies on NAS-Bench-201 with a table lookup as the score.

No training happens, so thousands of searches take seconds to minutes. Used by
`automl benchmark nb201` and `benchmarks/`.

Example:
    >>> run_tabular("evolution", table, budget=100, seeds=range(10))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import numpy as np

from automl.errors import InputError
from automl.nb201 import codec as nb201
from automl.nb201.space import NB201Space
from automl.search.base import Observation, get_strategy

DEFAULT_TABLE = nb201.TABLE_PATH


def checkpoints(budget: int) -> list[int]:
    marks = [b for b in (10, 25, 50, 100, 150, 200, 300, 500, 1000) if b < budget]
    return marks + [budget]


def _check_budget(budget) -> None:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise InputError(
            f"budget must be a positive integer (queries per search). Received: budget={budget!r}."
        )


def run_search(strategy, table: dict[str, float], budget: int, seed: int):
    """One search: best-so-far score after each query, and seconds spent proposing."""
    _check_budget(budget)
    space = NB201Space()
    history: list[Observation] = []
    best, curve, seconds = -np.inf, [], 0.0
    for i in range(budget):
        rng = np.random.default_rng([seed, i])
        start = time.perf_counter()
        proposal = strategy.propose(space, history, rng)
        seconds += time.perf_counter() - start
        key = space.key(proposal.arch)
        if key not in table:
            raise InputError(f"The table has no row for {key}; it must cover the whole space.")
        score = table[key]
        history.append(Observation(proposal.arch, score, str(i)))
        best = max(best, score)
        curve.append(best)
    return curve, seconds / budget


def run_tabular(
    strategy: str,
    table: dict[str, float],
    budget: int,
    seeds: Iterable[int],
    kernel: str | None = None,
    progress=None,
) -> dict:
    """Mean and standard deviation of the best score at each checkpoint, over seeds."""
    from threadpoolctl import threadpool_limits

    _check_budget(budget)
    seeds = list(seeds)
    if not seeds:
        raise InputError("run_tabular needs at least one seed. Received: seeds=[].")
    kwargs = {"kernel": kernel} if strategy == "bayesian" and kernel else {}
    instance = get_strategy(strategy, **kwargs)
    curves, per_query = [], []
    for seed in seeds:
        with threadpool_limits(1):  # small matrices: one BLAS thread is fastest, and steady
            curve, seconds = run_search(instance, table, budget, seed)
        curves.append(curve)
        per_query.append(seconds)
        if progress:
            progress(
                f"{strategy}{'/' + kernel if kwargs else ''} seed {seed}: best {curve[-1]:.2f}"
            )
    curves = np.array(curves)
    marks = checkpoints(budget)
    return {
        "strategy": strategy,
        "kernel": getattr(instance, "kernel", None),
        "budgets": marks,
        "mean_best": [round(float(curves[:, b - 1].mean()), 4) for b in marks],
        "std_best": [round(float(curves[:, b - 1].std()), 4) for b in marks],
        "seconds_per_query": round(float(np.mean(per_query)), 5),
        "seeds": len(curves),
    }


def format_results(results: list[dict], optimum: float) -> str:
    marks = results[0]["budgets"]
    head = f"{'strategy':<10} {'kernel':<14}" + "".join(f"{'B=' + str(b):>16}" for b in marks)
    lines = [head + f"{'regret':>9}{'s/query':>10}"]
    for r in results:
        cells = "".join(f"{m:>9.2f} ± {s:<4.2f}" for m, s in zip(r["mean_best"], r["std_best"]))
        regret = optimum - r["mean_best"][-1]
        kernel = r["kernel"] or "-"
        lines.append(
            f"{r['strategy']:<10} {kernel:<14}{cells}{regret:>9.2f}{r['seconds_per_query']:>10.4f}"
        )
    return "\n".join(lines)


def main(args) -> dict:
    try:
        table = nb201.load_table(args.table, args.column)
    except InputError as err:
        raise InputError(f"{err} Pick the file with --table and the column with --column.") from err
    optimum = max(table.values())
    results = []
    for strategy in args.strategy.split(","):
        kernels = args.kernel.split(",") if strategy == "bayesian" else [None]
        for kernel in kernels:
            log = print if args.verbose else None
            results.append(
                run_tabular(strategy, table, args.budget, range(args.seeds), kernel, progress=log)
            )
    print(
        f"table {args.table or DEFAULT_TABLE} column {args.column}: optimum {optimum:.2f}, "
        f"{args.seeds} seeds, mean ± std of the best score found"
    )
    print(format_results(results, optimum))
    out = {
        "table": str(args.table or DEFAULT_TABLE),
        "column": args.column,
        "optimum": optimum,
        "results": results,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


def add_parser(sub) -> None:
    """The `automl benchmark` subcommand."""
    p = sub.add_parser("benchmark", help="compare strategies on a tabular NAS benchmark")
    p.add_argument("space", choices=["nb201"])
    p.add_argument("--table", default=None, help="CSV with 'arch' (default: packaged CIFAR-100)")
    p.add_argument("--column", default="test_accuracy")
    p.add_argument(
        "--strategy",
        default="bayesian,evolution,random",
        help="comma-separated: bayesian, evolution, random",
    )
    p.add_argument("--kernel", default="wl", help="comma-separated kernels for bayesian")
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--json", default=None)
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=main)
