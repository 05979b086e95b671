"""Free-text columns in tables: the rule that finds them, their own input (strings ->
token ids -> a bag of tokens), a fit, the exported model, and the formats that carry text."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import automl
from automl.data import text as text_mod
from automl.data.columns import is_free_text
from automl.data.preprocessing import Preprocessor
from automl.errors import InputError
from automl.export import formats as serving

GOOD = ["great", "excellent", "lovely", "superb"]
BAD = ["awful", "terrible", "poor", "broken"]
FILLER = [
    "the",
    "product",
    "was",
    "really",
    "quite",
    "very",
    "and",
    "it",
    "arrived",
    "today",
    "in",
    "a",
    "box",
    "with",
]


def sentences(rng, labels) -> list:
    """Made-up reviews: filler words and one word that gives the label away."""
    out = []
    for label in labels:
        words = list(rng.choice(FILLER, rng.integers(4, 9))) + [rng.choice(GOOD if label else BAD)]
        rng.shuffle(words)
        out.append(" ".join(words).capitalize() + ".")
    return out


def reviews(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "review": sentences(rng, label),
            "price": rng.normal(10, 2, n),
            "colour": rng.choice(["red", "green", "blue"], n),
        }
    )
    return frame, np.where(label == 1, "pos", "neg")


def test_the_rule_finds_free_text_and_not_categories_ids_or_labels():
    rng = np.random.default_rng(1)
    n = 300
    frame, _ = reviews(n)
    assert is_free_text(frame["review"])
    not_text = {
        "colours": rng.choice(["red", "green", "blue", "light blue"], n),
        "ids": [f"ID-{i:06d}" for i in range(n)],  # all distinct, one word
        "names": [f"{a} {b}" for a, b in rng.choice(["Ann", "Bob", "Eve", "Li"], (n, 2))],
        "dates": pd.date_range("2020-01-01", periods=n).astype(str),
        "timestamps": [f"2021-03-{1 + i % 28:02d} 12:{i % 60:02d}:00" for i in range(n)],
        "degrees": rng.choice(
            [
                "Bachelor's degree or higher",
                "High school diploma or less",
                "Some college no degree",
            ],
            n,
        ),  # long labels that repeat
        "numbers": rng.normal(size=n),
        "numbers_as_text": rng.normal(size=n).astype(str),
        "mixed": [f"a long text of words {i}" if i % 2 else i for i in range(n)],
        "category_dtype": pd.Categorical(frame["review"]),  # the user said: a category
    }
    for name, values in not_text.items():
        assert not is_free_text(pd.Series(values)), name
    with_missing = frame["review"].where(np.arange(n) % 3 > 0)  # a third missing
    assert is_free_text(with_missing)


def test_a_text_column_is_its_own_input_and_ids_match_the_string_model():
    import keras

    from automl.graph.text_keras import BagOfTokens

    frame, _ = reviews(200)
    pre = Preprocessor.fit_table(frame)
    kinds = {c["name"]: c["kind"] for c in pre.columns}
    assert kinds == {"review": "text", "price": "numeric", "colour": "categorical"}
    review = pre.columns[0]
    assert set(GOOD + BAD) <= set(review["vocabulary"]) and review["length"] >= 8
    assert pre.graph_shape == [len(review["vocabulary"]) + 2 + 1 + 4]
    inputs, x = pre.build_inputs()
    assert inputs["review"].dtype == "string" and x.shape[-1] == pre.graph_shape[0]
    model = keras.Model(inputs, x)
    assert any(isinstance(layer, BagOfTokens) for layer in model.layers)
    test = frame[:20].copy()
    test.loc[0, "review"] = None  # a missing text is ""
    feed = pre.transform(test)
    assert feed["review"][0, 0] == "" and feed["review"].shape == (20, 1)
    out = keras.ops.convert_to_numpy(model(feed))
    # without string tensors: token ids made by automl, the same features
    ids = Preprocessor(**{**pre.__dict__, "string_inputs": False})
    id_feed = ids.transform(test)
    expected_ids = text_mod.encode(feed["review"][:, 0], review["vocabulary"], review["length"])
    np.testing.assert_array_equal(id_feed["review"], expected_ids)
    id_inputs, id_x = ids.build_inputs()
    assert id_inputs["review"].dtype == "int32"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.Model(id_inputs, id_x)(id_feed)), out, atol=1e-6
    )
    with pytest.raises(InputError, match="Columns missing from the input: \\['review'\\]"):
        pre.transform(frame.drop(columns="review"))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    frame, label = reviews(200)
    clf = automl.StructuredDataClassifier(
        max_trials=1, epochs=2, verbose=0, seed=0, directory=tmp_path_factory.mktemp("runs")
    )
    return clf.fit(frame[:160], label[:160]), frame[160:].reset_index(drop=True), label[160:]


def test_a_table_with_a_text_column_fits_predicts_and_exports(fitted, tmp_path):
    clf, test, label = fitted
    assert [c["kind"] for c in clf.preprocessor_.columns] == ["text", "numeric", "categorical"]
    predicted = clf.predict(test)
    assert set(predicted) <= {"pos", "neg"} and len(predicted) == len(test)
    expected = clf.predict_proba(test)
    path = clf.export_model(path=tmp_path / "m.keras")
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from automl.export.keras_file import load_model, predict_with\n"
        "model, pre, _ = load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], predict_with(model, pre, None, pd.read_pickle(sys.argv[2])))\n"
    )
    test.to_pickle(tmp_path / "test.pkl")
    proc = subprocess.run(  # a fresh process: the bag layer must load by its registered name
        [sys.executable, "-c", code, path, str(tmp_path / "test.pkl"), str(tmp_path / "p.npy")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-5)

    import tensorflow as tf

    folder = clf.export_model(format="savedmodel", path=tmp_path / "saved")
    feed = serving.table_feed(clf.preprocessor_, test)
    assert feed["review"].dtype.kind == "U"
    serve = tf.saved_model.load(folder).signatures["serving_default"]
    out = serve(**{k: tf.constant(v) for k, v in feed.items()})["output"].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)
    for fmt in ("tflite", "onnx"):
        target = tmp_path / f"m.{fmt}"
        with pytest.raises(
            InputError, match=r"text columns \['review'\].*\['keras', 'savedmodel'\]"
        ):
            clf.export_model(format=fmt, path=target)
        assert not target.exists() and len(list(tmp_path.glob(".tmp-*"))) == 0


def test_text_models_refuse_tflite_and_onnx_before_writing(tmp_path):
    pre = Preprocessor("text", [], [8], vocabulary=["a", "b"])
    for fmt in ("tflite", "onnx"):
        with pytest.raises(InputError, match="a text model.*\\['keras', 'savedmodel'\\]"):
            serving.save_graph_format(None, pre, fmt, str(tmp_path / f"m.{fmt}"))
    assert list(tmp_path.iterdir()) == []
    assert serving.input_spec(pre) == {"input": ((1,), "string")}


def test_bad_inputs_to_a_table_with_text_are_refused(fitted):
    clf, test, _ = fitted
    with pytest.raises(InputError, match="Columns missing"):
        clf.predict(test.drop(columns="review"))
    with pytest.raises(InputError, match="'price' held numbers in fit"):
        clf.predict(test.assign(price="cheap"))
    odd = test.assign(review=[None, 3.5] + list(test["review"][2:]))  # missing, a number
    assert np.isfinite(clf.predict_proba(odd)).all()


def test_a_model_of_token_ids_exports_a_savedmodel_that_takes_strings(tmp_path):
    """A model fit without string tensors (JAX) takes token ids; its SavedModel, written
    from TensorFlow, tokenises the strings itself."""
    import keras
    import tensorflow as tf

    frame, _ = reviews(100)
    pre = Preprocessor(**{**Preprocessor.fit_table(frame).__dict__, "string_inputs": False})
    inputs, x = pre.build_inputs()
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    expected = keras.ops.convert_to_numpy(model(pre.transform(frame[:10])))
    folder = serving.save_graph_format(model, pre, "savedmodel", str(tmp_path / "saved"))
    serve = tf.saved_model.load(folder).signatures["serving_default"]
    feed = serving.table_feed(pre, frame[:10])
    out = serve(**{k: tf.constant(v) for k, v in feed.items()})["output"].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)
