"""A project folder's guards: the lock, the data fingerprint, weights checksums."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from automl.errors import DamagedFileError, InputError
from automl.project.files import check_file, checksum, hash_arrays, read_json
from automl.project.folder import Project
from automl.project.layout import LOCK_FILE, MARKER_FILE


def _write_lock(project: Project, pid: int, host: str | None = None) -> None:
    os.makedirs(project.path, exist_ok=True)
    with open(project.file(LOCK_FILE), "w") as f:
        json.dump({"pid": pid, "host": host or socket.gethostname(), "since": 0}, f)


def test_a_project_held_by_a_live_process_is_refused_and_overwrite_too(tmp_path, lock_holder):
    project = Project(tmp_path, "p")
    holder = lock_holder(tmp_path, "p")
    with pytest.raises(InputError, match=f"in use by process {holder.pid} "):
        project.lock()
    with pytest.raises(InputError, match="in use by process"):
        Project(tmp_path, "p", overwrite=True).lock()
    assert read_json(project.file(LOCK_FILE))["pid"] == holder.pid  # left alone


def test_a_lock_left_by_a_killed_process_is_taken_over_and_released(tmp_path, lock_holder):
    project = Project(tmp_path, "p")
    holder = lock_holder(tmp_path, "p")
    holder.kill()  # SIGKILL: no cleanup, the file stays behind
    holder.wait()
    assert read_json(project.file(LOCK_FILE))["pid"] == holder.pid
    project.lock()
    assert read_json(project.file(LOCK_FILE))["pid"] == os.getpid()
    with pytest.raises(InputError, match=f"in use by process {os.getpid()} "):
        Project(tmp_path, "p").lock()  # held: even another fit in this process is refused
    project.unlock()
    assert not os.path.exists(project.file(LOCK_FILE))
    Project(tmp_path, "p").lock()  # free again


def test_without_flock_a_lock_from_another_host_is_refused_unless_broken(tmp_path, monkeypatch):
    import fcntl

    def no_flock(fd, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    project = Project(tmp_path, "p")
    _write_lock(project, 12345, host="another-machine")
    with pytest.raises(InputError, match="'another-machine'.*break_lock=True.*--break-lock"):
        project.lock()
    broken = Project(tmp_path, "p", break_lock=True)
    broken.lock()
    assert read_json(project.file(LOCK_FILE))["pid"] == os.getpid()
    broken.unlock()


def test_overwrite_keeps_the_lock_and_clears_the_rest(tmp_path):
    project = Project(tmp_path, "p", overwrite=True)
    project.lock()
    os.makedirs(project.file("trial_0"))
    project.start({"task": "x"}, clear=True)
    assert sorted(os.listdir(project.path)) == sorted([LOCK_FILE, MARKER_FILE, "automl_task.json"])


def test_the_fingerprint_changes_with_the_data_and_not_without():
    x = np.arange(24.0).reshape(6, 4)
    y = np.array(list("abcabc"), dtype=object)
    base = hash_arrays(x, y, None)
    assert hash_arrays(x.copy(), y.copy(), None) == base
    changed = x.copy()
    changed[5, 3] += 1e-9
    assert hash_arrays(changed, y, None) != base
    assert hash_arrays(x, np.array(list("abcabd"), dtype=object), None) != base
    assert hash_arrays(x.reshape(6, 2, 2), y, None) != base  # same bytes, other shape
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["u", "v"]})
    assert hash_arrays(frame) == hash_arrays(frame.copy())
    assert hash_arrays(frame) != hash_arrays(frame.rename(columns={"b": "c"}))
    assert hash_arrays(frame) != hash_arrays(frame.assign(b=["u", "w"]))


def test_a_weights_file_is_checked_against_its_checksum(tmp_path):
    path = tmp_path / "model.weights.h5"
    path.write_bytes(bytes(range(256)) * 10)
    digest = checksum(str(path))
    check_file(str(path), digest)  # intact
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError, match="does not match the checksum"):
        check_file(str(path), digest)
    os.remove(path)
    with pytest.raises(DamagedFileError, match="is missing"):
        check_file(str(path), digest)


def test_fit_on_other_data_of_the_same_shape_refuses_the_old_search(tmp_path):
    import automl

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 16, size=(24, 8, 8)), np.arange(24) % 3
    settings = {
        "directory": tmp_path,
        "max_trials": 1,
        "epochs": 1,
        "ensemble_size": 1,
        "verbose": 0,
        "max_model_size": 20_000,
    }
    automl.ImageClassifier(**settings).fit(x, y)
    noise, letters = rng.uniform(0, 16, size=(24, 8, 8)), np.array(list("abc") * 8)
    with pytest.raises(
        InputError, match="other data \\(its fingerprint differs\\).*overwrite=True"
    ):
        automl.ImageClassifier(**settings).fit(noise, y)
    with pytest.raises(InputError, match="project_name"):
        automl.ImageClassifier(**settings).fit(x, letters)
    automl.ImageClassifier(**settings).fit(x, y)  # the same data resumes


def test_without_flock_the_holders_pid_decides(tmp_path, monkeypatch):
    import fcntl

    def no_flock(fd, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    project = Project(tmp_path, "p")
    _write_lock(project, os.getppid())  # a live process: refused
    with pytest.raises(InputError, match=f"in use by process {os.getppid()} "):
        project.lock()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_lock(project, dead.pid)  # a dead one: taken over
    project.lock()
    assert read_json(project.file(LOCK_FILE))["pid"] == os.getpid()
    project.unlock()
