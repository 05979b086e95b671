"""Cases 7 and 8 of `faults.py`: kills in each stage of a fit, and a full disk.

7. kill in each stage: a table search (1,000 digits as rows of 64 pixels, so trials are
   scored on a validation split and the members are refit; its members have dropout
   layers) is killed in one stage of the fit, by SIGINT, SIGTERM or SIGKILL
   (`fault_runner.signal_at`): in trial 1's training, in the refit of member 1, or
   while the ensemble is built. The resume is killed again at the same place, and the
   next resume runs to the end: its members, its trial scores and its predictions
   must equal the straight run's, bit for bit. A refit or ensemble case starts from a
   copy of the straight run's finished search (what is on disk when a straight run
   gets there). After SIGTERM in the refit, the fit is run again 3 more times
   (the issue's probe: every one of them must give the same predictions).
8. disk full: trial 1 finds the disk full when it writes its weights, either before
   writing (the free space automl checks first is 100 KB) or while writing (half the
   file is written, then ENOSPC), simulated in the runner (`fault_runner.disk_full_at`);
   and, when this process may mount one (root), on a real 1.6 MB tmpfs. The fit must
   fail with a SearchError naming the file and saying how to resume, trial 1 FAILED
   with "disk full at PATH (needs about N MB)", no partial or temporary weights file,
   no crash (a segmentation fault is exit -11); after room is made, the same fit
   resumes and finishes without losing a finished trial.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess

from fault_runner import (
    STAGES,
    HarnessError,
    Run,
    Settings,
    completed,
    lost_trials,
    max_diff,
    read_trials,
)

TABLE = Settings(
    task="table", n=1000, max_trials=3, epochs=1, ensemble_size=2, max_model_size=30_000
)
SIGNALS = ("SIGINT", "SIGTERM", "SIGKILL")
SIGNAL_EXIT = {"SIGINT": -2, "SIGTERM": -15, "SIGKILL": -9}
MORE_RESUMES = {("refit", "SIGTERM"): 3}  # the probe: the same fit run again
SEGFAULT = (-11, 139)


def row(case: str, expected: str, observed: str, lost: int | None, ok: bool, **details) -> dict:
    """One line of the harness's table."""
    return {
        "case": case,
        "expected": expected,
        "observed": observed,
        "finished_trials_lost": lost,
        "verdict": "ok" if ok else "defect",
        "details": details,
    }


def proba_hash(result: dict) -> str:
    return hashlib.sha256(json.dumps(result.get("proba")).encode()).hexdigest()[:12]


def straight_table(workdir: str, settings: Settings = TABLE) -> dict:
    """The straight run of the table search: its result, with its trial scores."""
    rc, result, log = Run(settings, workdir, "table", "table_straight").wait()
    if rc != 0:
        raise HarnessError(f"the straight table run failed:\n{log[-3000:]}")
    result["scores"] = completed(read_trials(os.path.join(workdir, "table")))
    return result


def killed(rc: int, log: str, name: str) -> bool:
    """Whether a run ended by signal `name` (SIGINT: KeyboardInterrupt, as Ctrl-C)."""
    return rc == SIGNAL_EXIT[name] or (name == "SIGINT" and "KeyboardInterrupt" in log)


def case_stage_kills(workdir: str, reference: dict, settings: Settings = TABLE) -> list:
    """Each stage x each signal: killed, the resume killed again, then resumed to the end."""
    rows = []
    for stage in STAGES:
        for name in SIGNALS:
            rows.append(_stage_kill(workdir, reference, settings, stage, name))
    return rows


def _stage_kill(workdir: str, reference: dict, settings: Settings, stage: str, name: str):
    project = f"{stage}_{name.lower()}"
    path = os.path.join(workdir, project)
    if stage != "trial":  # the search is finished when a straight run gets there
        shutil.copytree(os.path.join(workdir, "table"), path)
    fault = {"kind": "signal", "stage": stage, "signal": name, "trial": 1, "member": 1}
    ever: dict[str, float] = {}
    lost: set[str] = set()
    exits = []
    for attempt in ("a", "b"):
        rc, _, log = Run(settings, workdir, project, f"{project}_{attempt}", fault=fault).wait()
        exits.append((rc, killed(rc, log, name)))
        state = read_trials(path)
        lost.update(lost_trials(ever, state))
        ever.update(completed(state))
    resumes = []
    for number in range(1 + MORE_RESUMES.get((stage, name), 0)):
        rc, result, log = Run(settings, workdir, project, f"{project}_resume{number}").wait()
        resumes.append((rc, result, log))
    state = read_trials(path)
    lost.update(lost_trials(ever, state))
    ends = [
        rc == 0
        and result.get("ensemble_trial_ids") == reference["ensemble_trial_ids"]
        and max_diff(result["proba"], reference["proba"]) == 0.0
        for rc, result, _ in resumes
    ]
    hashes = [proba_hash(result) if rc == 0 else f"exit {rc}" for rc, result, _ in resumes]
    scores_equal = completed(state) == reference["scores"]
    in_trial = stage != "trial" or "1" not in ever  # the kills came before trial 1 finished
    ok = all(k for _, k in exits) and all(ends) and scores_equal and not lost and in_trial
    rc, result, log = resumes[0]
    diffs = [max_diff(r["proba"], reference["proba"]) if c == 0 else None for c, r, _ in resumes]
    observed = (
        f"exits {[rc_ for rc_, _ in exits]} ({'both' if all(k for _, k in exits) else 'NOT both'}"
        f" by {name}); {len(resumes)} resume(s): exit {[c for c, _, _ in resumes]}, members "
        f"{result.get('ensemble_trial_ids')} vs {reference['ensemble_trial_ids']}, max |dp| "
        f"{', '.join('-' if d is None else f'{d:.1e}' for d in diffs)}; predictions "
        f"{len(set(hashes))} hash(es) {sorted(set(hashes))} vs the straight run's "
        f"{proba_hash(reference)}; trial scores {'equal' if scores_equal else 'DIFFER'}"
    )
    if resumes[0][0] != 0:
        observed += f"; {result.get('error_type')}: {result.get('error') or log[-300:]}"
    more = f", then {len(resumes)} resumes" if len(resumes) > 1 else ", resumed twice"
    return row(
        f"{name} in the {stage}{more}",
        f"killed in the {stage}, the resume killed there again, then resumed: same members, "
        "trial scores and predictions (bit for bit) as the straight run",
        observed,
        len(lost),
        ok,
        exits=exits,
        hashes=hashes,
        reference_hash=proba_hash(reference),
        max_proba_diff=diffs,
    )


# ---------------------------------------------------------------------- case 8: disk full
def case_disk_full(settings: Settings, workdir: str) -> list:
    rows = [_disk_full(settings, workdir, how) for how in ("space", "write")]
    mount = os.path.join(workdir, "tmpfs")
    if _mount_tmpfs(mount, "1600k"):
        try:
            rows.append(_disk_full(settings, workdir, "tmpfs", mount))
        finally:
            subprocess.run(["umount", mount], check=False)
    else:
        print("  (a real tmpfs needs root: only the simulated disk-full cases ran)", flush=True)
    return rows


def _mount_tmpfs(path: str, size: str) -> bool:
    os.makedirs(path, exist_ok=True)
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True
    )
    return done.returncode == 0


def _disk_full(settings: Settings, workdir: str, how: str, mount: str | None = None) -> dict:
    project = f"disk_{how}"
    directory = mount or workdir
    path = os.path.join(directory, project)
    if how == "tmpfs":  # enough trials to fill it
        settings = Settings(**{**settings.__dict__, "max_trials": 5})
        fault = None
    else:
        fault = {"kind": "disk", "how": how, "trial": 1}
    rc, result, log = Run(
        settings, workdir, project, f"{project}_a", directory=directory, fault=fault
    ).wait()
    before = read_trials(path)
    failed = {tid: t for tid, t in before.items() if "disk full at" in str(t.get("message") or "")}
    tid, trial = next(iter(sorted(failed.items())), (None, {}))
    message = result.get("error") or ""
    weights = os.path.join(path, f"trial_{tid}", "model.weights.h5")
    leftovers = glob.glob(os.path.join(path, "**", ".tmp-*"), recursive=True)
    stopped = (
        rc == 2
        and result.get("error_type") == "SearchError"
        and "disk full at" in message
        and "needs about" in message
        and "overwrite=False" in message
    )
    named = tid is not None and weights in str(trial.get("message"))
    clean = tid is not None and not os.path.exists(weights) and not leftovers
    if how == "tmpfs":
        subprocess.run(["mount", "-o", "remount,size=64m", mount], check=False)
    rc2, resumed, log2 = Run(settings, workdir, project, f"{project}_b", directory=directory).wait()
    after = read_trials(path)
    lost = lost_trials(completed(before), after)
    finished = rc2 == 0 and len(after) == settings.max_trials
    still_failed = tid is not None and after.get(tid, {}).get("status") == "FAILED"
    ok = stopped and named and clean and finished and still_failed and not lost
    ok = ok and rc not in SEGFAULT and rc2 not in SEGFAULT
    label = {
        "space": "disk full: no room before writing (simulated)",
        "write": "disk full: the write fails (simulated ENOSPC)",
        "tmpfs": "disk full: a real 1.6 MB tmpfs",
    }[how]
    observed = (
        f"exit {rc}{' (SEGFAULT)' if rc in SEGFAULT else ''}: {result.get('error_type')} "
        f"{message[:200]!r}; trial {tid} {trial.get('status')} "
        f"({'file named' if named else 'file NOT named'}); partial or temporary files: "
        f"{'none' if clean else [weights] * os.path.exists(weights) + leftovers}; after making "
        f"room the same fit: exit {rc2}, {len(completed(after))}/{settings.max_trials} "
        f"COMPLETED, trial {tid} {after.get(tid, {}).get('status')}"
    )
    if rc2 != 0:
        observed += f"; {resumed.get('error_type')}: {resumed.get('error') or log2[-300:]}"
    return row(
        label,
        "SearchError: 'disk full at PATH (needs about N MB)' and how to resume; the trial "
        "FAILED, no partial file, no crash; the resumed fit finishes",
        observed,
        len(lost),
        ok,
        message=message,
        trial_message=trial.get("message"),
    )
