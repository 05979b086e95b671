"""The names of a project folder's files, in one place.

A project folder (`directory/project_name`) holds the search's signature and lock,
keras-tuner's oracle and tuner state, the cell search's result, and one folder per
trial, `trial_<id>`:

    automl_project.json the marker: automl created this folder (`automl.project.folder`)
    automl_task.json    the search's signature (`automl.project.folder`)
    automl.lock         the lock of the process writing the project
    oracle.json         keras-tuner's oracle state (graph search)
    <tuner_id>.json     keras-tuner's tuner state (graph search)
    cell_search.json    the supernet search's result (cell search)
    trial_<id>/
        trial.json              keras-tuner's record of the trial (graph search)
        summary.json            what automl recorded of the trained trial
        model.weights.h5        its trained weights (of cross-validation fold 0)
        model.fold<f>.weights.h5  the weights of fold f >= 1
        val_predictions.npy     its model's predictions on the validation data (float32;
                                not for cross-validated trials nor a validation stream)
        message.json            a failed trial's message, left by its distributed worker

The folder and state files of keras-tuner are named by keras-tuner itself; the names
here say what it writes (`automl.engine.keras_tuner_api` gives their paths).
`written_entries` lists what of a folder automl wrote: what `overwrite=True` clears
(never the marker, the lock, or a file automl does not name).
"""

from __future__ import annotations

import glob
import os
import re

MARKER_FILE = "automl_project.json"
SIGNATURE_FILE = "automl_task.json"
LOCK_FILE = "automl.lock"
ORACLE_FILE = "oracle.json"
CELL_SEARCH_FILE = "cell_search.json"

TRIAL_PREFIX = "trial_"  # a trial's folder is TRIAL_PREFIX + its id
TRIAL_FILE = "trial.json"
SUMMARY_FILE = "summary.json"
WEIGHTS_FILE = "model.weights.h5"
VAL_PREDICTIONS_FILE = "val_predictions.npy"
MESSAGE_FILE = "message.json"
TEMP_PREFIX = ".tmp-"  # a file being written (`automl.project.files`), renamed when whole

STATE_FILES = (SIGNATURE_FILE, ORACLE_FILE, CELL_SEARCH_FILE)
# keras-tuner's tuner state files: tuner0 (one process), chief, worker-<host>-<pid>
_TUNER_FILE = re.compile(r"(tuner\d*|chief|worker-[^/]*)\.json")


def tuner_file(tuner_id: str) -> str:
    """The name of keras-tuner's state file of the tuner `tuner_id` (e.g. "tuner0.json")."""
    return f"{tuner_id}.json"


def trial_folder(trial_id) -> str:
    """The name of a trial's folder, e.g. "trial_3"."""
    return f"{TRIAL_PREFIX}{trial_id}"


def trial_path(project_dir: str, trial_id, *names: str) -> str:
    """The path of a trial's folder, or of the file `names` in it."""
    return os.path.join(project_dir, trial_folder(trial_id), *names)


def weights_file(fold: int = 0) -> str:
    """The name of a trial's weights file of cross-validation fold `fold` (0: the trial's model)."""
    return WEIGHTS_FILE if not fold else WEIGHTS_FILE.replace(".weights", f".fold{fold}.weights")


def trial_files(project_dir: str, name: str) -> list[str]:
    """The paths of the file `name` in every trial folder of a project (in no order)."""
    return glob.glob(os.path.join(project_dir, f"{TRIAL_PREFIX}*", name))


def trial_id_of(path: str) -> str:
    """The trial id of a file in a trial's folder (`trial_files`)."""
    return os.path.basename(os.path.dirname(path))[len(TRIAL_PREFIX) :]


def written_entries(project_dir: str) -> list[str]:
    """The names of the entries of a project folder that automl wrote there, sorted: its
    state files, tuner files, trial folders and temporary files; not the marker nor the
    lock, and nothing automl does not name."""
    found = []
    for entry in sorted(os.listdir(project_dir)):
        if (
            entry in STATE_FILES
            or _TUNER_FILE.fullmatch(entry)
            or entry.startswith(TEMP_PREFIX)
            or (entry.startswith(TRIAL_PREFIX) and os.path.isdir(os.path.join(project_dir, entry)))
        ):
            found.append(entry)
    return found
