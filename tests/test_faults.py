"""A search survives faults: failing trials, out of memory, damaged files, locks, kill -9.

Fast versions of the cases of `benchmarks/faults.py` (whose helpers these tests
use): 150 digits, 3 trials of 1 epoch. Most run in this process, injecting faults
by monkeypatching the engine and damaging files between two fits; one search is
killed with SIGKILL in a subprocess and resumed here (a slow test). Each result is compared
with one straight search (the `straight` fixture), which grows trial 2 from trial 0.
"""

import importlib.util
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "faults_benchmark", ROOT / "benchmarks" / "faults.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


faults = _load_benchmark()
runner = sys.modules["fault_runner"]  # the subprocess side, imported by faults.py

SETTINGS = faults.Settings(n=150, max_trials=3, epochs=1, ensemble_size=2, max_model_size=20_000)
X, Y = faults.digits(SETTINGS.n)
PROBE = runner.probe_images()


class Crash(BaseException):
    """Stands for the process dying: nothing in automl or keras-tuner catches it."""


def fit(directory, project, overwrite=False, **changes):
    settings = faults.Settings(**{**faults.asdict(SETTINGS), **changes})
    return runner.classifier(settings, str(directory), project, overwrite).fit(X, Y)


def rows(clf) -> dict:
    """search_summary() as {trial_id: row}."""
    return {r["trial_id"]: r for r in clf.search_summary().to_dict("records")}


def trial_params(trial_json: Path) -> int:
    from automl.graph.architecture import ArchitectureGraph

    state = json.loads(trial_json.read_text())
    return ArchitectureGraph.from_json(
        state["hyperparameters"]["values"]["architecture"]
    ).count_params()


def copy_project(straight, directory: Path, name: str = "straight") -> Path:
    target = directory / name
    shutil.copytree(straight["path"], target)
    return target


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted search; its folder is copied, never changed."""
    directory = tmp_path_factory.mktemp("straight")
    clf = fit(directory, "straight")
    path = directory / "straight"
    assert not (path / "automl.lock").exists()
    return {
        "path": path,
        "members": list(clf.ensemble_trial_ids_),
        "rows": rows(clf),
        "proba": clf.predict_proba(PROBE),
        "trials": faults.read_trials(str(path)),
    }


# ---------------------------------------------------------------------- failing trials
def _fail_trial(monkeypatch, number: int, error: BaseException):
    from automl.engine import tuner

    original = tuner.GraphTuner.run_trial

    def run_trial(self, trial, *args, **kwargs):
        if int(trial.trial_id) == number:
            raise error
        return original(self, trial, *args, **kwargs)

    monkeypatch.setattr(tuner.GraphTuner, "run_trial", run_trial)


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path, monkeypatch):
    _fail_trial(monkeypatch, 1, RuntimeError("injected fault in trial 1"))
    clf = fit(tmp_path, "p")
    summary = rows(clf)
    assert summary["1"]["status"] == "FAILED"
    assert "injected fault in trial 1" in summary["1"]["reason"]
    assert [summary[t]["status"] for t in ("0", "2")] == ["COMPLETED", "COMPLETED"]
    assert "1" not in clf.ensemble_trial_ids_
    on_disk = json.loads((tmp_path / "p" / "trial_1" / "trial.json").read_text())
    assert on_disk["status"] == "FAILED" and "injected fault" in on_disk["message"]
    clf.export_model().save(tmp_path / "model.keras")
    assert (tmp_path / "model.keras").stat().st_size > 0
    assert np.allclose(clf.predict_proba(PROBE).sum(axis=1), 1.0, atol=1e-4)


def test_a_search_where_no_trial_finishes_raises_search_error(tmp_path, monkeypatch):
    from automl.engine import tuner
    from automl.errors import SearchError

    def run_trial(self, trial, *args, **kwargs):
        raise RuntimeError(f"injected fault in trial {trial.trial_id}")

    monkeypatch.setattr(tuner.GraphTuner, "run_trial", run_trial)
    with pytest.raises(SearchError, match="No trial finished"):
        fit(tmp_path, "p", max_trials=2)
    assert not (tmp_path / "p" / "automl.lock").exists()


@pytest.mark.parametrize("fault", ["MemoryError", "ResourceExhaustedError", "NaN loss"])
def test_a_trial_that_fails_in_training_is_failed_and_out_of_memory_lowers_the_cap(
    tmp_path, monkeypatch, fault
):
    """Out of memory caps the model size below the failed model; a NaN loss does not."""
    import tensorflow as tf

    from automl.engine import tuner

    original_run, original_fit = tuner.GraphTuner.run_trial, tuner.fit_trial
    current = {}

    def run_trial(self, trial, *args, **kwargs):
        current["trial"] = int(trial.trial_id)
        return original_run(self, trial, *args, **kwargs)

    def fit_trial(model, train_data, *args, **kwargs):
        if current["trial"] == 1:
            if fault == "MemoryError":
                raise MemoryError("injected")
            if fault == "ResourceExhaustedError":
                raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
            train_data = train_data.map(lambda x, y: (x * float("nan"), y))  # real NaN loss
        return original_fit(model, train_data, *args, **kwargs)

    monkeypatch.setattr(tuner.GraphTuner, "run_trial", run_trial)
    monkeypatch.setattr(tuner, "fit_trial", fit_trial)
    clf = fit(tmp_path, "p")
    summary = rows(clf)
    assert summary["1"]["status"] == "FAILED"
    assert [summary[t]["status"] for t in ("0", "2")] == ["COMPLETED", "COMPLETED"]
    assert "1" not in clf.ensemble_trial_ids_
    oracle = json.loads((tmp_path / "p" / "oracle.json").read_text())
    failed_params = trial_params(tmp_path / "p" / "trial_1" / "trial.json")
    if fault == "NaN loss":
        assert "diverged" in summary["1"]["reason"]
        assert oracle["size_cap"] is None
        return
    assert "out of memory" in summary["1"]["reason"]
    assert oracle["size_cap"] is not None and oracle["size_cap"] < failed_params
    assert trial_params(tmp_path / "p" / "trial_2" / "trial.json") < oracle["size_cap"]


# ---------------------------------------------------------------------- damaged files
@pytest.mark.parametrize("name", ["trial_0/trial.json", "oracle.json", "tuner0.json"])
def test_a_damaged_json_file_is_named_by_fit_and_by_the_cli(tmp_path, straight, name, capsys):
    from automl.cli import commands as cli
    from automl.errors import InputError

    # `automl fit --npz digits150.npz` keeps its search in DIR/digits150, on x_train, y_train
    npz = tmp_path / "digits150.npz"
    np.savez(npz, x_train=X, y_train=Y, x_test=PROBE[:20], y_test=np.zeros(20, int))
    project = copy_project(straight, tmp_path, "digits150")
    path = project / name
    original = path.read_bytes()
    path.write_bytes(original[: len(original) // 2] if name != "tuner0.json" else b"\xff{garbled")
    before = tree(project)
    with pytest.raises(InputError, match="overwrite=True") as err:
        fit(tmp_path, "digits150")
    assert str(path) in str(err.value)
    code = cli.main(
        [
            "fit",
            "--npz",
            str(npz),
            "--directory",
            str(tmp_path),
            "--max-trials",
            "3",
            "--epochs",
            "1",
            "--output",
            str(tmp_path / "m.keras"),
            "--quiet",
        ]
    )
    stderr = capsys.readouterr().err
    assert code == 2
    assert (
        stderr.startswith("automl: error:") and str(path) in stderr and "overwrite=True" in stderr
    )
    assert tree(project) == before  # nothing else written, the lock released
    path.write_bytes(original)  # repaired, the search is usable again: nothing was lost
    assert fit(tmp_path, "digits150").ensemble_trial_ids_ == straight["members"]


@pytest.mark.parametrize("damage", ["truncated", "bytes flipped"])
def test_a_member_with_damaged_weights_is_failed_and_replaced(tmp_path, straight, damage):
    project = copy_project(straight, tmp_path)
    member = straight["members"][0]
    weights = project / f"trial_{member}" / "model.weights.h5"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        faults.flip_inside_array(str(weights))  # raises unless h5py still reads it
    clf = fit(tmp_path, "straight")
    summary = rows(clf)
    assert summary[member]["status"] == "FAILED"
    assert str(weights) in summary[member]["reason"]
    assert member not in clf.ensemble_trial_ids_ and clf.ensemble_trial_ids_
    for trial_id, row in straight["rows"].items():  # the others are kept as they were
        if trial_id != member:
            assert (summary[trial_id]["status"], summary[trial_id]["score"]) == (
                row["status"],
                row["score"],
            )
    assert np.isfinite(clf.predict_proba(PROBE)).all()


def test_damaged_parent_weights_fail_the_parent_and_the_child(tmp_path, straight):
    assert straight["rows"]["2"]["parent"] == "0"  # the scenario: trial 2 grows from trial 0
    fit(tmp_path, "p", max_trials=2)
    weights = tmp_path / "p" / "trial_0" / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    clf = fit(tmp_path, "p")  # max_trials=3: trial 2, a child of trial 0, runs now
    summary = rows(clf)
    assert summary["0"]["status"] == "FAILED" and str(weights) in summary["0"]["reason"]
    assert summary["2"]["status"] == "FAILED" and str(weights) in summary["2"]["reason"]
    assert clf.ensemble_trial_ids_ == ["1"]


# ---------------------------------------------------------------------- locks
def _write_lock(project: Path, pid: int, host: str) -> None:
    (project / "automl.lock").write_text(
        json.dumps({"pid": pid, "host": host, "since": time.time()})
    )


def test_a_live_lock_refuses_fit_and_overwrite_and_a_dead_one_is_taken_over(
    tmp_path, straight, lock_holder
):
    from automl.errors import InputError

    project = copy_project(straight, tmp_path)
    holder = lock_holder(project.parent, project.name)
    before = tree(project)
    for overwrite in (False, True):
        with pytest.raises(InputError, match=f"in use by process {holder.pid} "):
            fit(tmp_path, "straight", overwrite=overwrite)
    assert tree(project) == before  # overwrite=True deleted nothing
    holder.kill()  # SIGKILL: its lock file stays behind, the kernel drops the lock
    holder.wait()
    clf = fit(tmp_path, "straight")
    assert clf.ensemble_trial_ids_ == straight["members"]
    assert not (project / "automl.lock").exists()
    holder = lock_holder(project.parent, project.name)
    _write_lock(project, 1, "another-host")  # its flock is held: refused, naming the option
    with pytest.raises(InputError, match="in use by process 1 on 'another-host'.*break_lock"):
        fit(tmp_path, "straight")


def test_only_one_of_two_processes_taking_over_a_stale_lock_holds_it(tmp_path):
    (result,) = faults.case_lock_race(str(tmp_path))
    assert result["verdict"] == "ok", result["observed"]


# ---------------------------------------------------------------------- kill -9
# A real process killed: slow. The crashes below (in this process) and the lock tests
# above check the same resume and lock takeover in the default suite.
@pytest.mark.slow
def test_kill_9_mid_search_then_resume_equals_a_straight_run(tmp_path, straight):
    path = tmp_path / "killed"
    run = faults.Run(SETTINGS, str(tmp_path), "killed", "killed")
    try:
        assert faults.wait_until(
            lambda: len(faults.completed(faults.read_trials(str(path)))) >= 1, run, timeout=300
        )
        time.sleep(0.5)  # inside trial 1
        assert run.alive()
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.kill()
    done = faults.completed(faults.read_trials(str(path)))
    assert 1 <= len(done) < SETTINGS.max_trials
    assert json.loads((path / "automl.lock").read_text())["pid"] == run.pid  # left behind
    clf = fit(tmp_path, "killed")  # takes the dead process's lock over
    assert not faults.lost_trials(done, faults.read_trials(str(path)))
    assert faults.completed(faults.read_trials(str(path))) == faults.completed(straight["trials"])
    assert clf.ensemble_trial_ids_ == straight["members"]
    np.testing.assert_allclose(clf.predict_proba(PROBE), straight["proba"], rtol=0, atol=1e-5)
    assert not (path / "automl.lock").exists()


@pytest.mark.parametrize(
    "point",
    [
        pytest.param("trial.json RUNNING", marks=pytest.mark.slow),
        "trial.json COMPLETED",
    ],
)
def test_dying_between_two_state_files_then_resuming_equals_a_straight_run(
    tmp_path, straight, monkeypatch, point
):
    """The process dies right after trial 1's trial.json is written, before oracle.json."""
    from automl.engine import oracle

    status = point.split()[-1]
    original = oracle.StrategyOracle.save_trial

    def save_trial(self, trial):
        original(self, trial)
        if trial.trial_id == "1" and str(trial.status) == status:
            raise Crash(point)

    monkeypatch.setattr(oracle.StrategyOracle, "save_trial", save_trial)
    with pytest.raises(Crash):
        fit(tmp_path, "p")
    monkeypatch.undo()
    clf = fit(tmp_path, "p")
    assert faults.completed(faults.read_trials(str(tmp_path / "p"))) == faults.completed(
        straight["trials"]
    )
    assert clf.ensemble_trial_ids_ == straight["members"]
    np.testing.assert_allclose(clf.predict_proba(PROBE), straight["proba"], rtol=0, atol=1e-5)


# ---------------------------------------------------------------------- the benchmark
@pytest.mark.slow  # the in-process failing-trial test above checks the same case
def test_the_benchmark_failing_trial_case_runs_in_a_subprocess(tmp_path):
    settings = faults.Settings(
        n=100, max_trials=2, epochs=1, ensemble_size=1, max_model_size=20_000
    )
    (result,) = faults.case_failing_trial(settings, str(tmp_path))
    assert result["verdict"] == "ok", result["observed"]
