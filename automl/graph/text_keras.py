"""The Keras layers of the text layer types ("bag", "embedding", "attention").

Written with `keras.ops` only, so they run and compile on TensorFlow, JAX and PyTorch,
and registered as serializable (package "automl"), so a saved model loads after
`import automl`. Token ids are cast to int32; ids outside [0, tokens) count as
out-of-vocabulary (1), negative ones as padding (0).

`automl.graph.text_layers` imports this module only when it makes a Keras layer.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

EPSILON = 1e-12  # an all-padding row of a bag has norm 0 and stays zero


def _ids(x, tokens: int):
    ids = ops.cast(x, "int32")
    ids = ops.where(ids >= tokens, ops.ones_like(ids), ids)
    return ops.maximum(ids, 0)


def idf_weights(tokens: int, idf) -> np.ndarray:
    """The weight of each token id: 0 for padding, 1 out of the vocabulary, and the
    vocabulary's idf interpolated from its (rank, idf) points (`automl.data.text.idf_knots`)."""
    weights = np.ones(tokens, dtype="float32")
    weights[0] = 0.0
    if tokens > 2:
        ranks, values = np.asarray(idf, dtype="float64").T
        weights[2:] = np.interp(np.arange(tokens - 2), ranks, values)
    return weights


@keras.saving.register_keras_serializable(package="automl")
class BagOfTokens(keras.layers.Layer):
    """Per-document counts of each token id, binary or sublinear, idf-weighted, L2-normalised.

    (B, L) token ids -> (B, tokens): column c holds min(count of c, 1) ("binary") or
    log(1 + count of c) ("sublinear"), the padding id 0 never counted, times c's idf
    when `idf` points are given (TF-IDF), then each row divided by its Euclidean norm. The counts are one segment sum over row * tokens + id,
    so no (B, L, tokens) one-hot tensor is made.

    Args:
        tokens: the vocabulary size V.
        mode: "binary" or "sublinear".
        idf: (rank, idf) points of the vocabulary (`automl.data.text.idf_knots`), or None.
    """

    def __init__(self, tokens: int, mode: str = "binary", idf=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("binary", "sublinear"):
            raise ValueError(f"mode must be 'binary' or 'sublinear'. Received: {mode!r}")
        self.tokens = int(tokens)
        self.mode = mode
        self.idf = [list(point) for point in idf] if idf else None
        self._weights = idf_weights(self.tokens, self.idf) if self.idf else None

    def call(self, inputs):
        ids = _ids(inputs, self.tokens)
        batch = ops.shape(ids)[0]
        rows = ops.expand_dims(ops.arange(batch, dtype="int32"), 1) * self.tokens
        segments = ops.reshape(rows + ids, (-1,))
        ones = ops.reshape(ops.cast(ids > 0, self.compute_dtype), (-1,))
        counts = ops.segment_sum(ones, segments, num_segments=batch * self.tokens)
        counts = ops.reshape(counts, (-1, self.tokens))
        values = ops.minimum(counts, 1.0) if self.mode == "binary" else ops.log1p(counts)
        if self._weights is not None:  # TF-IDF: each token weighted by its idf
            values = values * ops.convert_to_tensor(self._weights, dtype=self.compute_dtype)
        norm = ops.sqrt(ops.maximum(ops.sum(values * values, axis=-1, keepdims=True), EPSILON))
        return values / norm

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.tokens)

    def get_config(self):
        config = {"tokens": self.tokens, "mode": self.mode, "idf": self.idf}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="automl")
class TokenEmbedding(keras.layers.Layer):
    """The first `length` token ids (all if None) looked up in a (tokens, units) table.

    (B, L) -> (B, min(length, L), units).
    """

    def __init__(self, tokens: int, units: int = 64, length: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.tokens = int(tokens)
        self.units = int(units)
        self.length = None if length is None else int(length)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.tokens, self.units),
            initializer=keras.initializers.RandomUniform(-0.05, 0.05),
            name="embeddings",
        )

    def call(self, inputs):
        ids = _ids(inputs, self.tokens)
        if self.length is not None:
            ids = ids[:, : self.length]
        return ops.take(self.embeddings, ids, axis=0)

    def compute_output_shape(self, input_shape):
        length = input_shape[1]
        if self.length is not None and length is not None:
            length = min(length, self.length)
        return (input_shape[0], length, self.units)

    def get_config(self):
        config = {"tokens": self.tokens, "units": self.units, "length": self.length}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="automl")
class SelfAttention(keras.layers.Layer):
    """Pre-norm multi-head self-attention with a residual: x + Wo . MHSA(LayerNorm(x)).

    (B, T, C) -> (B, T, C); key_dim = max(C // heads, 8). The weights, in `get_weights()`
    order: LayerNorm gamma, beta; the queries', keys' and values' kernel (C, heads,
    key_dim) and bias (heads, key_dim); the output kernel (heads, key_dim, C) and bias
    (C,). With a zero output kernel and bias the layer is the identity.

    Args:
        heads: number of attention heads.
    """

    def __init__(self, heads: int = 2, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.heads = int(heads)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.key_dim = max(channels // self.heads, 8)
        inner = (self.heads, self.key_dim)
        glorot, zeros = keras.initializers.GlorotUniform(), keras.initializers.Zeros()
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer=zeros, name="beta")
        self.projections = []
        for name in ("query", "key", "value"):
            kernel = self.add_weight(shape=(channels, *inner), initializer=glorot, name=name)
            bias = self.add_weight(shape=inner, initializer=zeros, name=f"{name}_bias")
            self.projections.append((kernel, bias))
        self.out_kernel = self.add_weight(
            shape=(*inner, channels), initializer=glorot, name="output"
        )
        self.out_bias = self.add_weight(shape=(channels,), initializer=zeros, name="output_bias")

    def call(self, inputs):
        mean = ops.mean(inputs, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(inputs - mean), axis=-1, keepdims=True)
        h = (inputs - mean) * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta
        q, k, v = (ops.einsum("btc,chd->bthd", h, w) + b for w, b in self.projections)
        scores = ops.einsum("bthd,bshd->bhts", q, k) / math.sqrt(self.key_dim)
        weights = ops.softmax(scores, axis=-1)
        attended = ops.einsum("bhts,bshd->bthd", weights, v)
        return inputs + ops.einsum("bthd,hdc->btc", attended, self.out_kernel) + self.out_bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "epsilon": self.epsilon}
