"""The subprocess side of `faults.py`: one search per process, with a fault injected.

`python benchmarks/fault_runner.py SPEC.json` runs one `ImageClassifier` search as
the spec says (settings, project, the fault to inject) and writes its result JSON:
ensemble members, `predict_proba` on fixed digits, the search summary. `Run`
starts such a process; the other helpers read a project folder from outside
(trial states, the lock) while it runs.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

INJECTED = "injected fault"
PROBE = 100  # predictions are compared on the last PROBE digits
ATOL = 1e-5
RUN_TIMEOUT = 600.0  # seconds one subprocess may take before the harness gives up


class HarnessError(RuntimeError):
    """The harness itself broke (a subprocess hung or died unexpectedly)."""


@dataclass
class Settings:
    """One search's settings (the same for every case)."""

    n: int = 300
    max_trials: int = 5
    epochs: int = 2
    ensemble_size: int = 3
    max_model_size: int = 50_000
    seed: int = 0
    task: str = "image"  # or "table": a StructuredDataClassifier on the digits' 64 pixels


# ---------------------------------------------------------------------- data
def digits(n: int):
    """The first `n` digits as (n, 8, 8) float images and int labels."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x.reshape(-1, 8, 8)[:n].astype("float32"), y[:n]


def probe_images(task: str = "image"):
    """The last `PROBE` digits: fixed images (or table rows) on which predictions are compared."""
    from sklearn.datasets import load_digits

    x, _ = load_digits(return_X_y=True)
    x = x[-PROBE:].astype("float32")
    return x if task == "table" else x.reshape(-1, 8, 8)


def data(settings: Settings):
    """The training data of `settings`: digits as images, or as table rows of 64 columns
    (a table of 1,000 rows or more is scored on a validation split and refit)."""
    x, y = digits(settings.n)
    return (x.reshape(len(x), -1), y) if settings.task == "table" else (x, y)


# ---------------------------------------------------------------------- the runner
def classifier(settings: Settings, directory: str, project: str, overwrite: bool = False):
    """The `ImageClassifier` (or, for a table task, `StructuredDataClassifier`) of a case."""
    import automl

    estimator = (
        automl.StructuredDataClassifier if settings.task == "table" else automl.ImageClassifier
    )
    return estimator(
        directory=directory,
        project_name=project,
        max_trials=settings.max_trials,
        epochs=settings.epochs,
        seed=settings.seed,
        ensemble_size=settings.ensemble_size,
        max_model_size=settings.max_model_size,
        overwrite=overwrite,
        verbose=0,
        time_limit=None,
    )


def describe(clf, task: str = "image") -> dict:
    """What a finished fit is compared by: members, probe predictions, summary, sizes."""
    from automl.engine.oracle import ARCH
    from automl.graph.architecture import ArchitectureGraph

    oracle = clf.backend_.oracle
    params = {
        tid: ArchitectureGraph.from_json(t.hyperparameters.values[ARCH]).count_params()
        for tid, t in oracle.trials.items()
    }
    return {
        "ensemble_trial_ids": list(clf.ensemble_trial_ids_),
        "proba": clf.predict_proba(probe_images(task)).tolist(),
        "summary": json.loads(clf.search_summary().to_json(orient="records", double_precision=15)),
        "trial_params": params,
    }


def inject(fault: dict) -> None:
    """Monkeypatch the engine so trial number `fault["trial"]` fails.

    kind "raise": `GraphTuner.run_trial` raises RuntimeError. kind "memory": the
    trial's training (`fit_trial` as the tuner module calls it) raises MemoryError,
    inside `run_trial`, where out-of-memory is handled. kind "exit": the process dies
    at a crash point (`crash_at`). kind "signal": the process sends itself a signal
    in one stage of the fit (`signal_at`). kind "disk": the disk is full when trial
    `fault["trial"]` writes its weights (`disk_full_at`).
    """
    from automl.engine import tuner as tuner_mod

    if fault["kind"] == "signal":
        signal_at(fault["stage"], fault["signal"], fault.get("trial", 1), fault.get("member", 1))
        return
    if fault["kind"] == "disk":
        disk_full_at(fault["how"], int(fault["trial"]))
        return
    kind, target = fault["kind"], int(fault["trial"])
    original_run = tuner_mod.GraphTuner.run_trial
    original_fit = tuner_mod.fit_trial
    current = {"trial": None}

    def run_trial(self, trial, *args, **kwargs):
        current["trial"] = int(trial.trial_id)
        if kind == "raise" and current["trial"] == target:
            raise RuntimeError(f"{INJECTED}: RuntimeError in trial {trial.trial_id}")
        return original_run(self, trial, *args, **kwargs)

    def fit_trial(*args, **kwargs):
        if current["trial"] == target:
            raise MemoryError(f"{INJECTED}: out of memory in trial {target}")
        return original_fit(*args, **kwargs)

    tuner_mod.GraphTuner.run_trial = run_trial
    if kind == "memory":
        tuner_mod.fit_trial = fit_trial
    if kind == "exit":
        crash_at(fault["point"], target)


STAGES = ("trial", "refit", "ensemble")


def signal_at(stage: str, name: str, trial: int = 1, member: int = 1) -> None:
    """Make the process send itself signal `name` (SIGINT, SIGTERM, SIGKILL) in the middle
    of one stage of the fit, every time it gets there.

    "trial": after the second training batch of trial number `trial`. "refit": after the
    second batch of the refit of ensemble member number `member` (0 is the best). "ensemble":
    while the ensemble is built, after member 0's weights are copied in, before member 1's.
    SIGINT raises KeyboardInterrupt there (as Ctrl-C does); SIGTERM and SIGKILL end the
    process at once (automl sets no handler), leaving its lock behind.
    """
    import keras

    from automl.engine import final as final_mod
    from automl.engine import tuner as tuner_mod

    signum = getattr(signal, name)
    if signum == signal.SIGINT:  # as in a terminal, even when started where SIGINT is ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)

    class SignalAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                os.kill(os.getpid(), signum)

    def with_signal(options: dict) -> dict:
        return {**options, "callbacks": [*(options.get("callbacks") or []), SignalAt()]}

    if stage == "trial":
        original_run, original_fit = tuner_mod.GraphTuner.run_trial, tuner_mod.fit_trial
        current = {"trial": None}

        def run_trial(self, trial_, *args, **kwargs):
            current["trial"] = int(trial_.trial_id)
            return original_run(self, trial_, *args, **kwargs)

        def fit_trial(*args, **kwargs):
            return original_fit(
                *args, **(with_signal(kwargs) if current["trial"] == trial else kwargs)
            )

        tuner_mod.GraphTuner.run_trial = run_trial
        tuner_mod.fit_trial = fit_trial
    elif stage == "refit":
        original_refit, refits = final_mod.refit, []

        def refit(model, full, context, candidate, *args, **kwargs):
            refits.append(candidate.trial_id)
            if len(refits) - 1 != member:
                return original_refit(model, full, context, candidate, *args, **kwargs)
            options = context.fit_options
            context.fit_options = lambda *a, **k: with_signal(options(*a, **k))
            try:
                return original_refit(model, full, context, candidate, *args, **kwargs)
            finally:
                del context.fit_options  # the method again

        final_mod.refit = refit
    elif stage == "ensemble":
        original_copy = final_mod.copy_weights

        def copy_weights(model, combined, prefix: str):
            if prefix == "m1_":
                os.kill(os.getpid(), signum)
            return original_copy(model, combined, prefix)

        final_mod.copy_weights = copy_weights
    else:
        raise ValueError(f"unknown stage {stage!r}")


def disk_full_at(how: str, target: int) -> None:
    """Make the disk full when trial number `target` writes its weights.

    how "space": the free space that `shutil.disk_usage` reports is 100 KB (automl's
    check before writing refuses). how "write": half the file is written, then the write
    fails with ENOSPC, as on a disk that fills while writing.
    """
    import errno
    import shutil
    from collections import namedtuple

    from automl.engine import tuner as tuner_mod
    from automl.training import weights as weights_mod

    original_run = tuner_mod.GraphTuner.run_trial
    current = {"trial": None}

    def run_trial(self, trial, *args, **kwargs):
        current["trial"] = int(trial.trial_id)
        try:
            return original_run(self, trial, *args, **kwargs)
        finally:
            current["trial"] = None

    tuner_mod.GraphTuner.run_trial = run_trial
    if how == "space":
        usage, Usage = shutil.disk_usage, namedtuple("usage", "total used free")

        def disk_usage(path):
            real = usage(path)
            if current["trial"] != target:
                return real
            return Usage(real.total, real.total - 100_000, 100_000)

        shutil.disk_usage = disk_usage
    elif how == "write":
        original_write = weights_mod._write

        def write(fd: int, data: bytes) -> None:
            if current["trial"] != target:
                return original_write(fd, data)
            os.write(fd, data[: len(data) // 2])
            os.close(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        weights_mod._write = write
    else:
        raise ValueError(f"unknown disk fault {how!r}")


CRASH_POINTS = {
    "trial.json RUNNING": "a new trial's trial.json is written, oracle.json not yet",
    "weights": "the trial's weights file is written, its summary.json not yet",
    "summary.json": "the trial's summary.json is written, its trial.json still RUNNING",
    "trial.json COMPLETED": "the trial's trial.json says COMPLETED, oracle.json not yet",
}


def crash_at(point: str, target: int) -> None:
    """Make the process die (exit 137, no cleanup, as SIGKILL) right after a write of trial `target`.

    `point` is one of `CRASH_POINTS`.
    """
    from automl.engine import oracle as oracle_mod
    from automl.engine import tuner as tuner_mod

    def of_target(path: str) -> bool:
        folder = os.path.basename(os.path.dirname(path))
        return folder.startswith("trial_") and int(folder[len("trial_") :]) == target

    if point.startswith("trial.json"):
        status = point.split()[-1]
        original_save = oracle_mod.StrategyOracle.save_trial

        def save_trial(self, trial):
            original_save(self, trial)
            if int(trial.trial_id) == target and str(trial.status) == status:
                os._exit(137)

        oracle_mod.StrategyOracle.save_trial = save_trial
    elif point == "weights":  # the tuner hashes the weights file right after writing it
        original_checksum = tuner_mod.checksum

        def checksum(path):
            if of_target(path):
                os._exit(137)
            return original_checksum(path)

        tuner_mod.checksum = checksum
    elif point == "summary.json":
        original_write = tuner_mod.write_json

        def write_json(path, value):
            original_write(path, value)
            if of_target(path) and path.endswith("summary.json"):
                os._exit(137)

        tuner_mod.write_json = write_json
    else:
        raise ValueError(f"unknown crash point {point!r}")


def runner_main(spec_path: str) -> int:
    """Run one search as `spec_path` says; write its result JSON. Exit status as the CLI's."""
    with open(spec_path) as f:
        spec = json.load(f)
    result: dict = {"pid": os.getpid(), "ok": False}
    code = 1
    try:
        from automl.errors import AutoMLError

        settings = Settings(**spec["settings"])
        if spec.get("npz"):  # the training part of an `automl fit --npz` file
            import numpy as np

            with np.load(spec["npz"]) as arrays:
                x, y = arrays["x_train"], arrays["y_train"]
        else:
            x, y = data(settings)
        if spec.get("inject"):
            inject(spec["inject"])
        clf = classifier(settings, spec["directory"], spec["project"], spec.get("overwrite"))
        while spec.get("go_file") and not os.path.exists(spec["go_file"]):
            time.sleep(0.02)  # imported and ready: start the fit when told
        start = time.time()
        try:
            clf.fit(x, y)
        except AutoMLError as err:
            result.update(error=str(err), error_type=type(err).__name__)
            print(f"automl: error: {err}", file=sys.stderr)
            code = 2
        else:
            result.update(
                describe(clf, settings.task), ok=True, seconds=round(time.time() - start, 2)
            )
            if spec.get("export"):
                clf.export_model().save(spec["export"])
            code = 0
    except Exception as err:  # noqa: BLE001 - reported in the result
        traceback.print_exc()
        result.update(error=str(err), error_type=type(err).__name__)
    tmp = spec["out"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, spec["out"])
    return code


# ---------------------------------------------------------------------- subprocesses
class Run:
    """One runner subprocess; its spec, output and logs live in `workdir/name.*`."""

    def __init__(
        self,
        settings: Settings,
        workdir: str,
        project: str,
        name: str,
        *,
        directory: str | None = None,
        overwrite: bool = False,
        fault: dict | None = None,
        export: str | None = None,
        go_file: str | None = None,
        npz: str | None = None,
    ):
        self.name = name
        self.out = os.path.join(workdir, f"{name}.result.json")
        self.log = os.path.join(workdir, f"{name}.log")
        spec = {
            "settings": asdict(settings),
            "directory": directory or workdir,
            "project": project,
            "overwrite": overwrite,
            "inject": fault,
            "export": export,
            "go_file": go_file,
            "npz": npz,
            "out": self.out,
        }
        path = os.path.join(workdir, f"{name}.spec.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        for stale in (self.out, self.log):
            if os.path.exists(stale):
                os.remove(stale)
        self.started = time.time()
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), path],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def wait(self, timeout: float = RUN_TIMEOUT) -> tuple[int, dict, str]:
        """(exit status, result JSON or {}, log text); HarnessError if it hangs."""
        try:
            rc = self.proc.wait(timeout=max(timeout - (time.time() - self.started), 1.0))
        except subprocess.TimeoutExpired:
            self.kill()
            raise HarnessError(f"run {self.name} took more than {timeout:.0f} s") from None
        result = {}
        if os.path.exists(self.out):
            with open(self.out) as f:
                result = json.load(f)
        with open(self.log, errors="replace") as f:
            log = f.read()
        return rc, result, log


def read_trials(project_path: str) -> dict[str, dict]:
    """{trial_id: {"status", "score", "message"}} from the trial.json files on disk."""
    trials = {}
    for path in glob.glob(os.path.join(project_path, "trial_*", "trial.json")):
        trial_id = os.path.basename(os.path.dirname(path))[len("trial_") :]
        try:
            with open(path) as f:
                state = json.load(f)
            trials[state.get("trial_id", trial_id)] = {
                "status": state.get("status"),
                "score": state.get("score"),
                "message": state.get("message"),
            }
        except (OSError, ValueError):
            trials[trial_id] = {"status": "UNREADABLE", "score": None, "message": None}
    return trials


def completed(trials: dict[str, dict]) -> dict[str, float]:
    return {tid: t["score"] for tid, t in trials.items() if t["status"] == "COMPLETED"}


def lock_holder(project_path: str) -> dict | None:
    """The content of the project's automl.lock, or None (absent or being written)."""
    try:
        with open(os.path.join(project_path, "automl.lock")) as f:
            holder = json.load(f)
        return holder if isinstance(holder, dict) else None
    except (OSError, ValueError):
        return None


def lost_trials(before: dict[str, float], now: dict[str, dict]) -> list[str]:
    """Ids COMPLETED (with a score) in `before` that are not COMPLETED with that score `now`."""
    return sorted(
        tid
        for tid, score in before.items()
        if now.get(tid, {}).get("status") != "COMPLETED" or now[tid]["score"] != score
    )


def max_diff(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float("inf") if a.shape != b.shape else float(np.max(np.abs(a - b)))


def watch(run: Run, project_path: str, poll: float = 0.1) -> dict:
    """Follow a run to its end: when it held the lock, when each trial completed."""
    lock_at = unlock_at = None
    done: dict[str, float] = {}
    while True:
        alive = run.alive()
        now = time.time()
        holder = lock_holder(project_path)
        if lock_at is None and holder and holder.get("pid") == run.pid:
            lock_at = now
        if lock_at is not None and unlock_at is None and holder is None:
            unlock_at = now
        for tid in completed(read_trials(project_path)):
            done.setdefault(tid, now)
        if not alive:
            break
        if now - run.started > RUN_TIMEOUT:
            run.kill()
            raise HarnessError(f"run {run.name} took more than {RUN_TIMEOUT:.0f} s")
        time.sleep(poll)
    rc, result, log = run.wait()
    if lock_at is None:
        raise HarnessError(f"run {run.name} never held the lock (exit {rc}):\n{log[-2000:]}")
    end = unlock_at if unlock_at is not None else time.time()
    return {
        "rc": rc,
        "result": result,
        "log": log,
        "lock_at": lock_at,
        "end": end,
        "completions": sorted(t - lock_at for t in done.values()),
    }


def wait_until(
    predicate, run: Run, poll: float = 0.05, timeout: float = RUN_TIMEOUT
) -> float | None:
    """Poll `predicate` until true (returns the time) or the run exits (returns None)."""
    while True:
        if predicate():
            return time.time()
        if not run.alive():
            return None
        if time.time() - run.started > timeout:
            raise HarnessError(f"run {run.name} took more than {timeout:.0f} s")
        time.sleep(poll)


if __name__ == "__main__":
    sys.exit(runner_main(sys.argv[1]))
