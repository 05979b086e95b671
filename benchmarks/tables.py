"""automl's table estimators against scikit-learn defaults, on every table, over seeds.

Datasets: scikit-learn's iris, wine, breast_cancer (classification) and diabetes
(regression), and two generated tables: `regression_20k` (skewed numeric columns,
two string categoricals, 2% missing values) and `imbalanced_5k` (3 classes with
priors ~0.80 / 0.15 / 0.05, one string categorical). For each dataset and seed: a
80/20 split (stratified for classification), then three scikit-learn pipelines at
default settings (linear, random forest, histogram gradient boosting) and
`StructuredDataClassifier` / `StructuredDataRegressor` at each time limit. Metric:
test accuracy (higher is better) or test MSE (lower is better; R^2 is recorded too).
automl "holds" on a dataset when its mean is better than the best baseline's mean,
or worse by at most the larger of the two standard deviations over seeds.

Usage:
    python benchmarks/tables.py [--quick] [--datasets NAME ...] [--seeds 0 1 2]
        [--limits 60 120] [--max-trials 10] [--baselines-only] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DATA_SEED = 20240601  # the generated tables do not depend on the benchmark seed


def regression_20k():
    """20,000 rows: 6 numeric columns (income, balance and visits skewed, balance with
    2% NaN), string columns city (30 levels, Zipf-like frequencies) and kind (5 levels).
    Target: log effects of the skewed columns, a sine of x1, an age * x2 interaction and
    per-level offsets, plus Gaussian noise set for a best R^2 of about 0.85."""
    rng = np.random.default_rng(DATA_SEED)
    n = 20_000
    income = rng.lognormal(10.5, 0.7, n)
    balance = rng.exponential(3000.0, n)
    visits = rng.lognormal(1.0, 1.0, n)
    age = rng.uniform(18, 80, n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    city_p = 1.0 / np.arange(1, 31) ** 0.8
    city = rng.choice(30, size=n, p=city_p / city_p.sum())
    kind = rng.choice(5, size=n, p=[0.35, 0.25, 0.2, 0.15, 0.05])
    city_offset, kind_offset = rng.normal(0, 0.5, 30), rng.normal(0, 0.7, 5)
    signal = (
        1.0 * (np.log(income) - 10.5)
        + 0.4 * np.log1p(balance / 1000)
        + 0.5 * np.log1p(visits)
        + 1.0 * np.sin(1.5 * x1)
        + 0.8 * x2 * (age - 49) / 18
        + city_offset[city]
        + kind_offset[kind]
    )
    y = signal + rng.normal(0, np.sqrt(signal.var() * 0.15 / 0.85), n)
    balance[rng.random(n) < 0.02] = np.nan
    x = pd.DataFrame(
        {
            "income": income,
            "balance": balance,
            "visits": visits,
            "age": age,
            "x1": x1,
            "x2": x2,
            "city": [f"city_{c:02d}" for c in city],
            "kind": [f"kind_{chr(97 + k)}" for k in kind],
        }
    )
    return x, pd.Series(y, name="target"), "regression"


def imbalanced_5k():
    """5,000 rows, 3 classes (priors ~0.80 / 0.15 / 0.05): 8 normal numeric columns
    (f0..f3 informative through linear and squared terms, f4..f7 noise) and a string
    column `segment` (4 levels) that shifts the odds of the minority classes."""
    rng = np.random.default_rng(DATA_SEED + 1)
    n = 5_000
    f = rng.normal(size=(n, 8))
    segment = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    shift1, shift2 = np.array([0.0, 0.8, -0.8, 1.5]), np.array([0.0, -0.5, 1.2, 2.0])
    logit1 = -6.6 + 3.75 * f[:, 0] + 2.25 * f[:, 1] + 1.2 * f[:, 2] ** 2 + shift1[segment]
    logit2 = -9.0 + 3.75 * f[:, 3] - 3.0 * f[:, 1] + 1.8 * f[:, 0] * f[:, 3] + shift2[segment]
    logits = np.stack([np.zeros(n), logit1, logit2], axis=1)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    x = pd.DataFrame(f, columns=[f"f{i}" for i in range(8)])
    x["segment"] = [f"seg_{s}" for s in segment]
    return x, pd.Series(y, name="label"), "classification"


def _sklearn(name: str):
    from sklearn import datasets

    def load():
        x, y = getattr(datasets, f"load_{name}")(return_X_y=True, as_frame=True)
        return x, y, "regression" if name == "diabetes" else "classification"

    return load


DATASETS = {name: _sklearn(name) for name in ("iris", "wine", "breast_cancer", "diabetes")}
DATASETS.update(regression_20k=regression_20k, imbalanced_5k=imbalanced_5k)
BASELINES = ("linear", "random_forest", "hist_gradient_boosting")


def baseline(kind: str, task: str, x: pd.DataFrame, seed: int):
    """A scikit-learn pipeline at default settings for `x`'s numeric and string columns."""
    from sklearn import ensemble, linear_model
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    cat = list(x.select_dtypes(exclude="number").columns)
    num = [c for c in x.columns if c not in cat]
    reg = task == "regression"
    onehot = OneHotEncoder(handle_unknown="ignore")
    if kind == "linear":
        model = linear_model.Ridge() if reg else linear_model.LogisticRegression(max_iter=2000)
        numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        columns = [("num", numeric, num), ("cat", onehot, cat)]
    elif kind == "random_forest":
        forest = ensemble.RandomForestRegressor if reg else ensemble.RandomForestClassifier
        model = forest(random_state=seed)
        columns = [("num", SimpleImputer(strategy="median"), num), ("cat", onehot, cat)]
    else:  # categorical columns first, so that the mask below names them
        hgb = (
            ensemble.HistGradientBoostingRegressor
            if reg
            else ensemble.HistGradientBoostingClassifier
        )
        mask = [True] * len(cat) + [False] * len(num) if cat else None
        model = hgb(random_state=seed, categorical_features=mask)
        ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        columns = [("cat", ordinal, cat), ("num", "passthrough", num)]
    return Pipeline(
        [("columns", ColumnTransformer([c for c in columns if c[2]])), ("model", model)]
    )


def score(task: str, y_true, y_pred) -> dict:
    """{"value": accuracy or MSE, "r2": R^2 for regression, else None}."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if task == "classification":
        return {"value": float(np.mean(y_pred.ravel() == y_true)), "r2": None}
    err = y_pred.reshape(len(y_true)) - y_true
    mse = float(np.mean(err**2))
    return {"value": mse, "r2": float(1 - mse / np.var(y_true))}


def run_automl(task: str, limit: float, seed: int, max_trials: int, split) -> dict:
    """One automl fit in a fresh temp directory; {"value", "r2", "seconds"} or {"error"}."""
    import automl

    x_train, x_test, y_train, y_test = split
    cls = (
        automl.StructuredDataRegressor if task == "regression" else automl.StructuredDataClassifier
    )
    directory = tempfile.mkdtemp(prefix="automl-tables-")
    try:
        model = cls(
            time_limit=limit,
            seed=seed,
            verbose=0,
            overwrite=True,
            directory=directory,
            max_trials=max_trials,
        )
        start = time.perf_counter()
        model.fit(x_train, y_train)
        seconds = time.perf_counter() - start
        return {**score(task, y_test, model.predict(x_test)), "seconds": seconds}
    except Exception as e:  # one failed run must not lose the others
        return {"value": None, "r2": None, "seconds": None, "error": f"{type(e).__name__}: {e}"}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def method_names(task: str, limits) -> list[str]:
    linear = "ridge" if task == "regression" else "logistic"
    return [linear, *BASELINES[1:]] + [f"automl_{limit:g}s" for limit in limits]


def aggregate(dataset: str, method: str, runs: list[dict]) -> dict:
    """Mean and std (ddof=0) of the metric over the runs without error, mean seconds."""
    ok = [r for r in runs if r.get("error") is None]

    def mean(key):
        return float(np.mean([r[key] for r in ok])) if ok and ok[0][key] is not None else None

    std = float(np.std([r["value"] for r in ok])) if ok else None
    return {
        "dataset": dataset,
        "method": method,
        "metric": runs[0]["metric"],
        "mean": mean("value"),
        "std": std,
        "seconds": mean("seconds"),
        "r2_mean": mean("r2"),
        "runs": len(ok),
        "errors": len(runs) - len(ok),
    }


def verdict(dataset: str, limit: float, auto: dict, base: list[dict], sign: float) -> dict:
    """Does automl hold against the best baseline? `sign` * metric is higher-is-better."""
    best = max(base, key=lambda s: sign * s["mean"])
    holds = auto["mean"] is not None and (
        sign * (best["mean"] - auto["mean"]) <= max(auto["std"], best["std"])
    )
    return {
        "dataset": dataset,
        "limit": limit,
        "automl_mean": auto["mean"],
        "automl_std": auto["std"],
        "best_baseline": best["method"],
        "baseline_mean": best["mean"],
        "baseline_std": best["std"],
        "holds": bool(holds),
    }


def summarize(rows: list[dict], limits) -> tuple[list[dict], list[dict]]:
    """(summary per dataset and method, verdicts per dataset and limit)."""
    summary, verdicts = [], []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        task = next(r["task"] for r in rows if r["dataset"] == dataset)
        stats = {}
        for method in method_names(task, limits):
            runs = [r for r in rows if (r["dataset"], r["method"]) == (dataset, method)]
            if runs:
                stats[method] = aggregate(dataset, method, runs)
        summary += stats.values()
        sign = 1.0 if task == "classification" else -1.0
        base = [stats[m] for m in method_names(task, []) if stats[m]["mean"] is not None]
        for limit in limits:
            auto = stats.get(f"automl_{limit:g}s")
            if base and auto is not None:
                verdicts.append(verdict(dataset, limit, auto, base, sign))
    return summary, verdicts


def cell(s: dict) -> str:
    if s["mean"] is None:
        return f"error ({s['errors']})"
    fmt = ".4f" if s["metric"] == "accuracy" else ".4g"
    return f"{s['mean']:{fmt}} ± {s['std']:{fmt}} ({s['seconds']:.1f}s)"


def print_table(summary: list[dict], verdicts: list[dict], limits) -> None:
    """One line per dataset: a cell per method (the linear column is ridge or logistic)."""
    header = ["ridge|logistic", *BASELINES[1:]] + [f"automl_{limit:g}s" for limit in limits]
    print(f"\n{'dataset':<15} {'metric':<8} " + "".join(f"{h:<28}" for h in header) + "verdict")
    for dataset in dict.fromkeys(s["dataset"] for s in summary):
        stats = [s for s in summary if s["dataset"] == dataset]
        verdict = "; ".join(
            f"{v['limit']:g}s {'holds' if v['holds'] else 'LOSES'} vs {v['best_baseline']}"
            for v in verdicts
            if v["dataset"] == dataset
        )
        cells = "".join(f"{cell(s):<28}" for s in stats)
        print(f"{dataset:<15} {stats[0]['metric']:<8} {cells}{verdict}")


def write_json(path: str, result: dict) -> None:
    """Write `result` to `path` atomically, so that a kill leaves the previous version."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, path)


def run_dataset(name: str, seeds, limits, max_trials: int) -> list[dict]:
    """The rows of every method and seed on one dataset, printed as they finish."""
    from sklearn.model_selection import train_test_split

    x, y, task = DATASETS[name]()
    metric = "accuracy" if task == "classification" else "mse"
    methods = method_names(task, limits)
    rows = []
    for seed in seeds:
        stratify = y if task == "classification" else None
        split = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=stratify)
        x_train, x_test, y_train, y_test = split
        runs = []
        for kind in BASELINES:
            pipe = baseline(kind, task, x_train, seed)
            start = time.perf_counter()
            y_pred = pipe.fit(x_train, y_train).predict(x_test)
            runs.append({**score(task, y_test, y_pred), "seconds": time.perf_counter() - start})
        for limit in limits:
            runs.append(run_automl(task, limit, seed, max_trials, split))
        for method, run in zip(methods, runs):
            row = {"dataset": name, "task": task, "method": method, "seed": seed, "metric": metric}
            rows.append({**row, **run})
            if run.get("error"):
                shown = f"ERROR {run['error']}"
            else:
                shown = f"{metric} {run['value']:{'.4f' if metric == 'accuracy' else '.4g'}}"
                shown += f"  r2 {run['r2']:.4f}" if run["r2"] is not None else ""
                shown += f"  {run['seconds']:.1f}s"
            print(f"{name:<15} seed {seed}  {method:<24} {shown}", flush=True)
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="iris and diabetes, seed 0, 30 s")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--limits", type=float, nargs="+", default=None, help="seconds")
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--baselines-only", action="store_true", help="skip automl")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    names = args.datasets or (["iris", "diabetes"] if args.quick else list(DATASETS))
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    limits = args.limits or ([30.0] if args.quick else [60.0, 120.0])
    limits = [] if args.baselines_only else limits
    import sklearn.ensemble  # noqa: F401  (imported here, not in the first timed fit)

    rows: list[dict] = []
    for name in names:
        rows += run_dataset(name, seeds, limits, args.max_trials)
        summary, verdicts = summarize(rows, limits)
        diabetes = [
            s["mean"]
            for s in summary
            if s["dataset"] == "diabetes" and s["method"] == "automl_120s"
        ]
        result = {
            "benchmark": "tables",
            "seeds": seeds,
            "limits": limits,
            "max_trials": args.max_trials,
            "rows": rows,
            "summary": summary,
            "verdicts": verdicts,
            "diabetes_mse_120s": diabetes[0] if diabetes else None,
            "all_hold": bool(verdicts) and all(v["holds"] for v in verdicts),
        }
        if args.json:
            write_json(args.json, result)
    print_table(summary, verdicts, limits)
    return result


if __name__ == "__main__":
    main()
