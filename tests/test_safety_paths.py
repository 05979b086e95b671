"""Nothing outside a project is touched: safe project names, automl's own folders, file
modes, stale locks of other hosts (issue 29, items 1, 6 and 7)."""

from __future__ import annotations

import json
import os
import socket
import stat

import numpy as np
import pytest

from automl.errors import InputError
from automl.project.files import read_json, write_json
from automl.project.folder import Project, name_from_path
from automl.project.layout import LOCK_FILE, MARKER_FILE, SIGNATURE_FILE


def _tree(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _write_lock(path, pid: int, host: str) -> None:
    with open(os.path.join(path, LOCK_FILE), "w") as f:  # the same file: a flock on it stays
        json.dump({"pid": pid, "host": host, "since": 0}, f)


# ---------------------------------------------------------------------- paths (rows 1, 2)
@pytest.mark.parametrize(
    "name", ["..", ".", "", "a/b", "a\\b", ".hidden", "-x", "x" * 101, "ü", 3, "ABSOLUTE"]
)
def test_an_unsafe_project_name_is_refused_before_anything_is_written(tmp_path, name):
    import automl

    (tmp_path / "keep.txt").write_text("mine")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "other_project").mkdir()
    name = str(tmp_path / "elsewhere") if name == "ABSOLUTE" else name
    before = _tree(tmp_path)
    clf = automl.StructuredDataClassifier(directory=runs, project_name=name, overwrite=True)
    with pytest.raises(InputError, match="project_name must be one folder name.*Received"):
        clf.fit(np.zeros((20, 2)), np.arange(20) % 2)
    with pytest.raises(InputError, match="project_name must be one folder name"):
        Project(runs, name, overwrite=True)
    assert _tree(tmp_path) == before


def test_overwrite_refuses_a_folder_automl_did_not_make_and_deletes_nothing(tmp_path):
    (tmp_path / "photos").mkdir()
    for i in range(7):
        (tmp_path / "photos" / f"img{i}.png").write_bytes(b"x")
    before = _tree(tmp_path)
    project = Project(tmp_path, "photos", overwrite=True)
    with pytest.raises(InputError, match=f"no {MARKER_FILE}.*holds 7 entries.*img0.png.*2 more"):
        project.lock()
    with pytest.raises(InputError, match="was not made by automl"):
        project.start({"task": "x"}, clear=True)
    assert _tree(tmp_path) == before


def test_overwrite_deletes_only_what_automl_wrote_in_its_folder(tmp_path):
    project = Project(tmp_path, "p", overwrite=True)
    project.lock()  # creates the folder, with the marker
    for name in ("trial_0/summary.json", "oracle.json", "tuner0.json", "chief.json"):
        os.makedirs(os.path.dirname(project.file(name)), exist_ok=True)
        write_json(project.file(name), {})
    (tmp_path / "p" / "notes.txt").write_text("mine")
    (tmp_path / "p" / "config.json").write_text("{}")
    project.start({"task": "x"}, clear=True)
    assert sorted(os.listdir(project.path)) == sorted(
        [LOCK_FILE, MARKER_FILE, SIGNATURE_FILE, "notes.txt", "config.json"]
    )
    project.unlock()


def test_an_older_project_with_a_signature_counts_as_automls(tmp_path):
    old = tmp_path / "old"
    (old / "trial_0").mkdir(parents=True)
    (old / SIGNATURE_FILE).write_text('{"task": "x"}')
    project = Project(tmp_path, "old", overwrite=True)
    project.lock()
    project.start({"task": "y"}, clear=True)
    assert sorted(os.listdir(old)) == sorted([LOCK_FILE, MARKER_FILE, SIGNATURE_FILE])
    project.unlock()


def test_a_project_folder_that_links_elsewhere_is_refused(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("mine")
    (tmp_path / "runs").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "runs" / "p")
    with pytest.raises(InputError, match="is a link to"):
        Project(tmp_path / "runs", "p", overwrite=True).lock()
    assert os.listdir(tmp_path / "outside") == ["keep.txt"]


def test_the_command_line_derives_a_safe_name_from_a_data_path(tmp_path, monkeypatch):
    photos = tmp_path / "my photos"
    photos.mkdir()
    monkeypatch.chdir(photos)
    assert name_from_path(".") == "my_photos"  # never "." (and the model not "..keras")
    assert name_from_path("..") == tmp_path.name.lstrip("._-")
    assert name_from_path("/") == "automl_project"
    assert name_from_path("../.train set.csv") == "train_set"
    assert name_from_path("digits") == "digits"


def test_automl_fit_image_dir_dot_gets_the_folders_name_and_break_lock(tmp_path, monkeypatch):
    import types

    import automl
    from automl.cli import commands as cli

    photos = tmp_path / "photos"
    photos.mkdir()
    monkeypatch.chdir(photos)
    data = types.SimpleNamespace(
        name=".", kind="image", task="classification", x_train=None, y_train=None
    )
    monkeypatch.setattr(cli, "_load", lambda args: data)
    seen = {}

    def fit(self, *args, **kwargs):
        seen.update(self.get_params())
        raise InputError("stopped before the search")

    monkeypatch.setattr(automl.ImageClassifier, "fit", fit)
    argv = ["fit", "--image-dir", ".", "--directory", "runs", "--overwrite", "--break-lock"]
    assert cli.main(argv) == 2
    assert seen["project_name"] == "photos" and seen["break_lock"] is True
    assert not os.path.exists(photos / "runs")


# ---------------------------------------------------------------------- modes (row 8)
def test_state_files_model_and_sidecar_are_created_with_the_umask(tmp_path):
    import keras

    from automl.data.heads import TargetEncoder
    from automl.data.preprocessing import Preprocessor
    from automl.export.keras_file import load_model, save_loaded

    x, y = np.arange(12.0).reshape(6, 2), np.array([0, 1] * 3)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    old = os.umask(0o022)
    try:
        write_json(str(tmp_path / "state.json"), {"a": 1})
        path = save_loaded(
            model,
            Preprocessor.fit_table(x),
            TargetEncoder.fit(y, "classification"),
            str(tmp_path / "m.keras"),
        )
    finally:
        os.umask(old)
    for name in ("state.json", "m.keras", "m.keras.automl.json"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
    assert load_model(path)[1] is not None


def test_an_unreadable_file_is_a_permission_error_not_a_damaged_one(tmp_path, monkeypatch):
    from automl.project import files

    path = tmp_path / "oracle.json"
    path.write_text("{}")

    def denied(name, *args, **kwargs):
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(files, "open", denied, raising=False)
    with pytest.raises(InputError, match="Permission denied reading.*chmod a\\+r") as err:
        read_json(str(path))
    assert "damaged" not in str(err.value)


# ---------------------------------------------------------------------- stale locks (row 9)
def test_a_lock_of_another_host_with_a_free_flock_is_taken_over(tmp_path):
    os.makedirs(tmp_path / "p")
    _write_lock(tmp_path / "p", 12345, "old-container")  # a container restarted, renamed
    project = Project(tmp_path, "p")
    project.lock()
    holder = read_json(project.file(LOCK_FILE))
    assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
    project.unlock()


def test_a_held_lock_of_another_host_is_refused_naming_break_lock(tmp_path, lock_holder):
    lock_holder(tmp_path, "p")
    _write_lock(tmp_path / "p", 12345, "old-container")  # its flock stays held
    with pytest.raises(
        InputError, match="process 12345 on 'old-container'.*break_lock=True.*--break-lock"
    ):
        Project(tmp_path, "p").lock()
    project = Project(tmp_path, "p", break_lock=True)
    project.lock()
    assert read_json(project.file(LOCK_FILE))["pid"] == os.getpid()
    project.unlock()
    assert not os.path.exists(project.file(LOCK_FILE))


def test_break_lock_is_an_estimator_argument_checked_and_passed_on(tmp_path, monkeypatch):
    import automl
    from automl.project import folder

    x, y = np.zeros((20, 2)), np.arange(20) % 2
    clf = automl.StructuredDataClassifier(directory=tmp_path, break_lock="yes")
    with pytest.raises(InputError, match="break_lock must be True or False"):
        clf.fit(x, y)
    seen = []

    def lock(self):
        seen.append(self.break_lock)
        raise InputError("stopped before the search")

    monkeypatch.setattr(folder.Project, "lock", lock)
    clf = automl.StructuredDataClassifier(directory=tmp_path, break_lock=True, verbose=0)
    assert clf.get_params()["break_lock"] is True
    with pytest.raises(InputError, match="stopped before the search"):
        clf.fit(x, y)
    assert seen == [True]
