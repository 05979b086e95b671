"""How good a model does the default `ImageClassifier` give within a time limit? An ablation.

For each dataset, time limit, variant and seed, a default `ImageClassifier(time_limit=T,
seed=S)` is fit in a fresh process and a fresh project, and scored on a held-out test
set. Variants switch the search's speed-ups on one at a time, from the search as it
was before them ("before") to the default ("after"):

- `before`: plain expected improvement, no screening, no trial stopping, no limit
  on one trial's share of the time, widened copies exact (split outgoing weights,
  no noise), early stopping on the validation accuracy;
- `base`: the settings of `before`, with the time rules (next paragraph) that
  every variant run with this version of the library has: the baseline of the
  single changes;
- `+cost`: expected improvement per predicted second;
- `+screen`: the best 8 candidates of the acquisition screened by NASWOT;
- `+stop`: learning-curve stopping of trials that cannot beat the best one;
- `+time`: no trial trains for more than a third of the search's time;
- `+loss`: early stopping on the validation loss (before: on the validation accuracy);
- `after`: all of them, and widened copies that start with zero outgoing weights
  and noisy incoming ones (the library's defaults);
- `previous`: the defaults of an older commit of the library, checked out at
  `--library DIR` (its runs import automl from there): this library against that
  one, back to back on the same machine.

Every variant run with this version of the library also has its time rules: the
best trial's refit time is kept free, and no trial starts whose predicted cost
does not fit the time left; `+time` is `before` with those and the share. (The
`before` rows in `benchmarks/results/anytime.json` were run with the library as it
was before all of these changes; each run's `library` field names the commit it was
run with.)

The `short` plan (`--plan short`) runs digits28 at 30 s, 1 and 2 minutes, `previous`
and `after`, and digits at 3 minutes (the `automl fit digits` default), 5 seeds.

Datasets: `digits` (scikit-learn's 8x8 digits with the fixed test split of
`automl fit digits`) and `digits28` (4,000 training and 1,000 test 28x28 images from
`benchmarks/image_set.py`, seed 0). Recorded per run: test accuracy, the test
expected calibration error (15 bins), the final model's members and what its choice
reported (`calibration`: validation scores, temperature, calibration error), best
validation accuracy, fit seconds, trials (finished and stopped early), the
parameter count of every trial, the best validation accuracy against seconds since
the fit began, and every trial's validation curve. The curves of the runs without
stopping are then replayed under each stopping rule (`automl.search.stopping.replay`): the
epochs each rule saves, and whether it would have stopped the search's best trial.

Runs go one at a time (they share the machine's cores, as a user's fit would);
results are appended to the JSON as they finish, and a rerun with the same
`--json` skips the runs already there.

Usage:
    python benchmarks/anytime.py [--quick] [--json OUT] [--datasets digits digits28]
        [--limits 2m 5m] [--seeds 0 1 2] [--variants before after] [--plan PLAN]
        [--library DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from automl.engine.settings import SearchSettings  # noqa: E402

# "before": plain EI, no screening, no stopping, exact widened copies (split outgoing
# weights, no noise), no trial share, early stopping on the validation accuracy
BEFORE = SearchSettings(
    bayesian_cost_aware=False,
    bayesian_screen_top=0,
    trial_stopping=None,
    widen_mode="split",
    widen_noise=0.0,
    trial_share=None,
    monitor_loss=False,
)
VARIANTS = {
    "before": BEFORE,
    "base": BEFORE,  # `before` run with this library: with the time rules every variant has
    "+cost": replace(BEFORE, bayesian_cost_aware=True),
    "+screen": replace(BEFORE, bayesian_screen_top=8),
    "+stop": replace(BEFORE, trial_stopping="curve"),
    "+time": replace(BEFORE, trial_share=1 / 3),
    "+loss": replace(BEFORE, monitor_loss=True),
    "after": SearchSettings(),  # the library's defaults
    "previous": SearchSettings(),  # the defaults of the library at --library (an older commit)
}
# (dataset, limit, variants, seeds): what a full run measures, most telling first
PLANS = {
    "full": [
        ("digits", "2m", ["after"], [0, 1, 2, 3, 4]),
        ("digits28", "2m", ["before", "+time", "after"], [0, 1, 2]),
        ("digits", "2m", ["before", "+cost", "+screen", "+stop", "+loss"], [0, 1, 2]),
        ("digits28", "5m", ["before", "after"], [0, 1, 2]),
        ("digits", "1m", ["before", "after"], [0, 1, 2]),
        ("digits28", "1m", ["before", "after"], [0, 1, 2]),
        ("digits28", "10m", ["before", "after"], [0, 1, 2]),
        ("digits28", "2m", ["base", "+cost", "+screen", "+stop", "+loss"], [0, 1, 2]),
        ("digits", "10m", ["before", "after"], [0, 1, 2]),
    ],
    "quick": [("digits", "30s", ["before", "after"], [0])],
    # short limits: this library ("after") against an older one ("previous", --library)
    "short": [
        ("digits28", "30s", ["previous", "after"], [0, 1, 2]),
        ("digits28", "1m", ["previous", "after"], [0, 1, 2]),
        ("digits28", "2m", ["previous", "after"], [0, 1, 2]),
        ("digits", "3m", ["after"], [0, 1, 2, 3, 4]),
    ],
}


# ---------------------------------------------------------------------- one run
def load(dataset: str):
    """(x_train, y_train, x_test, y_test) of a dataset."""
    if dataset == "digits":
        from automl.data.datasets import load_builtin

        split = load_builtin("digits")
        return split.x_train, split.y_train, split.x_test, split.y_test
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from image_set import make_image_set

    data = make_image_set(n_train=4000, n_test=1000, seed=0)
    return data["x_train"], data["y_train"], data["x_test"], data["y_test"]


def switches() -> dict:
    """Each variant's value of every setting some variant changes (what the JSON records)."""
    default = asdict(SearchSettings())
    values = {name: asdict(settings) for name, settings in VARIANTS.items()}
    changed = [k for k in default if any(v[k] != default[k] for v in values.values())]
    return {name: {k: v[k] for k in changed} for name, v in values.items()}


def run_one(dataset: str, limit: str, variant: str, seed: int) -> dict:
    """Fit the default ImageClassifier once; the run's record."""
    import automl
    from automl.engine.settings import use

    x_train, y_train, x_test, y_test = load(dataset)
    with tempfile.TemporaryDirectory() as directory:
        clf = automl.ImageClassifier(time_limit=limit, seed=seed, directory=directory, verbose=0)
        start = time.time()
        with use(VARIANTS[variant]):
            clf.fit(x_train, y_train)
        seconds = time.time() - start
        test = float(np.mean(clf.predict(x_test).ravel() == np.asarray(y_test).ravel()))
        ece = calibration_error(clf.predict_proba(x_test), clf.head_.encode(y_test))
        chosen = getattr(clf, "calibration_", None) or {}
        rows = clf.search_summary().to_dict("records")
        tuner = clf.backend_.tuner
        curves, stopped, done = {}, 0, []
        for row in rows:
            summary = tuner.trial_summary(row["trial_id"])
            if summary.get("curve"):
                curves[row["trial_id"]] = summary["curve"]
            stopped += bool(summary.get("stopped_early"))
            if summary.get("finished_at") and row["score"] == row["score"]:
                done.append({**row, "finished_at": summary["finished_at"]})
    done.sort(key=lambda r: r["finished_at"])
    best, anytime = -1.0, []
    for r in done:
        best = max(best, float(r["score"]))
        anytime.append([round(float(r["finished_at"]) - start, 1), round(best, 4)])
    return {
        "dataset": dataset,
        "limit": limit,
        "variant": variant,
        "seed": seed,
        "test_accuracy": round(test, 4),
        "test_ece": round(ece, 4),
        "calibration": chosen,
        "ensemble": list(clf.ensemble_trial_ids_),
        "best_val": round(best, 4),
        "fit_seconds": round(seconds, 1),
        "trials": len(done),
        "stopped_early": stopped,
        "params": [int(r["params"]) for r in done],
        "anytime": anytime,
        "curves": curves,
    }


def calibration_error(probabilities, labels, bins: int = 15) -> float:
    """Expected calibration error: over 15 equal-width confidence bins, the gap between
    accuracy and mean confidence, weighted by the bin's share of the rows."""
    probabilities = np.asarray(probabilities, dtype="float64")
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == np.asarray(labels).ravel()
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = [
        abs(right[which == b].mean() - confidence[which == b].mean()) * np.mean(which == b)
        for b in range(bins)
        if np.any(which == b)
    ]
    return float(np.sum(gaps))


# ---------------------------------------------------------------------- table
def replay_rules(runs: list[dict]) -> dict:
    """Each stopping rule replayed on the curves of the runs that stopped no trial."""
    from automl.search.stopping import make_rule, replay

    out = {}
    full = [r for r in runs if VARIANTS[r["variant"]].trial_stopping is None]
    for name in ("curve", "median", "halving"):
        totals = {
            "epochs": 0,
            "epochs_full": 0,
            "stopped": 0,
            "trials": 0,
            "best_lost": 0,
            "regret": 0.0,
            "searches": 0,
        }
        for run in full:
            curves = [run["curves"][k] for k in sorted(run["curves"], key=int)]
            if len(curves) < 2:
                continue
            result = replay(curves, make_rule(name), "max")
            totals["epochs"] += result["epochs"]
            totals["epochs_full"] += result["epochs_full"]
            totals["stopped"] += result["stopped"]
            totals["trials"] += len(curves)
            totals["best_lost"] += result["regret"] > 1e-9
            totals["regret"] = round(totals["regret"] + result["regret"], 4)
            totals["searches"] += 1
        if totals["epochs_full"]:
            totals["epochs_saved"] = round(1 - totals["epochs"] / totals["epochs_full"], 3)
        out[name] = totals
    return out


def summarise(runs: list[dict]) -> list[dict]:
    """Mean and spread per (dataset, limit, variant)."""
    from automl.estimators.options import parse_time_limit

    groups: dict[tuple, list] = {}
    order = list(VARIANTS)
    for run in sorted(
        runs, key=lambda r: (r["dataset"], parse_time_limit(r["limit"]), order.index(r["variant"]))
    ):
        groups.setdefault((run["dataset"], run["limit"], run["variant"]), []).append(run)
    rows = []
    for (dataset, limit, variant), group in groups.items():
        test = [r["test_accuracy"] for r in group]
        rows.append(
            {
                "dataset": dataset,
                "limit": limit,
                "variant": variant,
                "library": ", ".join(sorted({r["library"] for r in group})),
                "seeds": sorted(r["seed"] for r in group),
                "test_mean": round(float(np.mean(test)), 4),
                "test_min": round(float(np.min(test)), 4),
                "test_std": round(float(np.std(test)), 4),
                "test_ece_mean": mean_of(group, "test_ece"),
                "best_val_mean": round(float(np.mean([r["best_val"] for r in group])), 4),
                "fit_seconds_mean": round(float(np.mean([r["fit_seconds"] for r in group])), 1),
                "trials_mean": round(float(np.mean([r["trials"] for r in group])), 1),
                "stopped_mean": round(float(np.mean([r["stopped_early"] for r in group])), 1),
                "median_params": int(np.median([p for r in group for p in r["params"]])),
            }
        )
    return rows


def mean_of(group: list[dict], key: str) -> float | None:
    """The mean of `key` over the runs that recorded it (None when none did)."""
    values = [r[key] for r in group if r.get(key) is not None]
    return round(float(np.mean(values)), 4) if values else None


def print_table(rows: list[dict]) -> None:
    head = (
        "dataset",
        "limit",
        "variant",
        "seeds",
        "test mean",
        "test min",
        "test std",
        "test ECE",
        "best val",
        "fit s",
        "trials",
        "stopped",
        "median params",
    )
    print(" | ".join(head))
    for r in rows:
        print(
            " | ".join(
                str(v)
                for v in (
                    r["dataset"],
                    r["limit"],
                    r["variant"],
                    len(r["seeds"]),
                    f"{r['test_mean']:.4f}",
                    f"{r['test_min']:.4f}",
                    f"{r['test_std']:.4f}",
                    "-" if r["test_ece_mean"] is None else f"{r['test_ece_mean']:.4f}",
                    f"{r['best_val_mean']:.4f}",
                    r["fit_seconds_mean"],
                    r["trials_mean"],
                    r["stopped_mean"],
                    f"{r['median_params']:,}",
                )
            )
        )


# ---------------------------------------------------------------------- main
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits, 30 s, before/after, 1 seed")
    parser.add_argument("--json", help="write (and resume) the results here")
    parser.add_argument("--plan", choices=sorted(PLANS), default="full")
    parser.add_argument("--datasets", nargs="+", help="only these datasets of the plan")
    parser.add_argument("--limits", nargs="+", help="only these time limits of the plan")
    parser.add_argument("--variants", nargs="+", help="only these variants of the plan")
    parser.add_argument("--seeds", nargs="+", type=int, help="only these seeds of the plan")
    parser.add_argument(
        "--library",
        help="a checkout of an older commit: the 'previous' variant runs with its automl",
    )
    parser.add_argument(
        "--one", nargs=4, metavar=("DATASET", "LIMIT", "VARIANT", "SEED"), help=argparse.SUPPRESS
    )  # a child process: one run, JSON on stdout
    args = parser.parse_args(argv)
    if args.one:
        dataset, limit, variant, seed = args.one
        print("RESULT " + json.dumps(run_one(dataset, limit, variant, int(seed))))
        return
    plan = PLANS["quick" if args.quick else args.plan]
    runs = []
    if args.json and os.path.exists(args.json):
        with open(args.json) as f:
            runs = json.load(f).get("runs", [])
    done = {(r["dataset"], r["limit"], r["variant"], r["seed"]) for r in runs}
    todo = [
        (d, lim, v, s)
        for d, lim, variants, seeds in plan
        for v in variants
        for s in seeds
        if (not args.datasets or d in args.datasets)
        and (not args.limits or lim in args.limits)
        and (not args.variants or v in args.variants)
        and (not args.seeds or s in args.seeds)
    ]
    library = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    for key in todo:
        if key in done:
            continue
        env, commit = dict(os.environ), library.stdout.strip()
        if key[2] == "previous":
            if not args.library:
                print(f"run {key} skipped: the 'previous' variant needs --library", file=sys.stderr)
                continue
            env["PYTHONPATH"] = os.path.abspath(args.library)
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                cwd=args.library,
            ).stdout.strip()
        started = time.time()
        proc = subprocess.run(
            [sys.executable, __file__, "--one", *map(str, key)],
            capture_output=True,
            text=True,
            env=env,
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"run {key} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            continue
        runs.append({**json.loads(line[len("RESULT ") :]), "library": commit})
        r = runs[-1]
        print(
            f"{key}: test {r['test_accuracy']:.4f}, best val {r['best_val']:.4f}, "
            f"{r['trials']} trials ({r['stopped_early']} stopped), "
            f"{time.time() - started:.0f} s",
            flush=True,
        )
        if args.json:
            write(args.json, results(runs))
    result = results(runs)
    print_table(result["summary"])
    for name, totals in result["stopping_replay"].items():
        print(f"replay {name}: {totals}")


def results(runs: list[dict]) -> dict:
    """What the JSON holds: the settings, the summary table, the stopping replay, the runs."""
    return {
        "settings": {
            "variants": switches(),
            "digits28": "4,000 train / 1,000 test, seed 0",
            "estimator": "ImageClassifier(time_limit=LIMIT, seed=SEED), otherwise the defaults",
        },
        "summary": summarise(runs),
        "stopping_replay": replay_rules(runs),
        "runs": runs,
    }


def write(path: str, result: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
