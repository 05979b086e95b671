"""A search on a chief and workers: faster with two workers, and nothing lost when one dies.

On loopback, `ImageClassifier(strategy="random", max_trials=8, epochs=E)` on digits
(scikit-learn's 8x8 images, the `automl fit digits` split), run as a chief process
serving the search plus workers, each worker pinned to one CPU (one TensorFlow
thread). The full runs draw every architecture afresh (random sampling without
growing children), so runs 1 and 2 train the same eight; `--quick` also grows
children from trained parents, so a worker reads weights another one wrote.
Three runs:

1. one worker;
2. two workers;
3. two workers, one of which kills itself with SIGKILL in the middle of its first
   trial (after its first epoch); the chief gives that trial to the other worker
   once the dead one has been silent for `AUTOML_WORKER_TIMEOUT` (10 s here).

Reported per run: the search's wall seconds (from starting the workers, once the
chief serves, to the last trial's end), the trials
completed, how many trials ran more than once or repeat an architecture, and the
test accuracy of the chief's final model. The JSON has `wall_ratio_two_workers`
(run 2 over run 1), `duplicated_trials` (runs 1 and 2) and
`trials_lost_after_worker_kill` (run 3).

Usage:
    python benchmarks/distributed.py [--quick] [--json OUT]

`--quick` (4 trials of 1 epoch, runs 2 and 3 only) is what the test suite runs.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(address: str, chief, timeout: float = 300) -> None:
    host, port = address.rsplit(":", 1)
    end = time.time() + timeout
    while time.time() < end and chief.poll() is None:
        with socket.socket() as s:
            if s.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the chief did not start serving on {address}")


def process(args) -> None:
    """The body of one chief or worker process (run by `run()` as a subprocess)."""
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    import automl  # first: it keeps TensorFlow's start-up logs quiet
    from automl.data import datasets
    from automl.engine.settings import SearchSettings, use
    from automl.project.files import write_json

    data = datasets.load_builtin("digits")
    settings = SearchSettings()
    if args.sample_only:  # draw every architecture afresh: each run trains the same ones
        settings = SearchSettings(random_mutate_probability=0.0)
    callbacks = []
    if args.die_after_epochs:
        import keras

        class Die(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch + 1 >= args.die_after_epochs:
                    os.kill(os.getpid(), signal.SIGKILL)

        callbacks.append(Die())
    clf = automl.ImageClassifier(
        strategy="random",
        max_trials=args.trials,
        epochs=args.epochs,
        directory=args.directory,
        project_name="digits",
        verbose=0,
        ensemble_size=1,
        **{args.role: args.address},
    )
    with use(settings):
        clf.fit(data.x_train, data.y_train, callbacks=callbacks)
    if args.role == "chief":
        accuracy = clf.evaluate(data.x_test, data.y_test)["accuracy"]
        write_json(os.path.join(args.directory, "chief.json"), {"test_accuracy": accuracy})


def run(
    trials: int, epochs: int, workers: int, kill_one: bool, sample_only: bool, timeout: float = 900
) -> dict:
    """One search with a chief and `workers` workers; its row of the table."""
    from automl.project.files import read_json

    directory = tempfile.mkdtemp(prefix="automl-dist-")
    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "AUTOML_WORKER_TIMEOUT": "10",
        "AUTOML_CHIEF_TIMEOUT": "120",
        "AUTOML_TOKEN": secrets.token_urlsafe(32),  # the chief's and its workers'
    }
    base = [
        sys.executable,
        os.path.abspath(__file__),
        "--directory",
        directory,
        "--address",
        address,
        "--trials",
        str(trials),
        "--epochs",
        str(epochs),
    ]
    base += ["--sample-only"] if sample_only else []
    cpus = sorted(os.sched_getaffinity(0))
    chief = subprocess.Popen([*base, "--role", "chief"], env=env)
    wait_for_port(address, chief)  # workers start once the chief serves, as in use
    start = time.time()
    procs = []
    for i in range(workers):
        extra = ["--die-after-epochs", "1"] if kill_one and i == 0 else []
        procs.append(
            subprocess.Popen(
                [*base, "--role", "worker", "--cpu", str(cpus[i % len(cpus)]), *extra],
                env={**env, **ONE_THREAD},
            )
        )
    try:
        chief_code = chief.wait(timeout=timeout)
        worker_codes = [p.wait(timeout=60) for p in procs]
    finally:
        for p in [chief, *procs]:
            if p.poll() is None:
                p.kill()
    project = os.path.join(directory, "digits")
    by_id = {
        os.path.basename(os.path.dirname(p)).removeprefix("trial_"): read_json(p)
        for p in glob.glob(os.path.join(project, "trial_*", "summary.json"))
    }
    summaries = list(by_id.values())
    oracle = read_json(os.path.join(project, "oracle.json"))
    statuses = [
        read_json(p)["status"] for p in glob.glob(os.path.join(project, "trial_*", "trial.json"))
    ]
    keys = [s["key"] for s in summaries]
    completed = statuses.count("COMPLETED")
    chief_result = read_json(os.path.join(directory, "chief.json"), {})
    return {
        "workers": workers,
        "worker_killed": kill_one,
        "trials": trials,
        "epochs": epochs,
        "wall_seconds": round(max(s["finished_at"] for s in summaries) - start, 1),
        "completed": completed,
        "lost": trials - completed,
        "ran_more_than_once": sum(n > 1 for n in oracle["run_times"].values()),
        "repeated_architectures": len(keys) - len(set(keys)),
        "architectures": sorted(keys),
        "trial_seconds": round(sum(s["seconds"] for s in summaries), 1),
        "grown_from_another_worker": sum(
            bool(s["parent"]) and by_id[s["parent"]]["worker"] != s["worker"] for s in summaries
        ),
        "trials_per_worker": {
            w: sum(s["worker"] == w for s in summaries)
            for w in sorted({s["worker"] for s in summaries})
        },
        "chief_exit": chief_code,
        "worker_exits": worker_codes,
        "test_accuracy": round(chief_result.get("test_accuracy", float("nan")), 4),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials of 1 epoch, runs 2 and 3")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--role", choices=["chief", "worker"], help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--directory", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--die-after-epochs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--sample-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        process(args)
        return {}
    trials, epochs = (4, 1) if args.quick else (args.trials, args.epochs)
    plans = [(2, False), (2, True)] if args.quick else [(1, False), (2, False), (2, True)]
    rows = [run(trials, epochs, workers, kill, not args.quick) for workers, kill in plans]
    print(
        f"{'workers':>7} {'killed':>6} {'wall s':>7} {'done':>5} {'lost':>4} {'rerun':>5} "
        f"{'repeat':>6} {'test acc':>8}  trials per worker"
    )
    for r in rows:
        print(
            f"{r['workers']:>7} {str(r['worker_killed']):>6} {r['wall_seconds']:>7} "
            f"{r['completed']:>5} {r['lost']:>4} {r['ran_more_than_once']:>5} "
            f"{r['repeated_architectures']:>6} {r['test_accuracy']:>8}  "
            f"{r['trials_per_worker']}"
        )
    clean = [r for r in rows if not r["worker_killed"]]
    result = {
        "rows": rows,
        "duplicated_trials": sum(
            r["ran_more_than_once"] + r["repeated_architectures"] for r in clean
        ),
        "trials_lost_after_worker_kill": sum(r["lost"] for r in rows if r["worker_killed"]),
    }
    if len(clean) == 2:
        one, two = clean
        result["wall_ratio_two_workers"] = round(two["wall_seconds"] / one["wall_seconds"], 3)
        result["same_architectures"] = one["architectures"] == two["architectures"]
        result["trial_seconds_ratio"] = round(two["trial_seconds"] / one["trial_seconds"], 3)
        print(
            f"wall ratio, two workers over one: {result['wall_ratio_two_workers']} (the same "
            f"architectures: {result['same_architectures']}; summed trial seconds, two over "
            f"one: {result['trial_seconds_ratio']})"
        )
    print(
        f"duplicated trials: {result['duplicated_trials']}; trials lost after a worker was "
        f"killed: {result['trials_lost_after_worker_kill']}"
    )
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
