"""A resumed fit ends bit for bit as a straight one, and a full disk stops a search cleanly.

The final-model step seeds each of its random draws by the step (building a member,
its refit, the ensemble), so what the process did before does not matter
(`automl.training.seeding`). A trial's weights are written whole or not at all,
after a check of the free space (`automl.training.weights`). The fault harness
(`benchmarks/faults.py`, cases 7 and 8) runs both end to end in subprocesses: kills
by SIGINT, SIGTERM and SIGKILL in each stage, and a full disk, simulated or real.
"""

import errno
import os
import random
import re
from collections import namedtuple
from types import SimpleNamespace

import numpy as np
import pytest

Usage = namedtuple("Usage", "total used free")


def tiny_model(dropout: float = 0.5):
    import keras

    inputs = keras.Input((6,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.Dropout(dropout)(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    return model


def files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------- disk
def test_a_disk_without_room_is_refused_before_writing_naming_the_file_and_size(
    tmp_path, monkeypatch
):
    from automl.errors import DiskFullError
    from automl.training import weights

    monkeypatch.setattr(weights.shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 50_000))
    path = tmp_path / "trial_1" / "model.weights.h5"
    with pytest.raises(DiskFullError) as err:
        weights.save_weights(tiny_model(), str(path))
    assert re.fullmatch(
        rf"disk full at {re.escape(str(path))} \(needs about [\d.]+ MB, 0\.0 MB free\)",
        str(err.value),
    )
    assert files(tmp_path) == []  # nothing written, not even a temporary file


def test_a_disk_that_fills_while_writing_leaves_no_partial_file_and_the_old_one_whole(
    tmp_path, monkeypatch
):
    from automl.errors import DiskFullError
    from automl.training import weights

    path = tmp_path / "model.weights.h5"
    model = tiny_model()
    weights.save_weights(model, str(path))
    before = path.read_bytes()

    def write(fd, data):  # half the file, then the disk is full
        os.write(fd, data[: len(data) // 2])
        os.close(fd)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(weights, "_write", write)
    model.layers[1].kernel.assign(np.zeros((6, 16), "float32"))
    with pytest.raises(DiskFullError, match=r"^disk full at .*model\.weights\.h5 \(needs about"):
        weights.save_weights(model, str(path))
    assert files(tmp_path) == ["model.weights.h5"]  # the temporary file is gone
    assert path.read_bytes() == before


def test_another_write_error_is_raised_as_it_is_and_cleaned_up(tmp_path, monkeypatch):
    from automl.training import weights

    def write(fd, data):
        os.close(fd)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(weights, "_write", write)
    with pytest.raises(PermissionError):
        weights.save_weights(tiny_model(), str(tmp_path / "model.weights.h5"))
    assert files(tmp_path) == []


def test_saved_weights_load_back_and_the_estimate_covers_the_file(tmp_path):
    from automl.training import weights
    from automl.training.fit import load_weights

    model, path = tiny_model(), tmp_path / "model.weights.h5"
    model.optimizer.build(model.trainable_variables)
    weights.save_weights(model, str(path))
    other = tiny_model()
    load_weights(other, str(path))  # its fresh optimizer is not in the file
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), other.get_weights()))
    assert path.stat().st_size <= weights.expected_bytes(model)


def test_the_search_error_says_how_to_resume():
    from automl.errors import DiskFullError, SearchError
    from automl.training.weights import disk_full, is_no_space, search_stopped

    err = disk_full("/runs/p/trial_3/model.weights.h5", 3 * 2**20)
    assert str(err) == "disk full at /runs/p/trial_3/model.weights.h5 (needs about 3 MB)"
    assert isinstance(err, DiskFullError) and is_no_space(err)
    assert is_no_space(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_no_space(PermissionError(errno.EACCES, "Permission denied"))
    stop = search_stopped(err, "/runs/p")
    assert isinstance(stop, SearchError)
    assert str(err) in str(stop) and "/runs/p" in str(stop) and "overwrite=False" in str(stop)


# ---------------------------------------------------------------------- determinism
def test_step_seeds_depend_on_the_step_alone():
    from automl.training.seeding import step_seed

    assert step_seed(0, "refit", "3") == step_seed(0, "refit", "3")
    seeds = {step_seed(s, step, m) for s in (0, 1) for step in ("member", "refit") for m in "12"}
    assert len(seeds) == 8 and all(0 <= s < 2**31 for s in seeds)


def _context(seed: int = 0):
    from automl.data.arrays import as_dataset

    return SimpleNamespace(
        seed=seed,
        head=SimpleNamespace(sign=1.0),
        log=lambda line: None,
        fit_options=lambda run, trial=True: {},
        dataset=lambda x, y, shuffle=False: as_dataset(x, y, 16, 0 if shuffle else None),
    )


def test_two_refits_of_the_same_member_from_the_same_seed_give_identical_weights():
    """Built after different draws (as a resumed process is), refit bit for bit the same."""
    from automl.engine.base import Candidate
    from automl.engine.final import refit

    rng = np.random.default_rng(0)
    full = (rng.normal(size=(64, 6)).astype("float32"), rng.integers(0, 3, 64))
    candidate = Candidate("3", 0.5, None, None, {"best_epoch": 4})  # refits 2 epochs
    start = tiny_model().get_weights()
    results, generators = [], []
    for draws in (1, 7):  # a process that ran other trials first
        random.seed(draws)
        model = tiny_model()
        model.set_weights(start)
        generators.append(model.layers[2].seed_generator.state.numpy().tolist())
        assert refit(model, full, _context(), candidate)
        results.append(model.get_weights())
    assert generators[0] != generators[1]  # the dropout seeds drawn at build time differ
    assert all(np.array_equal(a, b) for a, b in zip(*results))
    assert not all(np.array_equal(a, b) for a, b in zip(start, results[0]))  # it trained


def test_members_are_built_the_same_whatever_the_process_drew_before():
    from automl.engine.base import Candidate
    from automl.engine.final import load_members

    class Backend:
        def load_model(self, candidate):
            return tiny_model()

    ranked = [Candidate(str(i), 1.0, None, None, {}) for i in range(3)]
    built = []
    for draws in (1, 7):
        random.seed(draws)
        np.random.seed(draws)
        choice, models = load_members(_context(), Backend(), ranked, 2)
        members = choice.members
        built.append([[v.numpy().tolist() for v in m.variables] for m in models])
    assert [c.trial_id for c in members] == ["0", "1"]
    assert built[0] == built[1]
    assert built[0][0] != built[0][1]  # each member from its own seed


@pytest.mark.slow
def test_a_full_disk_fails_the_trial_stops_the_search_and_the_fit_resumes(tmp_path, monkeypatch):
    """A search (150 digits, 3 trials of 1 epoch) whose trial 1 finds no room for its weights."""
    from sklearn.datasets import load_digits

    import automl
    from automl.engine import tuner
    from automl.errors import SearchError
    from automl.training import weights

    x, y = load_digits(return_X_y=True)
    x, y = x[:150].reshape(-1, 8, 8), y[:150]
    real, current = weights.shutil.disk_usage, {}
    run_trial = tuner.GraphTuner.run_trial

    def tracked(self, trial, *args, **kwargs):
        current["trial"] = trial.trial_id
        return run_trial(self, trial, *args, **kwargs)

    def usage(path):
        full = current.get("trial") == "1"
        return Usage(1, 1, 1000) if full else real(path)

    monkeypatch.setattr(tuner.GraphTuner, "run_trial", tracked)
    monkeypatch.setattr(weights.shutil, "disk_usage", usage)

    def fit():
        return automl.ImageClassifier(
            max_trials=3,
            epochs=1,
            ensemble_size=2,
            max_model_size=20_000,
            verbose=0,
            directory=str(tmp_path),
            project_name="p",
        ).fit(x, y)

    with pytest.raises(SearchError, match="disk full at .*trial_1.*overwrite=False"):
        fit()
    assert not (tmp_path / "p" / "trial_1" / "model.weights.h5").exists()
    assert not list((tmp_path / "p").rglob(".tmp-*"))
    assert not (tmp_path / "p" / "automl.lock").exists()
    monkeypatch.setattr(weights.shutil, "disk_usage", real)  # room made
    summary = {r["trial_id"]: r for r in fit().search_summary().to_dict("records")}
    assert summary["0"]["status"] == "COMPLETED" and summary["2"]["status"] == "COMPLETED"
    assert summary["1"]["status"] == "FAILED" and "disk full at" in summary["1"]["reason"]


def test_a_fit_run_again_on_a_finished_search_predicts_bit_for_bit_the_same(tmp_path):
    """The final step again, after other random draws (as a resumed process): the same model.

    A table of 1,000 rows is scored on a validation split, so its members are refit;
    the MLP members have dropout layers.
    """
    from sklearn.datasets import load_digits

    import automl

    x, y = load_digits(return_X_y=True)
    x, y, probe = x[:1000].astype("float32"), y[:1000], x[-100:].astype("float32")

    def fit():
        return automl.StructuredDataClassifier(
            max_trials=3, epochs=1, ensemble_size=2, verbose=0, directory=str(tmp_path)
        ).fit(x, y)

    first = fit()
    random.seed(12345)
    np.random.seed(12345)
    again = fit()
    assert again.ensemble_trial_ids_ == first.ensemble_trial_ids_
    assert np.array_equal(again.predict_proba(probe), first.predict_proba(probe))
