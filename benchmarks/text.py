"""Text classification within a time limit: `TextClassifier` against TF-IDF + logistic regression.

For each set, time limit and seed, `TextClassifier(time_limit=T, seed=S, max_trials=100)`
is fit in a fresh process and a fresh project on the set's training texts and scored on
its test texts (accuracy of `predict`). The baseline, fit once per set (it is
deterministic), is `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)`
then `LogisticRegression(max_iter=5000, C=4.0)`. Where `autokeras` is importable,
AutoKeras's `TextClassifier(max_trials=1)` is fit once per set (seed 0) as well.

Sets (gzip CSV, columns `text,label`; not shipped with the package, see
`../shared/data/README.md`):

- `20newsgroups`: 11,293 training and 7,528 test posts, 20 classes (published
  baseline 0.8466);
- `reuters_r8`: 5,485 training and 2,189 test newswires, 8 classes (0.9635);
- `tweets`: 6,444 tweets of two 2016 candidates, split 80/20, stratified,
  `random_state=0` (0.9294).

Recorded per automl run: test accuracy, fit seconds (wall), trials (finished and in
all), the best trial's id and validation score, the ensemble's trial ids, and every
trial's layers, validation score, parameters, epochs and seconds. Per baseline: test
accuracy, fit seconds (vectoriser and model) and predict seconds. The table gives, per
set and time limit, automl's mean test accuracy over seeds with its spread, the
baseline's, their difference and the ratio of the two error rates; automl "holds" on a
set when its 5-minute mean is at least the baseline's and its 10-minute mean above it.

Runs go one at a time, each in a fresh process (a crash or a kill loses only that
run); results are appended to the JSON as they finish, a failed run is recorded with
its error, and a rerun with the same `--json` skips the runs already there (and
retries the failed ones).

Usage:
    python benchmarks/text.py [--data DIR] [--quick] [--json OUT]
        [--sets 20newsgroups reuters_r8 tweets] [--minutes 2 5 10] [--seeds 0 1 2]
        [--max-trials 100] [--baselines-only]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from automl.project.files import write_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETS = ("20newsgroups", "reuters_r8", "tweets")
PUBLISHED = {"20newsgroups": 0.8466, "reuters_r8": 0.9635, "tweets": 0.9294}
FILES = {
    "20newsgroups": ("20newsgroups_train.csv.gz", "20newsgroups_test.csv.gz"),
    "reuters_r8": ("reuters_r8_train.csv.gz", "reuters_r8_test.csv.gz"),
    "tweets": ("election_tweets_2016.csv.gz",),
}
BASELINE = (
    "TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2) + "
    "LogisticRegression(max_iter=5000, C=4.0)"
)


# ---------------------------------------------------------------------- data
def data_dir(given: str | None) -> str | None:
    """--data, else $AUTOML_TEXT_DATA, else ../shared/data/text next to the repository."""
    if given:
        return given
    if os.environ.get("AUTOML_TEXT_DATA"):
        return os.environ["AUTOML_TEXT_DATA"]
    shared = os.path.join(os.path.dirname(ROOT), "shared", "data", "text")
    return shared if os.path.isdir(shared) else None


def load(directory: str, name: str):
    """(train texts, train labels, test texts, test labels): lists of str and arrays of str."""
    import pandas as pd

    frames = [pd.read_csv(os.path.join(directory, f)) for f in FILES[name]]
    if name == "tweets":
        from sklearn.model_selection import train_test_split

        frames = train_test_split(
            frames[0], test_size=0.2, stratify=frames[0].label, random_state=0
        )
    train, test = (f.assign(text=f.text.fillna("").astype(str)) for f in frames)
    return (
        train.text.tolist(),
        train.label.astype(str).to_numpy(),
        test.text.tolist(),
        test.label.astype(str).to_numpy(),
    )


def accuracy(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_pred).astype(str).ravel() == np.asarray(y_true).ravel()))


# ---------------------------------------------------------------------- one run (a child)
def run_baseline(directory: str, name: str) -> dict:
    """TF-IDF + logistic regression on one set."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    x_train, y_train, x_test, y_test = load(directory, name)
    pipe = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(max_iter=5000, C=4.0),
    )
    start = time.perf_counter()
    pipe.fit(x_train, y_train)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    test = accuracy(y_test, pipe.predict(x_test))
    return {
        "test_accuracy": round(test, 4),
        "fit_seconds": round(fit, 1),
        "predict_seconds": round(time.perf_counter() - start, 1),
        "published": PUBLISHED[name],
        "train": len(x_train),
        "test": len(x_test),
        "classes": len(set(y_train)),
        "features": len(pipe[0].vocabulary_),
    }


def layers(architecture) -> str | None:
    """A trial's layer types in order of first use (its architecture family)."""
    try:
        nodes = architecture.to_dict()["nodes"]
    except Exception:  # a cell genotype, or a format this script does not know
        return None if architecture is None else type(architecture).__name__
    return ">".join(dict.fromkeys(str(n["type"]) for n in nodes))


def trial_table(clf) -> list[dict]:
    """One row per trial from `search_summary()`, with its layers; [] where there is none."""
    summary = getattr(clf, "search_summary", None)
    if summary is None:
        return []
    frame = summary()
    try:
        families = {c.trial_id: layers(c.architecture) for c in clf.backend_.candidates()}
    except Exception:
        families = {}
    keep = ["trial_id", "score", "ensemble", "params", "epochs", "seconds", "status", "reason"]
    rows = []
    for row in frame.to_dict("records"):
        out = {k: row.get(k) for k in keep if k in row}
        out["layers"] = families.get(row.get("trial_id"))
        for k, v in out.items():
            v = v.item() if isinstance(v, np.generic) else v
            if isinstance(v, float):
                v = None if v != v else round(v, 4)  # NaN: JSON has no such value
            out[k] = v
        rows.append(out)
    return rows


def run_automl(directory: str, name: str, minutes: float, seed: int, max_trials: int) -> dict:
    """One TextClassifier fit in a fresh project directory."""
    import automl

    x_train, y_train, x_test, y_test = load(directory, name)
    project = tempfile.mkdtemp(prefix="automl-text-")
    try:
        clf = automl.TextClassifier(
            time_limit=f"{minutes:g}m",
            seed=seed,
            directory=project,
            overwrite=True,
            verbose=0,
            max_trials=max_trials,
        )
        start = time.perf_counter()
        clf.fit(x_train, y_train)
        fit = time.perf_counter() - start
        test = accuracy(y_test, clf.predict(x_test))
        trials = trial_table(clf)
    finally:
        shutil.rmtree(project, ignore_errors=True)
    scores = {t["trial_id"]: t["score"] for t in trials if t.get("score") is not None}
    best_id = getattr(clf, "best_trial_id_", None)
    best_val = scores.get(best_id, max(scores.values(), default=None))
    ensemble = getattr(clf, "ensemble_trial_ids_", None)
    return {
        "test_accuracy": round(test, 4),
        "fit_seconds": round(fit, 1),
        "trials": len(scores),
        "trials_total": len(trials),
        "best_trial_id": best_id,
        "best_val": None if best_val is None else round(float(best_val), 4),
        "ensemble_trial_ids": None if ensemble is None else list(ensemble),
        "trial_table": trials,
    }


def run_autokeras(directory: str, name: str, seed: int) -> dict:
    """AutoKeras's TextClassifier with one trial, for reference."""
    import autokeras as ak

    x_train, y_train, x_test, y_test = load(directory, name)
    project = tempfile.mkdtemp(prefix="autokeras-text-")
    try:
        clf = ak.TextClassifier(max_trials=1, directory=project, overwrite=True, seed=seed)
        start = time.perf_counter()
        clf.fit(np.array(x_train), y_train, verbose=0)
        fit = time.perf_counter() - start
        test = accuracy(y_test, clf.predict(np.array(x_test), verbose=0))
    finally:
        shutil.rmtree(project, ignore_errors=True)
    return {"test_accuracy": round(test, 4), "fit_seconds": round(fit, 1), "seed": seed}


def child(kind: str, directory: str, name: str, minutes: str, seed: str, max_trials: int) -> dict:
    if kind == "baseline":
        return run_baseline(directory, name)
    if kind == "autokeras":
        return run_autokeras(directory, name, int(seed))
    return run_automl(directory, name, float(minutes), int(seed), max_trials)


def spawn(kind: str, args, name: str, minutes: float, seed: int, timeout: float) -> dict:
    """Run one measurement in a fresh process; its record, or {"error": ...}."""
    command = [sys.executable, os.path.abspath(__file__), "--data", args.data, "--max-trials"]
    command += [str(args.max_trials), "--one", kind, name, f"{minutes:g}", str(seed)]
    started = time.time()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"killed after {timeout:.0f} s", "wall_seconds": round(timeout, 1)}
    wall = round(time.time() - started, 1)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        error = proc.stderr.strip()[-3000:] or f"exit status {proc.returncode}"
        print(f"{kind} {name} {minutes:g}m seed {seed} failed:\n{error}", file=sys.stderr)
        return {"error": error, "wall_seconds": wall}
    return {**json.loads(line[len("RESULT ") :]), "wall_seconds": wall}


# ---------------------------------------------------------------------- table
def summarise(runs: list[dict], baselines: dict) -> list[dict]:
    """Mean and spread of the test accuracy per (set, minutes), against the baseline."""
    groups: dict[tuple, list] = {}
    for run in sorted(runs, key=lambda r: (SETS.index(r["set"]), r["minutes"], r["seed"])):
        groups.setdefault((run["set"], run["minutes"]), []).append(run)
    rows = []
    for (name, minutes), group in groups.items():
        ok = [r for r in group if "error" not in r]
        test = [r["test_accuracy"] for r in ok]
        base = baselines.get(name, {}).get("test_accuracy")
        row = {
            "set": name,
            "minutes": minutes,
            "seeds": sorted(r["seed"] for r in ok),
            "errors": len(group) - len(ok),
            "test_mean": None,
            "baseline": base,
        }
        if ok:
            mean = float(np.mean(test))
            row.update(
                test_mean=round(mean, 4),
                test_std=round(float(np.std(test)), 4),
                test_min=round(float(np.min(test)), 4),
                test_max=round(float(np.max(test)), 4),
                fit_seconds_mean=round(float(np.mean([r["fit_seconds"] for r in ok])), 1),
                trials_mean=round(float(np.mean([r["trials"] for r in ok])), 1),
            )
            if base is not None:
                row["difference"] = round(mean - base, 4)
                row["error_ratio"] = round((1 - mean) / (1 - base), 3) if base < 1 else None
        rows.append(row)
    return rows


def verdicts(summary: list[dict]) -> dict:
    """Per set: does the 5-minute mean reach the baseline and the 10-minute mean beat it?"""
    out = {}
    for name in dict.fromkeys(r["set"] for r in summary):
        means = {r["minutes"]: r["test_mean"] for r in summary if r["set"] == name}
        base = next(r["baseline"] for r in summary if r["set"] == name)
        five, ten = means.get(5), means.get(10)
        measured = None not in (base, five, ten)
        holds = (five >= base and ten > base) if measured else None
        out[name] = {"baseline": base, "mean_5m": five, "mean_10m": ten, "holds": holds}
    return out


def print_table(summary: list[dict], baselines: dict, autokeras: dict) -> None:
    print(
        "\nset | minutes | seeds | automl test mean ± std (min..max) | TF-IDF+LR | diff "
        "| error ratio | fit s | trials | errors"
    )
    for r in summary:
        if r["test_mean"] is None:
            cells = ["error", "-", "-", "-", "-", "-"]
            cells[1] = "-" if r["baseline"] is None else f"{r['baseline']:.4f}"
        else:
            cells = [
                f"{r['test_mean']:.4f} ± {r['test_std']:.4f} ({r['test_min']:.4f}..{r['test_max']:.4f})",
                "-" if r["baseline"] is None else f"{r['baseline']:.4f}",
                f"{r['difference']:+.4f}" if "difference" in r else "-",
                str(r.get("error_ratio", "-")),
                str(r["fit_seconds_mean"]),
                str(r["trials_mean"]),
            ]
        print(
            " | ".join(
                [r["set"], f"{r['minutes']:g}", str(len(r["seeds"])), *cells, str(r["errors"])]
            )
        )
    for name, b in baselines.items():
        if "error" in b:
            print(f"baseline {name}: error")
        else:
            print(
                f"baseline {name}: {b['test_accuracy']:.4f} (published {b['published']:.4f}), "
                f"fit {b['fit_seconds']} s"
            )
    for name, a in autokeras.items():
        shown = "error" if "error" in a else f"{a['test_accuracy']:.4f}, fit {a['fit_seconds']} s"
        print(f"AutoKeras TextClassifier(max_trials=1) {name}: {shown}")
    for name, v in verdicts(summary).items():
        if v["holds"] is None:
            print(f"verdict {name}: needs the 5m and 10m runs and the baseline")
            continue
        word = "holds" if v["holds"] else "LOSES"
        print(
            f"verdict {name}: {word} (5m {v['mean_5m']:.4f} >= {v['baseline']:.4f}: "
            f"{v['mean_5m'] >= v['baseline']}; 10m {v['mean_10m']:.4f} > {v['baseline']:.4f}: "
            f"{v['mean_10m'] > v['baseline']})"
        )


# ---------------------------------------------------------------------- main
def library() -> str:
    """The commit automl runs from, with "-dirty" when automl/ differs from it."""

    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)

    head = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    dirty = git("status", "--porcelain", "--", "automl").stdout.strip()
    return head + ("-dirty" if dirty else "")


def machine() -> dict:
    """The machine and the versions the numbers were measured with."""
    versions = {}
    for package in ("tensorflow", "keras", "scikit-learn", "autokeras"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    gpus = None
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
        gpus = subprocess.run(query, capture_output=True, text=True).stdout.split("\n")
        gpus = [g.strip() for g in gpus if g.strip()] or None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "gpus": gpus,
        "python": platform.python_version(),
        "versions": versions,
    }


def results(runs: list[dict], baselines: dict, autokeras: dict, lib: str) -> dict:
    summary = summarise(runs, baselines)
    return {
        "benchmark": "text",
        "settings": {
            "estimator": "TextClassifier(time_limit=f'{M}m', seed=S, max_trials=MAX_TRIALS, "
            "overwrite=True, verbose=0)",
            "baseline": BASELINE,
            "autokeras": "autokeras.TextClassifier(max_trials=1, seed=0), when importable",
            "tweets": "train_test_split(test_size=0.2, stratify=label, random_state=0)",
        },
        "machine": machine(),
        "library": lib,
        "baselines": baselines,
        "autokeras": autokeras,
        "summary": summary,
        "verdicts": verdicts(summary),
        "runs": runs,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder of the sets (default: $AUTOML_TEXT_DATA)")
    parser.add_argument("--quick", action="store_true", help="tweets, 1 minute, seed 0")
    parser.add_argument("--json", help="write (and resume) the results here")
    parser.add_argument("--sets", nargs="+", choices=SETS)
    parser.add_argument("--minutes", nargs="+", type=float, help="time limits (default 2 5 10)")
    parser.add_argument("--seeds", nargs="+", type=int, help="default 0 1 2")
    parser.add_argument("--max-trials", type=int, default=100)
    parser.add_argument("--baselines-only", action="store_true", help="skip automl and AutoKeras")
    parser.add_argument(
        "--one", nargs=4, metavar=("KIND", "SET", "MINUTES", "SEED"), help=argparse.SUPPRESS
    )  # a child process: one measurement, JSON on stdout
    args = parser.parse_args(argv)
    args.data = data_dir(args.data)
    if args.one:
        kind, name, minutes, seed = args.one
        print("RESULT " + json.dumps(child(kind, args.data, name, minutes, seed, args.max_trials)))
        return {}
    sets = args.sets or (["tweets"] if args.quick else list(SETS))
    minutes = args.minutes or ([1.0] if args.quick else [2.0, 5.0, 10.0])
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    missing = [
        f
        for name in sets
        for f in FILES[name]
        if not args.data or not os.path.exists(os.path.join(args.data, f))
    ]
    if missing:
        parser.error(
            f"the text sets are not in {args.data or '(no folder given)'}: missing "
            f"{', '.join(missing)}. They are not shipped with automl; pass --data DIR or set "
            "AUTOML_TEXT_DATA to a folder holding them (see ../shared/data/README.md)."
        )

    runs, baselines, autokeras = [], {}, {}
    if args.json and os.path.exists(args.json):
        with open(args.json) as f:
            old = json.load(f)
        runs, baselines, autokeras = old["runs"], old["baselines"], old.get("autokeras", {})
    lib = library()

    def save():
        if args.json:
            write_json(args.json, results(runs, baselines, autokeras, lib), indent=1)

    for name in sets:
        if name in baselines and "error" not in baselines[name]:
            continue
        baselines[name] = {**spawn("baseline", args, name, 0, 0, 3600), "library": lib}
        b = baselines[name]
        if "error" not in b:
            print(
                f"baseline {name}: test {b['test_accuracy']:.4f} (published "
                f"{b['published']:.4f}), fit {b['fit_seconds']} s",
                flush=True,
            )
        save()
    if args.baselines_only:
        minutes = []
    elif importlib.util.find_spec("autokeras") is not None:
        for name in sets:
            if name in autokeras and "error" not in autokeras[name]:
                continue
            autokeras[name] = {**spawn("autokeras", args, name, 0, 0, 4 * 3600), "library": lib}
            if "error" not in autokeras[name]:
                print(f"autokeras {name}: test {autokeras[name]['test_accuracy']:.4f}", flush=True)
            save()
    else:
        print("autokeras is not importable: its runs are skipped", flush=True)

    for name in sets:
        for m in minutes:
            for seed in seeds:
                key = (name, m, seed)
                same = [r for r in runs if (r["set"], r["minutes"], r["seed"]) == key]
                if any("error" not in r for r in same):
                    continue
                runs = [r for r in runs if r not in same]  # a failed run is retried
                record = spawn("automl", args, name, m, seed, 3 * 60 * m + 900)
                runs.append({"set": name, "minutes": m, "seed": seed, **record, "library": lib})
                if "error" in record:
                    last = record["error"].strip().splitlines()[-1]
                    print(f"{name} {m:g}m seed {seed}: ERROR {last}", flush=True)
                else:
                    print(
                        f"{name} {m:g}m seed {seed}: test {record['test_accuracy']:.4f}, "
                        f"best val {record['best_val']}, {record['trials']} trials, "
                        f"fit {record['fit_seconds']} s",
                        flush=True,
                    )
                save()
    result = results(runs, baselines, autokeras, lib)
    print_table(result["summary"], baselines, autokeras)
    return result


if __name__ == "__main__":
    main()
