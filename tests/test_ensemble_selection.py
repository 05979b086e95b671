"""Ensemble members chosen by their validation predictions, and a calibrated final model.

The selection and calibration tests are numpy only. The rest read conftest's
`digits_ensemble` (3 trials of 2 epochs on 200 digits, fitted once) and its copy
`digits_weighted` (two trials weighted 3:1 at temperature 1.5).
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from automl.engine.calibration import (
    calibrate,
    combine,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from automl.engine.selection import greedy_selection, score

CLASSES = 3


def _probabilities(y, right, right_p, wrong_p, shift):
    """Probabilities over CLASSES: `right_p` on the true class on rows `right`; elsewhere
    `wrong_p` on class y + `shift` and the rest spread over the other classes."""
    n = len(y)
    out = np.zeros((n, CLASSES))
    wrong = (y + shift) % CLASSES
    for i in range(n):
        if right[i]:
            out[i] = (1 - right_p) / (CLASSES - 1)
            out[i, y[i]] = right_p
        else:
            out[i] = (1 - wrong_p) / (CLASSES - 1)
            out[i, wrong[i]] = wrong_p
    return out


@pytest.fixture
def labels(rng):
    return rng.integers(0, CLASSES, 300)


# ---------------------------------------------------------------------- selection
def test_a_useless_candidate_is_not_chosen(labels, rng):
    best = _probabilities(labels, np.arange(300) < 240, 0.7, 0.7, 1)  # 80% right
    noise = rng.dirichlet(np.ones(CLASSES), 300)
    constant = np.full((300, CLASSES), 1 / CLASSES)
    chosen = greedy_selection(labels, [best, noise, constant], "classification", size=5)
    assert (chosen.members, chosen.counts, chosen.weights) == ([0], [1], [1.0])
    assert chosen.score == chosen.best_single and chosen.score.value == pytest.approx(0.8)


def test_a_complementary_candidate_joins(labels, rng):
    rows = np.arange(300)
    best = _probabilities(labels, rows < 210, 0.8, 0.6, 1)  # 70% right
    other = _probabilities(labels, rows >= 150, 0.8, 0.6, 2)  # right where best is wrong
    noise = rng.dirichlet(np.ones(CLASSES), 300)
    chosen = greedy_selection(labels, [best, noise, other], "classification", size=5)
    assert chosen.members == [0, 2]
    assert chosen.best_single.value == pytest.approx(0.7)
    assert chosen.score.value == 1.0
    assert greedy_selection(labels, [best, noise, other], "classification", size=1).members == [0]


def test_selection_with_replacement_weights_the_better_candidate_more(rng):
    y = rng.normal(size=(20000, 1))
    sharp = y + rng.normal(size=y.shape)  # error variance 1
    blurred = y + np.sqrt(2) * rng.normal(size=y.shape)  # error variance 2: best weight 1/3
    chosen = greedy_selection(y, [sharp, blurred], "regression", size=5)
    assert (chosen.members, chosen.counts) == ([0, 1], [2, 1])
    assert chosen.weights == pytest.approx([2 / 3, 1 / 3])
    assert chosen.score.value < score(y, (sharp + blurred) / 2, "regression").value
    assert chosen.score.value < chosen.best_single.value


def test_selection_refuses_predictions_that_do_not_fit():
    with pytest.raises(ValueError, match="one prediction per target"):
        greedy_selection(np.zeros(4), [np.zeros((3, 2))], "classification", size=2)


# ---------------------------------------------------------------------- calibration
def test_temperature_lowers_the_nll_of_overconfident_predictions(rng):
    logits = 2 * rng.normal(size=(5000, 4))
    y = np.array([rng.choice(4, p=p) for p in softmax(logits)])
    overconfident = softmax(3 * logits)
    assert fit_temperature([overconfident], [1.0], y) == pytest.approx(3.0, rel=0.1)
    report = calibrate([overconfident], [1.0], y)
    assert report["temperature"] == report["fitted_temperature"] > 2.5
    assert report["nll_after"] < 0.8 * report["nll_before"]
    assert report["ece_after"] < 0.03 < 0.1 < report["ece_before"]
    calibrated = calibrate([softmax(logits)], [1.0], y)  # already calibrated: T is not kept
    assert calibrated["temperature"] == 1.0
    assert calibrated["nll_after"] == calibrated["nll_before"]


def test_ece_of_calibrated_predictions_is_about_zero(rng):
    confidence = rng.uniform(0.5, 1.0, 200_000)
    y = (rng.uniform(size=confidence.size) > confidence).astype(int)  # class 0 w.p. confidence
    probabilities = np.stack([confidence, 1 - confidence], axis=1)
    assert expected_calibration_error(probabilities, y) < 0.005
    assert expected_calibration_error(probabilities, 1 - y) == pytest.approx(0.5, abs=0.01)


def test_combine_weights_members_at_a_temperature(rng):
    a, b = softmax(rng.normal(size=(10, 3))), softmax(rng.normal(size=(10, 3)))
    np.testing.assert_allclose(combine([a, b], [0.75, 0.25]), 0.75 * a + 0.25 * b)
    expected = 0.75 * softmax(np.log(a) / 2) + 0.25 * softmax(np.log(b) / 2)
    np.testing.assert_allclose(combine([a, b], [0.75, 0.25], 2.0), expected)


# ---------------------------------------------------------------------- end to end
def _digits():
    from sklearn.datasets import load_digits

    x, _ = load_digits(return_X_y=True)
    return x.reshape(-1, 8, 8).astype("float32")


def test_every_trial_saves_its_validation_predictions(digits_ensemble):
    from automl.engine.predictions import SHA_KEY, load_predictions
    from automl.project import layout

    clf = digits_ensemble
    for candidate in clf.backend_.candidates():
        path = layout.trial_path(
            clf.backend_.context.project.path, candidate.trial_id, layout.VAL_PREDICTIONS_FILE
        )
        predictions, why = load_predictions(path, candidate.summary[SHA_KEY], (40, 10))
        assert why == "" and predictions.dtype == np.float32
        np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-5)
    report = clf.calibration_
    assert list(report["weights"]) == clf.ensemble_trial_ids_
    assert report["ensemble_score"] >= report["best_single_score"]
    for key in ("temperature", "nll_before", "nll_after", "ece_before", "ece_after"):
        assert np.isfinite(report[key]), key
    assert report["nll_after"] <= report["nll_before"]
    json.dumps(report)  # plain values
    html = clf._repr_html_()
    assert "ensemble validation accuracy" in html and "calibration error (ECE)" in html


def test_a_damaged_predictions_file_leaves_its_trial_out(digits_ensemble, tmp_path):
    from automl.engine.final import choose, validation_predictions
    from automl.project import layout

    clf = digits_ensemble
    project = tmp_path / "copy"
    shutil.copytree(clf.backend_.context.project.path, project)
    ranked = clf.backend_.candidates()
    (project / layout.trial_folder(ranked[1].trial_id) / layout.VAL_PREDICTIONS_FILE).write_bytes(
        b"damaged"
    )
    lines = []
    context = SimpleNamespace(
        project=SimpleNamespace(path=str(project)), head=clf.head_, log=lines.append
    )
    val = (None, np.zeros(40, dtype="int32"))
    saved = validation_predictions(context, ranked, val)
    assert sorted(saved) == sorted(c.trial_id for c in ranked if c is not ranked[1])
    assert "left out of the ensemble selection" in lines[0] and "checksum" in lines[0]
    chosen = choose(context, ranked, 2, val[1], saved)
    assert ranked[1] not in chosen.members and chosen.selection is not None
    older = [ranked[0], SimpleNamespace(**{**vars(ranked[1]), "summary": {}})]
    assert validation_predictions(context, older, val) is None  # no predictions: median rule
    assert validation_predictions(context, ranked, None) is None


def test_the_weighted_calibrated_model_is_the_numpy_computation(digits_weighted, tmp_path):
    import keras

    clf = digits_weighted
    backend = clf.backend_
    members = [c for c in backend.candidates() if c.trial_id in clf.ensemble_trial_ids_]
    images = _digits()[200:240]
    inputs = clf.preprocessor_.transform(images)
    probabilities = [backend.load_model(c).predict(inputs, verbose=0) for c in members]
    expected = combine(probabilities, [0.75, 0.25], 1.5)
    np.testing.assert_allclose(clf.predict_proba(images), expected, atol=1e-5)
    path = clf.export_model(format="keras", path=tmp_path / "model.keras")
    loaded = keras.models.load_model(path)  # safe mode: built-in layers only
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-5)
