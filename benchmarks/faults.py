"""Fault injection: does a search survive kill -9, failing trials, damaged files, two processes?

Each search runs in its own subprocess (`fault_runner.py SPEC.json`, beside this script), an
`ImageClassifier` on the first N images of scikit-learn's digits (8x8, no download),
and writes its result (ensemble members, `predict_proba` on 100 fixed digits, the
search summary) as JSON. The cases:

1. kill -9 x K: a reference run, then a run on another project killed with SIGKILL
   at K moments drawn from a seeded generator over the reference's timeline
   (search and final model), resumed each time, then run to the end. A trial that
   was COMPLETED when a kill came and is not COMPLETED with the same score after
   the resume is a finished trial lost. The end must equal the reference (same
   ensemble members, predictions within 1e-5), and each resume must take over the
   killed process's lock.
1b. crash points: the process dies (exit 137, no cleanup) right after one file of
   trial 1 is written and before the next (`CRASH_POINTS`; 2 of them with --quick),
   then resumes: the end must equal the straight run.
2. failing trial: a RuntimeError in trial 1 is recorded as FAILED with its reason;
   the search finishes and exports a model.
3. out of memory: a MemoryError in trial 1's training: FAILED, the model-size cap in
   oracle.json drops below that trial's parameters, later trials stay under it.
4. damaged JSON: after a finished search (`automl fit --npz`), a truncated
   trial.json, a truncated oracle.json, a garbled tuner0.json: the next `automl fit`
   exits 2 with `automl: error:` naming the file.
5. damaged weights: a member's weights file truncated, or bytes flipped inside a
   weights array (still valid HDF5): the resumed fit succeeds, that trial is FAILED
   with the file named, and it is no longer a member.
6. two processes: a second search, and an `overwrite=True` one, on a project whose
   search is running: both refused ("in use by process"); the first finishes with
   all its trials, equal to the reference.
6b. stale lock race: two processes find the same stale lock; one is delayed (1.5 s)
   between finding it stale and replacing it: exactly one may hold the lock.
7. kill in each stage (trial, refit, ensemble) by SIGINT, SIGTERM and SIGKILL, the
   resume killed there again, then resumed: bit for bit the straight run (on a table
   search whose members have dropout; `fault_resume.py`).
8. disk full (simulated before and while writing; a real tmpfs when run as root): the
   trial FAILED with "disk full at PATH (needs about N MB)", no partial file, no crash,
   a SearchError that says how to resume; the resume finishes (`fault_resume.py`).

    python benchmarks/faults.py [--quick] [--json OUT] [--kills 10] [--seed 0] [--only CASE ...]

The verdict of each case is in the table and the JSON; the exit status is 0 unless
the harness itself breaks.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_resume import case_disk_full, case_stage_kills, row, straight_table  # noqa: E402
from fault_runner import (  # noqa: E402  (the subprocess side, beside this script)
    ATOL,
    CRASH_POINTS,
    INJECTED,
    PROBE,
    RUN_TIMEOUT,
    HarnessError,
    Run,
    Settings,
    completed,
    digits,
    lock_holder,
    lost_trials,
    max_diff,
    read_trials,
    wait_until,
    watch,
)

FULL = Settings()
QUICK = Settings(n=200, max_trials=3, epochs=1, ensemble_size=2, max_model_size=30_000)


def short(text, width: int = 100) -> str:
    """`text` on one line, at most `width` characters (keras-tuner's class path dropped)."""
    text = " ".join(str(text).split()).replace("keras_tuner.src.errors.FailedTrialError: ", "")
    return text if len(text) <= width else text[: width - 3] + "..."


# ---------------------------------------------------------------------- case 1: kill -9
def kill_plan(reference: dict, kills: int, rng) -> list[tuple[int, float]]:
    """K moments over the reference's timeline, as (trials completed, seconds after that).

    A moment t seconds after the reference took its lock becomes (c, d): c trials had
    completed by then, the last of them d seconds before t (or the lock, when c = 0).
    A resumed run is killed d seconds after it has c completed trials and its lock.
    """
    span = reference["end"] - reference["lock_at"]
    moments = sorted(rng.uniform(0.0, span, kills))
    plan = []
    for t in moments:
        before = [c for c in reference["completions"] if c <= t]
        plan.append((len(before), float(t - (before[-1] if before else 0.0))))
    return plan


def case_kills(settings: Settings, workdir: str, kills: int, seed: int) -> tuple[list, dict]:
    """kill -9 at `kills` random moments, resume each time; compare with a straight run."""
    import numpy as np

    ref_path = os.path.join(workdir, "reference")
    reference = watch(Run(settings, workdir, "reference", "reference"), ref_path)
    if reference["rc"] != 0:
        raise HarnessError(f"the reference run failed:\n{reference['log'][-3000:]}")
    ref = reference["result"]
    plan = kill_plan(reference, kills, np.random.default_rng(seed))

    path = os.path.join(workdir, "killed")
    ever: dict[str, float] = {}  # COMPLETED when some kill came
    lost: set[str] = set()
    landed, early, phases = 0, 0, []
    stale_locks, takeovers = 0, 0
    run, stale = None, False
    for number, (count, delay) in enumerate(plan):
        run = run or Run(settings, workdir, "killed", f"killed_{number}")
        got_lock = wait_until(lambda r=run: (lock_holder(path) or {}).get("pid") == r.pid, run)
        if got_lock is None:  # ended without taking the lock: refused, or failed
            break
        takeovers += stale
        reached = wait_until(lambda c=count: len(completed(read_trials(path))) >= c, run)
        if reached is not None:
            deadline = max(got_lock, reached) + delay
            while run.alive() and time.time() < deadline:
                time.sleep(0.02)
        if not run.alive():  # finished before this kill's moment
            if run.wait()[0] != 0:
                break
            early += 1
            run, stale = None, False
            continue
        run.kill()
        landed += 1
        phases.append(count)
        state = read_trials(path)  # nothing changes on disk after the kill
        lost.update(lost_trials(ever, state))
        ever.update(completed(state))
        stale = (lock_holder(path) or {}).get("pid") == run.pid
        stale_locks += stale
        print(
            f"  kill {number + 1}/{kills}: {delay:.1f} s after the run had {count} of "
            f"{settings.max_trials} trials finished; {len(completed(state))} COMPLETED on disk"
            f"{', lock left' if stale else ''}",
            flush=True,
        )
        run = None
    final_run = run or Run(settings, workdir, "killed", "killed_final")
    if stale and wait_until(
        lambda: (lock_holder(path) or {}).get("pid") == final_run.pid, final_run
    ):
        takeovers += 1
    rc, result, log = final_run.wait()
    state = read_trials(path)
    lost.update(lost_trials(ever, state))
    scores_equal = completed(state) == completed(read_trials(ref_path))
    same_members = rc == 0 and result.get("ensemble_trial_ids") == ref["ensemble_trial_ids"]
    diff = max_diff(result["proba"], ref["proba"]) if rc == 0 else float("inf")
    lock_left = os.path.exists(os.path.join(path, "automl.lock"))
    in_search = sum(c < settings.max_trials for c in phases)
    ok = (
        rc == 0
        and not lost
        and same_members
        and diff <= ATOL
        and scores_equal
        and takeovers == stale_locks
        and not lock_left
        and landed > 0
    )
    observed = (
        f"{landed}/{kills} kills landed ({in_search} in the search, "
        f"{landed - in_search} in the final model; {early} runs ended first); "
        f"{takeovers}/{stale_locks} stale locks taken over; members "
        f"{result.get('ensemble_trial_ids')} vs {ref['ensemble_trial_ids']}, "
        f"max |dp| {diff:.1e}; trial scores {'equal' if scores_equal else 'DIFFER'}; "
        f"lock {'LEFT' if lock_left else 'removed'} at the end"
    )
    if rc != 0:
        observed += f"; run {final_run.name} failed ({rc}): {result.get('error') or log[-300:]}"
    ref["scores"] = completed(read_trials(ref_path))
    rows = [
        row(
            f"kill -9 x {kills}",
            "no finished trial lost; resumes take over the lock; same members and "
            f"predictions (atol {ATOL:g}) as a straight run",
            observed,
            len(lost),
            ok,
            lost_trials=sorted(lost),
            plan=plan,
            kills_landed=landed,
            reference_seconds=round(reference["end"] - reference["lock_at"], 1),
            max_proba_diff=diff,
            members=result.get("ensemble_trial_ids"),
            reference_members=ref["ensemble_trial_ids"],
        )
    ]
    return rows, ref


def case_crash_points(settings: Settings, workdir: str, reference: dict, points: list[str]) -> list:
    """Die right after one file of trial 1 is written (between two writes); resume; compare."""
    rows = []
    for number, point in enumerate(points):
        project = f"crash_{number}"
        path = os.path.join(workdir, project)
        rc, _, log = Run(
            settings,
            workdir,
            project,
            f"{project}_a",
            fault={"kind": "exit", "point": point, "trial": 1},
        ).wait()
        before = read_trials(path)
        rc2, result, log2 = Run(settings, workdir, project, f"{project}_b").wait()
        state = read_trials(path)
        lost = lost_trials(completed(before), state)
        statuses = ", ".join(f"{tid} {t['status']}" for tid, t in sorted(state.items()))
        same = (
            rc2 == 0
            and result["ensemble_trial_ids"] == reference["ensemble_trial_ids"]
            and max_diff(result["proba"], reference["proba"]) <= ATOL
        )
        scores_equal = completed(state) == reference["scores"]
        ok = rc == 137 and rc2 == 0 and not lost and same and scores_equal
        observed = (
            f"died (exit {rc}) with {len(completed(before))} COMPLETED; resume "
            f"exit {rc2}; trials now: {statuses}; members "
            f"{result.get('ensemble_trial_ids')} vs {reference['ensemble_trial_ids']}, "
            f"{'same' if same else 'DIFFERENT'} predictions, trial scores "
            f"{'equal' if scores_equal else 'DIFFER'}"
        )
        if rc2 != 0:
            observed += f"; {result.get('error_type')}: {result.get('error')}"
        rows.append(
            row(
                f"crash after {point} write",
                "the resume reruns trial 1; the end equals the straight run",
                observed,
                len(lost),
                ok,
                point=CRASH_POINTS[point],
                trials=state,
            )
        )
    return rows


# ---------------------------------------------------------------------- cases 2 and 3
def injected_trial(result: dict, number: int = 1) -> tuple[list, dict, list, int]:
    """(summary, the injected trial's row, the other rows, how many others did not complete)."""
    summary = result.get("summary", [])
    rows = [r for r in summary if int(r["trial_id"]) == number]
    others = [r for r in summary if int(r["trial_id"]) != number]
    return summary, rows[0] if rows else {}, others, sum(r["status"] != "COMPLETED" for r in others)


def error_suffix(rc: int, result: dict) -> str:
    """ "; Error: message" for a run that did not exit 0."""
    return f"; {result.get('error_type')}: {result.get('error')}" if rc != 0 else ""


def case_failing_trial(settings: Settings, workdir: str) -> list:
    export = os.path.join(workdir, "failing.keras")
    run = Run(
        settings, workdir, "failing", "failing", export=export, fault={"kind": "raise", "trial": 1}
    )
    rc, result, log = run.wait()
    summary, failed, others, lost = injected_trial(result)
    exported = os.path.exists(export) and os.path.getsize(export) > 0
    ok = (
        rc == 0
        and failed.get("status") == "FAILED"
        and INJECTED in (failed.get("reason") or "")
        and len(summary) == settings.max_trials
        and lost == 0
        and exported
        and failed["trial_id"] not in result.get("ensemble_trial_ids", [])
    )
    observed = (
        f"exit {rc}; trial 1 {failed.get('status')} ({short(failed.get('reason'))!r}); "
        f"{len(others) - lost}/{len(others)} other trials COMPLETED; "
        f"members {result.get('ensemble_trial_ids')}; model exported: {exported}"
    ) + error_suffix(rc, result)
    return [
        row(
            "failing trial",
            "trial 1 FAILED with the RuntimeError as reason; the search "
            "finishes; a model is exported",
            observed,
            lost,
            ok,
        )
    ]


def case_out_of_memory(settings: Settings, workdir: str) -> list:
    run = Run(settings, workdir, "oom", "oom", fault={"kind": "memory", "trial": 1})
    rc, result, log = run.wait()
    summary, failed, others, lost = injected_trial(result)
    oracle = {}
    if os.path.exists(os.path.join(workdir, "oom", "oracle.json")):
        with open(os.path.join(workdir, "oom", "oracle.json")) as f:
            oracle = json.load(f)
    cap = oracle.get("size_cap")
    params = result.get("trial_params", {})
    failed_params = params.get(failed.get("trial_id"))
    later = {tid: p for tid, p in params.items() if int(tid) > 1}
    under = cap is not None and all(p < cap for p in later.values())
    ok = (
        rc == 0
        and failed.get("status") == "FAILED"
        and "out of memory" in (failed.get("reason") or "").lower()
        and cap is not None
        and failed_params is not None
        and cap < failed_params
        and under
        and lost == 0
        and len(summary) == settings.max_trials
    )
    observed = (
        f"exit {rc}; trial 1 {failed.get('status')} ({short(failed.get('reason'))!r}); "
        f"size_cap {cap} vs its {failed_params} params; later trials' params "
        f"{sorted(later.values())} {'under' if under else 'NOT all under'} the cap; "
        f"{len(others) - lost}/{len(others)} other trials COMPLETED"
    ) + error_suffix(rc, result)
    return [
        row(
            "out of memory",
            "trial 1 FAILED (out of memory); oracle.json size_cap below "
            "its params; later trials under the cap; the search finishes",
            observed,
            lost,
            ok,
            size_cap=cap,
            failed_params=failed_params,
            later_params=later,
        )
    ]


# ---------------------------------------------------------------------- case 4: damaged JSON
def cli(args: list[str], timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """`python -m automl.cli.commands ARGS`."""
    return subprocess.run(
        [sys.executable, "-m", "automl.cli.commands", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def snapshot(folder: str) -> dict[str, bytes]:
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


def case_damaged_json(settings: Settings, workdir: str) -> list:
    """A finished search on an .npz file; then `automl fit --npz` on damaged state files."""
    import numpy as np

    x, y = digits(settings.n)
    npz = os.path.join(workdir, "fault_digits.npz")
    cut = len(y) * 4 // 5
    np.savez(npz, x_train=x[:cut], y_train=y[:cut], x_test=x[cut:], y_test=y[cut:])
    directory = os.path.join(workdir, "cli")
    rc, result, log = Run(
        settings, workdir, "fault_digits", "json_first", directory=directory, npz=npz
    ).wait()
    if rc != 0:
        raise HarnessError(f"the search for the damaged-JSON case failed:\n{log[-3000:]}")
    args = [
        "fit",
        "--npz",
        npz,
        "--directory",
        directory,
        "--max-trials",
        str(settings.max_trials),
        "--epochs",
        str(settings.epochs),
        "--seed",
        str(settings.seed),
        "--ensemble-size",
        str(settings.ensemble_size),
        "--time-limit",
        "1h",
        "--output",
        os.path.join(workdir, "cli.keras"),
        "--quiet",
    ]
    project = os.path.join(directory, "fault_digits")
    first_trial = sorted(glob.glob(os.path.join(project, "trial_*")))[0]
    damages = [
        ("truncated trial.json", os.path.join(first_trial, "trial.json"), "truncate"),
        ("truncated oracle.json", os.path.join(project, "oracle.json"), "truncate"),
        ("garbled tuner0.json", os.path.join(project, "tuner0.json"), "garble"),
    ]
    rows = []
    for label, path, how in damages:
        before = snapshot(project)
        original = before[os.path.relpath(path, project)]
        with open(path, "wb") as f:
            f.write(original[: len(original) // 2] if how == "truncate" else b"\x00\xff{garbled")
        damaged = snapshot(project)
        proc = cli(args)
        after = snapshot(project)
        with open(path, "wb") as f:
            f.write(original)
        lines = [line for line in proc.stderr.splitlines() if line.startswith("automl: error:")]
        message = lines[-1] if lines else proc.stderr.strip()[-300:]
        untouched = after == damaged  # nothing changed, no lock left behind
        ok = (
            proc.returncode == 2
            and bool(lines)
            and path in message
            and "overwrite=True" in message
            and untouched
        )
        observed = (
            f"exit {proc.returncode}; {short(message, 160)}; "
            f"project files {'untouched' if untouched else 'CHANGED'}"
        )
        rows.append(
            row(
                f"damaged JSON: {label}",
                "automl fit exits 2 with 'automl: error:' "
                "naming the file and overwrite=True; nothing else changes",
                observed,
                0 if untouched else None,
                ok,
                message=message,
            )
        )
    return rows


# ---------------------------------------------------------------------- case 5: damaged weights
def flip_inside_array(path: str) -> str:
    """Invert 64 bytes in the middle of the largest layer's weights; the file stays valid HDF5.

    Returns a description; raises HarnessError if the file no longer reads.
    """
    import h5py
    import numpy as np

    arrays = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and name.startswith("layers/") and obj.id.get_offset():
            arrays.append((obj.nbytes, name, obj.id.get_offset()))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
        nbytes, name, offset = max(arrays)
        before = np.array(f[name])
    start = offset + nbytes // 2 - 32
    with open(path, "r+b") as f:
        f.seek(start)
        chunk = f.read(64)
        f.seek(start)
        f.write(bytes(b ^ 0xFF for b in chunk))
    with h5py.File(path, "r") as f:  # still valid HDF5, other values
        after = np.array(f[name])
    if before.shape != after.shape or np.array_equal(before, after):
        raise HarnessError(f"flipping bytes in {path} did not change {name}")
    return f"64 bytes inverted in {name!r} at offset {start}; h5py still reads it"


def case_damaged_weights(settings: Settings, workdir: str) -> list:
    base = os.path.join(workdir, "weights_a")
    rc, result, log = Run(settings, workdir, "weights", "weights_first", directory=base).wait()
    if rc != 0:
        raise HarnessError(f"the search for the damaged-weights case failed:\n{log[-3000:]}")
    member = result["ensemble_trial_ids"][0]
    second = os.path.join(workdir, "weights_b")
    shutil.copytree(base, second)
    rows = []
    for label, directory, how in (
        ("truncated", base, "truncate"),
        ("bytes flipped", second, "flip"),
    ):
        project = os.path.join(directory, "weights")
        path = os.path.join(project, f"trial_{member}", "model.weights.h5")
        if how == "truncate":
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                f.truncate(size // 2)
            done = f"cut from {size} to {size // 2} bytes"
        else:
            done = flip_inside_array(path)
        before = completed(read_trials(project))
        rc, resumed, log = Run(
            settings, workdir, "weights", f"weights_{how}", directory=directory
        ).wait()
        trial = next((r for r in resumed.get("summary", []) if r["trial_id"] == member), {})
        reason = trial.get("reason") or ""
        lost = lost_trials({k: v for k, v in before.items() if k != member}, read_trials(project))
        members = resumed.get("ensemble_trial_ids")
        ok = (
            rc == 0
            and trial.get("status") == "FAILED"
            and path in reason
            and members is not None
            and member not in members
            and not lost
        )
        observed = (
            f"{done}; exit {rc}; trial {member} {trial.get('status')} "
            f"({'file named' if path in reason else 'file NOT named'}: {short(reason, 90)!r}); "
            f"members {result['ensemble_trial_ids']} -> {members}"
        )
        observed += error_suffix(rc, resumed)
        rows.append(
            row(
                f"damaged weights: {label}",
                f"resumed fit succeeds; the member (trial "
                f"{member}) FAILED naming its file; no longer a member",
                observed,
                len(lost),
                ok,
                reason=reason,
            )
        )
    return rows


# ---------------------------------------------------------------------- case 6: two processes
def case_two_processes(settings: Settings, workdir: str, reference: dict | None) -> list:
    """A search runs; a second search and an overwrite=True one on its project are refused."""
    go = os.path.join(workdir, "shared.go")
    first = Run(settings, workdir, "shared", "shared_first")
    second = Run(settings, workdir, "shared", "shared_second", go_file=go)
    third = Run(settings, workdir, "shared", "shared_overwrite", overwrite=True, go_file=go)
    path = os.path.join(workdir, "shared")
    got = wait_until(lambda: (lock_holder(path) or {}).get("pid") == first.pid, first)
    if got is None:
        raise HarnessError(
            f"the first search ended before it took the lock:\n{first.wait()[2][-2000:]}"
        )
    with open(go, "w"):
        pass
    refusals = []
    for label, run in (("second search", second), ("overwrite=True", third)):
        rc, result, log = run.wait()
        first_alive = first.alive()
        error = result.get("error", "")
        ok = (
            rc == 2
            and "in use by process" in error
            and f"process {first.pid} " in error
            and result.get("error_type") == "InputError"
        )
        refusals.append((label, rc, error, first_alive, ok))
    rc, result, log = first.wait()
    state = read_trials(path)
    done = completed(state)
    lock_left = os.path.exists(os.path.join(path, "automl.lock"))
    same = None
    if reference is not None and rc == 0:
        same = (
            result["ensemble_trial_ids"] == reference["ensemble_trial_ids"]
            and max_diff(result["proba"], reference["proba"]) <= ATOL
        )
    lost = settings.max_trials - len(done)
    out = []
    for label, rc_other, error, first_alive, ok in refusals:
        all_ok = ok and rc == 0 and lost == 0 and not lock_left and same is not False
        observed = (
            f"exit {rc_other} ({short(error, 110)}); "
            f"first search {'still running' if first_alive else 'already ended'}; it "
            f"then exited {rc} with {len(done)}/{settings.max_trials} trials COMPLETED"
            + (
                ""
                if same is None
                else f", {'equal to' if same else 'DIFFERENT from'} the reference"
            )
            + f", lock {'LEFT' if lock_left else 'removed'}"
        )
        out.append(
            row(
                f"two processes: {label}",
                "refused with 'in use by process' (exit 2); "
                "the running search finishes with all its trials",
                observed,
                lost,
                all_ok,
                error=error,
            )
        )
    return out


LOCK_RACE = """
import json, os, sys, time
from automl.project import folder as project
directory, name, role, go, out = sys.argv[1:6]
if role == "slow":  # descheduled between reading the stale lock and taking it
    try_lock = project._try_lock
    project._try_lock = lambda fd, holder: (time.sleep(1.5), try_lock(fd, holder))[1]
folder = project.Project(directory, name)
while not os.path.exists(go):
    time.sleep(0.01)
if role == "fast":
    time.sleep(0.5)
try:
    folder.lock()
    result = {"locked": True}
except Exception as err:
    result = {"locked": False, "error": str(err)}
with open(out, "w") as f:
    json.dump(result, f)
time.sleep(3.0)  # a search would run here
folder.unlock()
"""


def case_lock_race(workdir: str) -> list:
    """Two processes take over the same stale lock; one is slow between checking and replacing."""
    path = os.path.join(workdir, "race")
    os.makedirs(path, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(os.path.join(path, "automl.lock"), "w") as f:
        json.dump({"pid": dead.pid, "host": socket.gethostname(), "since": time.time()}, f)
    go = os.path.join(workdir, "race.go")
    procs = {
        role: subprocess.Popen(
            [
                sys.executable,
                "-c",
                LOCK_RACE,
                workdir,
                "race",
                role,
                go,
                os.path.join(workdir, f"race_{role}.json"),
            ]
        )
        for role in ("slow", "fast")
    }
    time.sleep(1.0)
    with open(go, "w"):
        pass
    results = {}
    for role, proc in procs.items():
        proc.wait(timeout=120)
        with open(os.path.join(workdir, f"race_{role}.json")) as f:
            results[role] = json.load(f)
    holders = [role for role, r in results.items() if r["locked"]]
    refused = [r for r in results.values() if "in use by process" in r.get("error", "")]
    ok = len(holders) == 1 and len(refused) == 1
    observed = f"{len(holders)} of 2 processes hold the lock ({', '.join(holders) or 'none'})" + (
        f"; the other: {short(refused[0]['error'], 60)}" if refused else ""
    )
    return [
        row(
            "two processes take over one stale lock",
            "one holds the lock, the other is refused ('in use by process')",
            observed,
            None,
            ok,
            results=results,
        )
    ]


# ---------------------------------------------------------------------- cases 7 and 8
def case_each_stage(workdir: str) -> list:
    """Case 7 (`fault_resume.py`): a straight table search, then the kills in each stage."""
    return case_stage_kills(workdir, straight_table(workdir))


# ---------------------------------------------------------------------- main
CASES = (
    "kill -9",
    "crash points",
    "failing trial",
    "out of memory",
    "damaged JSON",
    "damaged weights",
    "two processes",
    "stale lock race",
    "kill in each stage",
    "disk full",
)


def print_table(rows: list[dict]) -> None:
    widths = {"case": 30, "expected": 44, "observed": 58}
    header = (
        f"{'case':<{widths['case']}}  {'expected':<{widths['expected']}}  "
        f"{'observed':<{widths['observed']}}  {'lost':>4}  verdict"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        cols = {k: textwrap.wrap(str(r[k]), widths[k]) or [""] for k in widths}
        height = max(len(c) for c in cols.values())
        for i in range(height):
            cells = [(cols[k][i] if i < len(cols[k]) else "").ljust(widths[k]) for k in widths]
            lost = r["finished_trials_lost"] if i == 0 else ""
            lost = "-" if lost is None else lost
            verdict = r["verdict"] if i == 0 else ""
            print(f"{'  '.join(cells)}  {lost!s:>4}  {verdict}".rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 kills, smaller searches (200 digits, 3 trials, 1 epoch)",
    )
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs in case 1 (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="search seed and kill-time seed")
    parser.add_argument("--keep", default=None, help="keep the project folders in this folder")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=CASES,
        default=None,
        help="run only these cases (the kill -9 case also makes the reference of others)",
    )
    args = parser.parse_args(argv)
    settings = Settings(**{**asdict(QUICK if args.quick else FULL), "seed": args.seed})
    kills = args.kills if args.kills is not None else (3 if args.quick else 10)
    start = time.time()
    workdir = args.keep or tempfile.mkdtemp(prefix="automl-faults-")
    os.makedirs(workdir, exist_ok=True)
    print(
        f"settings: {asdict(settings)}, kills {kills}; host {socket.gethostname()}; "
        f"folder {workdir}",
        flush=True,
    )
    rows: list[dict] = []

    def record(name: str, found: list[dict], began: float) -> None:
        for r in found:
            r["seconds"] = round(time.time() - began, 1)
        rows.extend(found)
        print(
            f"[{time.time() - start:5.0f} s] {name}: {', '.join(r['verdict'] for r in found)}",
            flush=True,
        )

    harness_errors: list[str] = []

    def attempt(name: str, case, *case_args) -> None:
        if args.only and name not in args.only:
            return
        began = time.time()
        try:
            record(name, case(*case_args), began)
        except HarnessError as err:
            harness_errors.append(f"{name}: {err}")
            print(f"[{time.time() - start:5.0f} s] {name}: HARNESS ERROR {err}", flush=True)

    try:
        reference = None
        began = time.time()
        try:
            if not args.only or {"kill -9", "crash points", "two processes"} & set(args.only):
                found, reference = case_kills(settings, workdir, kills, args.seed)
                record("kill -9", found, began)
        except HarnessError as err:
            harness_errors.append(f"kill -9: {err}")
            print(f"HARNESS ERROR in kill -9: {err}", flush=True)
        if reference is not None:
            points = (
                ["trial.json RUNNING", "trial.json COMPLETED"] if args.quick else list(CRASH_POINTS)
            )
            attempt("crash points", case_crash_points, settings, workdir, reference, points)
        attempt("failing trial", case_failing_trial, settings, workdir)
        attempt("out of memory", case_out_of_memory, settings, workdir)
        attempt("damaged JSON", case_damaged_json, settings, workdir)
        attempt("damaged weights", case_damaged_weights, settings, workdir)
        attempt("two processes", case_two_processes, settings, workdir, reference)
        attempt("stale lock race", case_lock_race, workdir)
        attempt("kill in each stage", case_each_stage, workdir)
        attempt("disk full", case_disk_full, settings, workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.time() - start
    print()
    print_table(rows)
    lost = sum(r["finished_trials_lost"] or 0 for r in rows)
    defects = sum(r["verdict"] != "ok" for r in rows)
    print(
        f"\nfinished trials lost: {lost}; defects: {defects} of {len(rows)} checks; {seconds:.0f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "finished_trials_lost": lost,
                    "defects": defects,
                    "cases": rows,
                    "settings": {
                        **asdict(settings),
                        "kills": kills,
                        "quick": args.quick,
                        "atol": ATOL,
                        "probe_images": PROBE,
                    },
                    "harness_errors": harness_errors,
                    "seconds": round(seconds, 1),
                },
                f,
                indent=2,
                default=str,
            )
    return 1 if harness_errors else 0


if __name__ == "__main__":
    sys.exit(main())
