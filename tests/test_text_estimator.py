"""TextClassifier and TextRegressor end to end on generated texts: fit, resume, export."""

import json
import subprocess
import sys

import numpy as np
import pytest

import automl
from automl.errors import InputError

POSITIVE = ["great", "lovely", "superb", "fine", "brilliant", "moving"]
NEGATIVE = ["awful", "boring", "dull", "poor", "weak", "clumsy"]
FILLER = ["the", "film", "plot", "actor", "scene", "story", "music", "was", "and", "a", "very"]


def make_texts(n, seed=0):
    """Short reviews: filler words and one or two words of the label's sentiment."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = "pos" if rng.random() < 0.5 else "neg"
        words = list(rng.choice(FILLER, size=int(rng.integers(4, 12))))
        words += list(
            rng.choice(POSITIVE if label == "pos" else NEGATIVE, size=int(rng.integers(1, 3)))
        )
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
        labels.append(label)
    return np.asarray(texts, dtype=object), np.asarray(labels)


@pytest.fixture(scope="module")
def reviews():
    return make_texts(300, seed=0), make_texts(100, seed=1)


@pytest.fixture(scope="module")
def fitted(reviews, tmp_path_factory):
    (x, y), _ = reviews
    clf = automl.TextClassifier(
        max_trials=2,
        epochs=6,
        ensemble_size=1,
        directory=str(tmp_path_factory.mktemp("text")),
        verbose=0,
        seed=0,
    )
    return clf.fit(list(x), y)


def test_text_classifier_learns_and_starts_from_a_bag_of_words(fitted, reviews):
    _, (x_test, y_test) = reviews
    accuracy = float(np.mean(fitted.predict(x_test) == y_test))
    assert accuracy >= 0.9, accuracy
    assert set(fitted.classes_) == {"neg", "pos"}
    summary = fitted.search_summary()
    assert len(summary) == 2 and summary["status"].eq("COMPLETED").all()
    first = min(summary["trial_id"])  # the first trial is the bag of words into the output
    graph = fitted.backend_.tuner.trial_graph(first)
    assert sorted(node.type for node in graph.nodes.values()) == ["bag", "input", "output"]


def test_the_exported_model_predicts_as_the_estimator_on_this_backend(fitted, reviews, tmp_path):
    from automl.export import load_model, predict_with

    _, (x_test, _) = reviews
    path = fitted.export_model(path=tmp_path / "model.keras")
    labels = predict_with(*load_model(path), list(x_test[:30]))
    assert list(labels) == list(fitted.predict(list(x_test[:30])))


@pytest.mark.slow
def test_a_text_model_predicts_from_raw_strings_in_a_fresh_process(fitted, reviews, tmp_path):
    pytest.importorskip("tensorflow")
    _, (x_test, _) = reviews
    path = fitted.export_model(path=tmp_path / "model.keras")
    expected = fitted.predict_proba(list(x_test[:20]))
    np.save(tmp_path / "texts.npy", np.asarray(x_test[:20], dtype=str))
    code = f"""
import json, numpy as np, keras, tensorflow as tf
import automl
model = keras.models.load_model({str(path)!r})
texts = np.load({str(tmp_path / "texts.npy")!r})
out = model.predict(tf.constant(texts[:, None]), verbose=0)
from automl.export import load_model, predict_with
loaded, pre, target = load_model({str(path)!r})
labels = predict_with(loaded, pre, target, list(texts))
print(json.dumps({{"out": out.tolist(), "labels": list(map(str, labels))}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(np.asarray(result["out"]), expected, atol=1e-5)
    assert result["labels"] == list(fitted.predict(list(x_test[:20])))


def test_a_text_search_resumes_without_retraining(fitted, reviews, capsys):
    (x, y), _ = reviews
    again = automl.TextClassifier(
        max_trials=2,
        epochs=6,
        ensemble_size=1,
        directory=fitted.directory,
        verbose=1,
        seed=0,
    )
    again.fit(list(x), y)
    out = capsys.readouterr().out + capsys.readouterr().err
    assert "2 already finished" in out
    np.testing.assert_allclose(
        again.predict_proba(list(x[:10])), fitted.predict_proba(list(x[:10])), atol=1e-5
    )


def test_bad_text_inputs_are_refused_before_training(tmp_path):
    clf = automl.TextClassifier(max_trials=1, epochs=1, directory=str(tmp_path), verbose=0)
    with pytest.raises(InputError, match="must hold strings only"):
        clf.fit([1.0, 2.0, 3.0, 4.0, 5.0], [0, 1, 0, 1, 0])
    with pytest.raises(InputError, match="are the same"):
        clf.fit(["same"] * 8, [0, 1] * 4)
    with pytest.raises(InputError, match="are empty"):
        clf.fit([""] * 8, [0, 1] * 4)
    with pytest.raises(InputError, match="no .txt files"):
        (tmp_path / "data" / "pos").mkdir(parents=True)
        clf.fit(str(tmp_path / "data"))
    assert not any((tmp_path / "text_classifier").glob("trial_*"))


def test_text_regressor(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 6, size=200)  # the target: how many positive words a text has
    texts = [
        " ".join(list(rng.choice(POSITIVE, size=c, replace=False)) + list(rng.choice(FILLER, 5)))
        for c in counts
    ]
    reg = automl.TextRegressor(
        max_trials=1, epochs=30, directory=str(tmp_path), verbose=0, seed=0
    ).fit(texts[:160], counts[:160].astype(float))
    predictions = reg.predict(texts[160:]).ravel()
    assert np.corrcoef(predictions, counts[160:])[0, 1] > 0.8
