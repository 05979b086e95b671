"""Trials in words and in order: the summaries a project folder keeps, and their lines.

A trained trial's `summary.json` (`automl.project.layout`) records its score, its
size, its epochs and their times; these helpers read them back for a whole project,
order trial ids by number, and write the one-line reports of a trial's end.
"""

from __future__ import annotations

from automl.project import layout
from automl.project.files import read_json


def trial_order(trial_id: str) -> tuple:
    """Sort key of trial ids by trial number ("9" before "10", whatever the zero padding)."""
    return (int(trial_id), trial_id) if trial_id.isdigit() else (float("inf"), trial_id)


def read_summaries(project_dir: str) -> list[dict]:
    """Every trial summary in a project folder, in trial order: what a worker knows of the
    trials the chief's search has finished, whichever worker trained them."""
    found = {}
    for path in layout.trial_files(project_dir, layout.SUMMARY_FILE):
        found[layout.trial_id_of(path)] = read_json(path, {})
    return [found[t] for t in sorted(found, key=trial_order)]


def trial_line(
    trial_id: str, objective: str, score: float, summary: dict, worker: bool = False
) -> str:
    """The line shown when a trial ends, e.g. "trial 3: val_accuracy=0.9861 (374,026 params,
    10 epochs, 9.1 s, grown from trial 1)"; `worker` adds which worker trained it, and
    "stopped early" follows the epochs of a trial a stopping rule ended."""
    folds = int(summary.get("folds", 0))
    cv = f", mean of {folds} folds" if folds else ""
    where = f" on {summary.get('worker', '?')}" if worker else ""
    grown = f", grown from trial {summary['parent']}" if summary.get("parent") else ""
    stopped = ", stopped early" if summary.get("stopped_early") else ""
    return (
        f"trial {trial_id}: {objective}={score:.4f}{cv} ({summary.get('params', 0):,} params, "
        f"{summary.get('epochs')} epochs{stopped}, {summary.get('seconds', 0):.1f} s{where}"
        f"{grown})"
    )


def last_line(message: str | None) -> str | None:
    """The last non-empty line of a trial's message (the error, after any traceback)."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return None
    from automl.engine.keras_tuner_api import FAILED_TRIAL_PREFIX

    return lines[-1].removeprefix(FAILED_TRIAL_PREFIX)
