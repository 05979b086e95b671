"""Cell search behind the estimator: trials, budget, resume, signature, ensemble."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

import automl
from automl.errors import InputError

TINY = {
    "space": "nb201",
    "stages": 1,
    "search_epochs": 2,
    "search_cells": 1,
    "search_channels": 4,
    "cells": 1,
    "channels": 6,
}


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x.reshape(-1, 8, 8)[:240], y[:240]


def _clf(tmp_path, **kwargs):
    args = {
        "strategy": "milenas",
        "epochs": 2,
        "directory": tmp_path,
        "verbose": 0,
        "cell_options": TINY,
        "max_trials": 3,
        "ensemble_size": 2,
        "seed": 0,
        **kwargs,
    }
    return automl.ImageClassifier(**args)


@pytest.fixture(scope="module")
def searched(digits, tmp_path_factory):
    """`_clf`'s search, fitted once: tests read it, or fit again on a copy of its folder."""
    x, y = digits
    return _clf(tmp_path_factory.mktemp("cells")).fit(x, y)


def _copy_search(searched, tmp_path) -> None:
    """Copy the fixture's search into tmp_path, where `_clf(tmp_path)` finds it."""
    import shutil

    shutil.copytree(searched.directory / "image_classifier", tmp_path / "image_classifier")


def test_candidates_are_trials_and_a_resume_retrains_nothing(digits, searched, tmp_path, capsys):
    x, y = digits
    clf = searched
    summary = clf.search_summary()
    trained = summary[summary["status"] == "COMPLETED"]
    assert len(trained) >= 2 and (summary["key"].str.count("~") == 6).all()
    assert summary["search_score"].notna().all()
    assert set(clf.ensemble_trial_ids_) == set(summary.loc[summary["ensemble"], "trial_id"])
    assert clf.best_trial_id_ == trained.sort_values("score", ascending=False)["trial_id"].iloc[0]
    best_key = summary.set_index("trial_id").loc[clf.best_trial_id_, "key"]
    assert str(clf.best_architecture_) == best_key
    if len(clf.ensemble_trial_ids_) > 1:
        assert "ensemble_mean" in [layer.name for layer in clf.export_model().layers]
    capsys.readouterr()
    _copy_search(searched, tmp_path)
    again = _clf(tmp_path, verbose=1).fit(x, y)
    out = capsys.readouterr().out
    assert "reusing the supernet search" in out and "genotype" not in out  # nothing trained
    np.testing.assert_array_equal(again.search_summary()["seconds"], summary["seconds"])
    assert again.ensemble_trial_ids_ == clf.ensemble_trial_ids_


def test_other_cell_options_are_refused_on_the_same_project(digits, searched, tmp_path):
    x, y = digits
    _copy_search(searched, tmp_path)
    with pytest.raises(InputError, match="holds a search for other data or settings"):
        _clf(tmp_path, cell_options={**TINY, "channels": 8}).fit(x, y)


def test_time_limit_bounds_the_cell_search(digits, tmp_path):
    x, y = digits
    start = time.time()
    clf = _clf(
        tmp_path,
        epochs=None,
        time_limit=12,
        max_trials=5,
        cell_options={**TINY, "search_epochs": 50},
    ).fit(x, y)
    elapsed = time.time() - start
    summary = clf.search_summary()
    assert elapsed < 12 * 1.5 + 5  # graph tracing makes small limits loose, but bounded
    assert (summary["status"] == "COMPLETED").sum() >= 1
    assert len(clf.backend_.plan) >= 1


def test_a_failed_or_damaged_genotype_trial_is_recorded_and_the_others_are_used(
    digits, tmp_path, monkeypatch
):
    import automl.training.fit

    x, y = digits
    real_fit_trial = automl.training.fit.fit_trial
    calls = []

    def out_of_memory_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("Unable to allocate 2.0 GiB")
        return real_fit_trial(*args, **kwargs)

    monkeypatch.setattr(automl.training.fit, "fit_trial", out_of_memory_first)
    clf = _clf(tmp_path).fit(x, y)
    rows = clf.search_summary().set_index("trial_id")
    assert rows.loc["0", "status"] == "FAILED" and "MemoryError" in rows.loc["0", "reason"]
    assert (rows["status"] == "COMPLETED").sum() >= 1
    assert "0" not in clf.ensemble_trial_ids_
    member = clf.ensemble_trial_ids_[0]
    weights = tmp_path / "image_classifier" / f"trial_{member}" / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated
    from automl.errors import SearchError
    from automl.project.files import read_json

    completed = rows.index[rows["status"] == "COMPLETED"].tolist()
    if completed == [member]:  # the only finished genotype is damaged: no model left
        with pytest.raises(SearchError, match="missing or damaged"):
            _clf(tmp_path).fit(x, y)
    else:
        assert member not in _clf(tmp_path).fit(x, y).ensemble_trial_ids_
    summary = read_json(str(weights.parent / "summary.json"))
    assert summary["status"] == "FAILED" and "model.weights.h5" in summary["reason"]
