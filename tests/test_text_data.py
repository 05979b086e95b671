"""Text inputs: the tokeniser equals TensorFlow's TextVectorization, the vocabulary and
length come from the training texts, and bad inputs are refused before any training."""

import numpy as np
import pytest

from automl.data import text
from automl.data.preprocessing import Preprocessor
from automl.data.text_folder import read_text_folder
from automl.errors import InputError

ODD_TEXTS = [
    "Hello, World! hello world",
    "  tabs\tand\nnew lines\r\nand  double  spaces ",
    "café Café CAFÉ naïve",  # non-ASCII: lower-cased in ASCII only, as TensorFlow does
    "don't stop-me now: (really) [maybe] {never} <ok> #tag @user http://t.co/x1",
    "a\u00a0b non-breaking space keeps one token",
    "",
    "123 4.5 six",
    "repeat repeat repeat repeat",
]


def test_tokens_are_words_then_bigrams():
    assert text.tokens("The cat, the HAT.") == [
        "the",
        "cat",
        "the",
        "hat",
        "the cat",
        "cat the",
        "the hat",
    ]
    assert text.tokens("") == []


def test_encode_equals_text_vectorization():
    tf = pytest.importorskip("tensorflow")
    vocabulary, length = text.fit_vocabulary(ODD_TEXTS * 3, min_count=1)
    assert "hello world" in vocabulary and "café" in vocabulary and "cafÉ" in vocabulary
    layer = text.vectorizer(vocabulary, length, "tokens")
    expected = layer(tf.constant(np.asarray(ODD_TEXTS, dtype=object)[:, None])).numpy()
    np.testing.assert_array_equal(text.encode(ODD_TEXTS, vocabulary, length), expected)
    # a shorter length cuts the bigrams first (the words come first), as the layer does
    short = text.vectorizer(vocabulary, 5, "short")
    np.testing.assert_array_equal(
        text.encode(ODD_TEXTS, vocabulary, 5),
        short(tf.constant(np.asarray(ODD_TEXTS, dtype=object)[:, None])).numpy(),
    )


def test_vocabulary_and_length_come_from_the_texts():
    texts = ["red apple pie with cream on top now"] * 3 + ["green apple"] * 2 + ["unique word"]
    vocabulary, length = text.fit_vocabulary(texts, min_count=2)
    assert vocabulary[0] == "apple"  # in the most texts
    assert "unique" not in vocabulary and "word" not in vocabulary  # in one text only
    assert len(vocabulary) == 17 and "green apple" in vocabulary
    assert length == 15  # the 95th percentile: 8 words + 7 bigrams
    short, _ = text.fit_vocabulary(texts[3:], min_count=2)  # too few kept: all tokens
    assert "unique word" in short
    long_texts = [" ".join(f"w{i}" for i in range(n)) for n in range(10, 400, 10)]
    _, length = text.fit_vocabulary(long_texts)
    lengths = [len(text.tokens(t)) for t in long_texts]
    assert length == int(np.ceil(np.percentile(lengths, text.LENGTH_PERCENTILE)))
    ids = text.encode(long_texts, *text.fit_vocabulary(long_texts))
    assert ids.shape == (len(long_texts), length) and ids.dtype == np.int32


@pytest.mark.parametrize(
    "x, message",
    [
        ("just one string", "not a single string"),
        ([1, 2, 3, 4], "must hold strings only"),
        (["ok text", None, "more text", "and more"], "row 1: None"),
        (["ok text", float("nan"), "b", "c"], "must hold strings only"),
        (np.zeros((4, 3)), "must be a 1-D sequence of texts"),
        ([], "has 0 texts"),
    ],
)
def test_bad_texts_are_refused(x, message):
    with pytest.raises(InputError, match=message):
        Preprocessor.fit_text(x)


def test_empty_and_identical_texts_are_refused():
    with pytest.raises(InputError, match="All 4 texts are empty"):
        Preprocessor.fit_text(["", "  ", "!!", "..."])
    with pytest.raises(InputError, match="All 5 texts are the same"):
        Preprocessor.fit_text(["same text"] * 5)


def test_dataframe_with_several_columns_points_to_the_table_estimator():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"text": ["a b", "c d"], "n": [1, 2]})
    with pytest.raises(InputError, match="StructuredDataClassifier"):
        text.check_texts(frame)
    assert list(text.check_texts(frame[["text"]])) == ["a b", "c d"]
    assert list(text.check_texts(frame["text"])) == ["a b", "c d"]


def test_preprocessor_round_trips_and_transforms(tmp_path):
    import dataclasses
    import json

    pre = Preprocessor.fit_text(["good movie", "bad movie", "good plot", "bad plot"] * 3)
    again = Preprocessor(**json.loads(json.dumps(dataclasses.asdict(pre))))
    assert again == pre and again.tokens == len(pre.vocabulary) + 2
    out = pre.transform(["good plot", b"bad movie"])
    if pre.string_inputs:
        assert out.shape == (2, 1) and list(out[:, 0]) == ["good plot", "bad movie"]
    else:
        assert out.dtype == np.int32 and out.shape == (2, pre.graph_shape[0])


def test_text_folder(tmp_path):
    for label, texts in {"neg": ["bad", "awful film"], "pos": ["great", "lovely"]}.items():
        (tmp_path / label).mkdir()
        for i, t in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(t, encoding="utf-8")
    (tmp_path / "pos" / "notes.md").write_text("ignored")
    (tmp_path / "readme.txt").write_text("not in a class folder: ignored")
    texts, labels = read_text_folder(tmp_path)
    assert list(texts) == ["bad", "awful film", "great", "lovely"]
    assert list(labels) == ["neg", "neg", "pos", "pos"]
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    with pytest.raises(InputError, match="no .txt files"):
        read_text_folder(empty)
    with pytest.raises(InputError, match="is not a folder"):
        read_text_folder(tmp_path / "missing")


def test_idf_points_interpolate_a_zipf_vocabulary():
    from automl.graph.text_keras import idf_weights

    ranks = np.arange(1, 20_001)
    frequencies = np.maximum(2, (5_000 / ranks**0.9).astype(int)).tolist()
    points = text.idf_knots(frequencies, 10_000)
    assert len(points) <= 32 + 2 * 32 + 2
    exact = np.log((1 + 10_000) / (1 + np.asarray(frequencies, dtype=float))) + 1
    weights = idf_weights(len(frequencies) + 2, points)
    assert weights[0] == 0 and weights[1] == 1
    assert np.abs(weights[2:] - exact).max() < 0.1 * exact.min()
    tail = np.asarray(frequencies) <= 32  # ranges of equal frequency: exact
    np.testing.assert_allclose(weights[2:][tail], exact[tail], rtol=1e-5)
    _, _, points = text.fit_vocabulary(["a b c", "a b", "a"] * 6, idf=True)
    assert [p[0] for p in points][:1] == [0] and points[0][1] < points[-1][1]
