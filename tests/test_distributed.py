"""A search on a chief and workers: roles, the chief's handling of lost workers, errors,
and a real run on loopback with a worker killed mid-trial."""

import json
import os
import socket
import subprocess
import sys
import time

import keras_tuner
import numpy as np
import pytest

import automl
from automl.engine.distributed import Role, resolve_role
from automl.engine.keras_tuner_api import Trial, TrialStatus
from automl.engine.oracle import StrategyOracle
from automl.errors import InputError, NotFittedError, SearchError
from automl.project.files import read_json
from automl.project.folder import Project
from automl.search.base import get_strategy
from automl.search.spaces import MorphismSpace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def make_oracle(tmp_path, **kwargs) -> StrategyOracle:
    """An oracle of random architectures for 8x8 digits (no training)."""
    oracle = StrategyOracle(
        get_strategy("random"),
        MorphismSpace((8, 8, 1), 10),
        keras_tuner.Objective("val_accuracy", "max"),
        seed=7,
        **kwargs,
    )
    oracle.set_project_dir(str(tmp_path), "project")
    return oracle


def finish(oracle, trial, score=None, message=None) -> None:
    """End a trial as a worker would: COMPLETED with `score`, or FAILED with `message`."""
    if score is None:
        trial.status, trial.message = TrialStatus.FAILED, message
    else:
        oracle.update_trial(trial.trial_id, {"val_accuracy": score})
        trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTOML_TOKEN", "a-token-for-this-test-only")  # (see test_rpc_security)
    return monkeypatch


def test_role_comes_from_the_arguments_or_keras_tuners_environment(clean_env):
    assert resolve_role() == Role()
    chief = resolve_role(chief="0.0.0.0:8470")
    assert (chief.kind, chief.host, chief.port, chief.tuner_id) == (
        "chief",
        "0.0.0.0",
        8470,
        "chief",
    )
    worker = resolve_role(worker="10.0.0.5:8470")
    assert (worker.kind, worker.address) == ("worker", "10.0.0.5:8470")
    assert worker.tuner_id != resolve_role(chief="h:1").tuner_id
    clean_env.setenv("KERASTUNER_ORACLE_IP", "10.0.0.5")
    clean_env.setenv("KERASTUNER_ORACLE_PORT", "9000")
    clean_env.setenv("KERASTUNER_TUNER_ID", "tuner3")
    role = resolve_role()
    assert (role.kind, role.address, role.tuner_id) == ("worker", "10.0.0.5:9000", "tuner3")
    clean_env.setenv("KERASTUNER_TUNER_ID", "chief")
    assert resolve_role().kind == "chief"
    clean_env.delenv("KERASTUNER_ORACLE_PORT")
    with pytest.raises(InputError, match="KERASTUNER_ORACLE_PORT is not"):
        resolve_role()


@pytest.mark.parametrize("value", ["localhost", "host:", ":80", "host:99999", "host:port", 8470])
def test_a_bad_address_is_refused_before_training(clean_env, value):
    x, y = np.zeros((8, 8, 8)), np.arange(8) % 2
    with pytest.raises(InputError, match=r"worker must be 'HOST:PORT'.*Received: worker="):
        automl.ImageClassifier(worker=value).fit(x, y)


def test_chief_and_worker_together_and_cell_strategies_are_refused(clean_env):
    x, y = np.zeros((8, 8, 8)), np.arange(8) % 2
    with pytest.raises(InputError, match="the chief or a worker, not both"):
        automl.ImageClassifier(chief="h:1", worker="h:1").fit(x, y)
    with pytest.raises(InputError, match="'bayesian', 'evolution' or 'random'"):
        automl.ImageClassifier(strategy="milenas", chief="h:1").fit(x, y)


def test_an_unreachable_chief_gives_the_worker_a_clear_error_in_bounded_time(clean_env, tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    clean_env.setenv("AUTOML_CHIEF_TIMEOUT", "1")
    clf = automl.ImageClassifier(worker="127.0.0.1:9", directory=str(tmp_path), verbose=0)
    start = time.time()
    with pytest.raises(
        SearchError, match=r"Cannot reach the chief at 127\.0\.0\.1:9 \(waited 1 s\)"
    ):
        clf.fit(x[:200].reshape(-1, 8, 8), y[:200])
    assert time.time() - start < 30
    assert not os.path.exists(tmp_path / "image_classifier" / "trial_0")  # nothing trained
    with pytest.raises(NotFittedError):
        clf.predict(x[:2].reshape(-1, 8, 8))


def test_a_worker_refuses_a_folder_without_the_chiefs_search_or_with_other_data(tmp_path):
    project = Project(str(tmp_path), "p")
    with pytest.raises(InputError, match="chief's search is not in"):
        project.check_joined({"task": "ImageClassifier", "data": "abc"})
    project.start({"task": "ImageClassifier", "data": "abc"})
    project.check_joined({"task": "ImageClassifier", "data": "abc"})
    with pytest.raises(InputError, match=r"other data \(its fingerprint differs\)"):
        project.check_joined({"task": "ImageClassifier", "data": "xyz"})


def test_the_chief_gives_a_silent_workers_trial_to_the_next_worker(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=2)
    oracle.worker_timeout = 0.2
    first, second = oracle.create_trial("a"), oracle.create_trial("b")
    assert first.status == second.status == TrialStatus.RUNNING
    assert oracle.create_trial("c").status == TrialStatus.IDLE  # all given out, two running
    for _ in range(3):  # "a" keeps beating; "b" is silent
        time.sleep(0.1)
        oracle.update_trial(first.trial_id, {})
    assert oracle.reap_lost() == [("b", second.trial_id)]
    again = oracle.create_trial("c")
    assert (again.trial_id, again.status) == (second.trial_id, TrialStatus.RUNNING)
    finish(oracle, again, 0.9)
    finish(oracle, first, 0.8)
    assert oracle.search_ended()
    late = Trial(again.hyperparameters, trial_id=second.trial_id)  # "b" was only slow:
    finish(oracle, late, 0.1)  # its end (a copy, as from a worker) is not counted twice
    assert oracle.trials[second.trial_id].score == pytest.approx(0.9)
    assert oracle.create_trial("a").status == TrialStatus.STOPPED
    assert read_json(str(tmp_path / "project" / "oracle.json"))["run_times"] == {
        first.trial_id: 1,
        second.trial_id: 1,
    }


def test_a_served_search_that_keeps_failing_stops_the_workers_and_the_chief(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=9, max_consecutive_failed_trials=2)
    oracle.worker_timeout = 60
    for _ in range(2):  # the workers' end_trial calls must not raise: the chief does
        finish(oracle, oracle.create_trial("a"), message="Boom: out of luck")
    assert isinstance(oracle.failure, SearchError)
    assert "Boom: out of luck" in str(oracle.failure)
    assert oracle.search_ended()
    assert oracle.create_trial("b").status == TrialStatus.STOPPED


@pytest.mark.slow  # two runs of 4 trials on all the digits, a 10 s wait for the dead worker
def test_chief_and_two_workers_lose_nothing_when_one_is_killed_mid_trial(tmp_path):
    out = tmp_path / "distributed.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/distributed.py", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["duplicated_trials"] == 0
    assert report["trials_lost_after_worker_kill"] == 0
    clean, killed = report["rows"]
    assert clean["chief_exit"] == 0 and clean["worker_exits"] == [0, 0]
    assert len(clean["trials_per_worker"]) == 2  # both workers trained
    assert killed["chief_exit"] == 0 and killed["worker_exits"] == [-9, 0]
    assert killed["completed"] == 4 and list(killed["trials_per_worker"].values()) == [4]
    assert clean["test_accuracy"] > 0.8 and killed["test_accuracy"] > 0.8


CHIEF = """
import json, sys
import automl
from sklearn.datasets import load_digits

x, y = load_digits(return_X_y=True)
clf = automl.ImageClassifier(chief=sys.argv[2], directory=sys.argv[1], **json.loads(sys.argv[3]))
clf.fit(x[:500].reshape(-1, 8, 8), y[:500])
accuracy = clf.evaluate(x[500:1000].reshape(-1, 8, 8), y[500:1000])["accuracy"]
print(json.dumps({"members": clf.ensemble_trial_ids_, "accuracy": accuracy}))
"""


def test_a_chief_process_and_a_worker_here_run_a_search_on_loopback(clean_env, tmp_path):
    """The fast end-to-end run (the slow test above kills a worker): a chief process
    serves 2 trials, this process trains both as its worker, the chief builds the model."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    settings = {
        "max_trials": 2,
        "epochs": 2,
        "ensemble_size": 1,
        "max_model_size": 20_000,
        "project_name": "p",
        "seed": 0,
        "verbose": 0,
    }
    address = f"127.0.0.1:{free_port()}"
    clean_env.setenv("AUTOML_CHIEF_TIMEOUT", "120")  # the chief process starts meanwhile
    chief = subprocess.Popen(
        [sys.executable, "-c", CHIEF, str(tmp_path), address, json.dumps(settings)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        worker = automl.ImageClassifier(worker=address, directory=str(tmp_path), **settings)
        worker.fit(x[:500].reshape(-1, 8, 8), y[:500])
        out, err = chief.communicate(timeout=300)
    finally:
        if chief.poll() is None:
            chief.kill()
            chief.wait()
    assert chief.returncode == 0, err[-3000:]
    assert worker.trials_run_ == 2
    with pytest.raises(NotFittedError):  # the chief builds the final model, not a worker
        worker.predict(x[:2].reshape(-1, 8, 8))
    project = tmp_path / "p"
    summaries = [read_json(str(project / f"trial_{t}" / "summary.json")) for t in ("0", "1")]
    assert [s["worker"] for s in summaries] == [worker._role.tuner_id] * 2
    assert read_json(str(project / "oracle.json"))["run_times"] == {"0": 1, "1": 1}
    result = json.loads(out.strip().splitlines()[-1])
    assert result["members"] and result["members"][0] in ("0", "1")
    assert result["accuracy"] > 0.5  # 0.8 measured; chance is 0.1


def test_the_command_reports_an_unreachable_chief_in_one_line(tmp_path):
    env = {**os.environ, "AUTOML_CHIEF_TIMEOUT": "1", "AUTOML_TOKEN": "a-token-for-this-test-only"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "automl.cli.commands",
            "fit",
            "digits",
            "--worker",
            "127.0.0.1:9",
            "--directory",
            str(tmp_path),
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("automl: error: Cannot reach the chief at 127.0.0.1:9 (waited 1 s).")
    )


def test_a_chief_that_no_worker_joins_ends_at_its_time_limit(clean_env, tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    port = free_port()
    clf = automl.ImageClassifier(
        chief=f"127.0.0.1:{port}", directory=str(tmp_path), verbose=0, time_limit=3
    )
    start = time.time()
    with pytest.raises(SearchError, match="time limit ended the search before any trial"):
        clf.fit(x[:200].reshape(-1, 8, 8), y[:200])
    assert time.time() - start < 30
    with socket.socket() as s:  # the chief stopped serving
        assert s.connect_ex(("127.0.0.1", port)) != 0
