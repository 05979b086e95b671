"""Text for the models: checks, the tokeniser, and the vocabulary fitted on the training texts.

A text becomes a sequence of token ids: its words (lower-cased ASCII, punctuation
removed, split at whitespace) in order, then its word pairs (bigrams), cut or padded to
a fixed length. Id 0 is padding, 1 a token outside the vocabulary, and 2 onwards the
vocabulary's tokens, most frequent first. On TensorFlow the model does this itself
(`keras.layers.TextVectorization` with the same rules), so an exported model takes raw
strings; `encode` is the same computation in Python, for backends without string
tensors and for the tests that hold the two equal.
"""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

from automl.errors import InputError

MAX_TOKENS = 100_000  # largest vocabulary (words and bigrams)
MIN_COUNT = 2  # a token must appear in at least this many training texts
MAX_LENGTH = 2048  # longest token sequence (words, then bigrams)
MIN_LENGTH = 8
LENGTH_PERCENTILE = 95  # the sequence length covers this share of the training texts
# TextVectorization's "lower_and_strip_punctuation" and "whitespace" split, exactly
_STRIP = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_SPLIT = re.compile(r"[ \t\n\r\f\v]+")
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def words(text: str) -> list[str]:
    """The text's words, as `tokens` finds them (without the bigrams)."""
    return [w for w in _SPLIT.split(_STRIP.sub("", text.translate(_LOWER))) if w]


def tokens(text: str) -> list[str]:
    """The text's words, then its bigrams ("a b"), as the model's tokeniser makes them."""
    words = [w for w in _SPLIT.split(_STRIP.sub("", text.translate(_LOWER))) if w]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def check_texts(x, name: str = "x") -> np.ndarray:
    """`x` as a 1-D object array of `str`, one text per sample.

    Takes a list, tuple, numpy array (1-D, or 2-D with one column), pandas Series or
    one-column DataFrame of strings; bytes are read as UTF-8.

    Raises:
        InputError: x is a single string, empty, has another shape, or holds values
            that are not strings (numbers, None, NaN).
    """
    if isinstance(x, (str, bytes)):
        raise InputError(
            f"{name} must be a sequence of texts, one per sample, not a single string. "
            f"Received: {name}={x[:60]!r}. Pass a list of strings, e.g. [text]."
        )
    if hasattr(x, "columns"):  # a DataFrame
        if len(x.columns) != 1:
            raise InputError(
                f"Text models take one text per sample. Received a DataFrame with "
                f"{len(x.columns)} columns {list(x.columns)[:5]}; pass its text column "
                "(frame['text']), or use StructuredDataClassifier for a table with text columns."
            )
        x = x.iloc[:, 0]
    values = x.to_numpy(dtype=object) if hasattr(x, "to_numpy") else np.asarray(x, dtype=object)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise InputError(
            f"{name} must be a 1-D sequence of texts. Received shape {values.shape}; "
            "pass one string per sample."
        )
    if len(values) == 0:
        raise InputError(f"{name} has 0 texts. Pass at least one.")
    out = np.empty(len(values), dtype=object)
    bad = []
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if isinstance(value, np.str_):
            value = str(value)
        if not isinstance(value, str):
            bad.append(i)
            continue
        out[i] = value
    if bad:
        examples = ", ".join(f"row {i}: {values[i]!r}" for i in bad[:3])
        raise InputError(
            f"{name} must hold strings only; {len(bad)} value(s) are not ({examples}). "
            "Convert them with str(), or drop those rows (use '' for a missing text)."
        )
    return out


def check_training_texts(texts: np.ndarray) -> None:
    """Refuse training texts that leave nothing to learn from.

    Raises:
        InputError: every text is empty (no words), or all texts are the same.
    """
    if not any(tokens(t) for t in texts[:100_000]):
        raise InputError(
            f"All {len(texts)} texts are empty: none has a word (letters or digits). "
            "Pass the texts themselves."
        )
    if len(texts) > 1 and len(set(texts[:100_000])) == 1:
        raise InputError(
            f"All {len(texts)} texts are the same ({texts[0][:60]!r}): a model cannot tell "
            "the samples apart. Check that x holds each sample's own text."
        )


def fit_vocabulary(
    texts, max_tokens: int = MAX_TOKENS, min_count: int = MIN_COUNT, idf: bool = False
) -> tuple:
    """(vocabulary, sequence length) of the training texts; with `idf`, also `idf_knots`.

    The vocabulary holds the words and bigrams found in at least `min_count` texts (all
    of them when that leaves fewer than 16), the `max_tokens` most frequent first; the
    sequence length covers `LENGTH_PERCENTILE`% of the texts, between `MIN_LENGTH` and
    `MAX_LENGTH`.
    """
    counts: Counter = Counter()
    lengths = []
    for text in texts:
        found = tokens(text)
        lengths.append(len(found))
        counts.update(set(found))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = [token for token, n in ranked if n >= min_count]
    if len(kept) < 16:
        kept = [token for token, _ in ranked]
    length = int(np.ceil(np.percentile(lengths, LENGTH_PERCENTILE))) if lengths else MIN_LENGTH
    length = int(min(max(length, MIN_LENGTH), MAX_LENGTH))
    kept = kept[:max_tokens]
    if not idf:
        return kept, length
    return kept, length, idf_knots([counts[token] for token in kept], len(lengths))


def idf_knots(frequencies: list[int], texts: int, knots: int = 32) -> list[list[float]]:
    """The inverse document frequencies of a vocabulary (sorted by frequency) as a few
    (rank, idf) points that `automl.graph.text_keras.idf_weights` interpolates.

    idf = ln((1 + texts) / (1 + frequency)) + 1 (scikit-learn's smooth idf). It rises
    with the rank; the points are log-spaced ranks plus the first and last rank of each
    frequency up to 32 (the long tail, where whole ranges of tokens share one), so the
    interpolation is exact in the tail and close at the head.
    """
    if not frequencies:
        return []
    frequency = np.asarray(frequencies, dtype="float64")
    ranks = set(np.unique(np.geomspace(1, len(frequency), knots).astype(int) - 1).tolist())
    for value in np.unique(frequency[frequency <= 32]):
        where = np.flatnonzero(frequency == value)
        ranks.update((int(where[0]), int(where[-1])))
    ranks = sorted(ranks | {0, len(frequency) - 1})
    idf = np.log((1 + texts) / (1 + frequency[ranks])) + 1
    return [[int(r), round(float(v), 6)] for r, v in zip(ranks, idf)]


def encode(texts, vocabulary: list[str], length: int) -> np.ndarray:
    """Token ids (samples, length) int32, as the model's `TextVectorization` computes them."""
    index = {token: i + 2 for i, token in enumerate(vocabulary)}
    out = np.zeros((len(texts), length), dtype="int32")
    for row, text in enumerate(texts):
        ids = [index.get(token, 1) for token in tokens(text)[:length]]
        out[row, : len(ids)] = ids
    return out


def vectorizer(vocabulary: list[str], length: int, name: str):
    """The Keras layer that turns raw strings (samples, 1) into `encode`'s token ids."""
    import keras

    return keras.layers.TextVectorization(
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        ngrams=2,
        output_mode="int",
        output_sequence_length=length,
        vocabulary=vocabulary,
        name=name,
    )
