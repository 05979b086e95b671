"""Layer types for text: token sequences in, (T, C) sequences through, flat vectors out.

A text graph's input is `Node(0, "input", {"shape": [L], "tokens": V})`: a sequence of L
token ids (0 padding, 1 out-of-vocabulary, 2..V-1 the vocabulary), whose shape is a
`TokenShape`. Only "bag" and "embedding" take it; every other type refuses it. Between
the embedding and the global pooling the tensors are sequences (T, C), which the
channel-wise types (batchnorm, relu, dropout, add, concat) handle like any other.

- "bag": counts of each id per document, binary or log1p, L2-normalised: (L,) -> (V,).
- "embedding": the first `length` ids (all if None) looked up in a (V, units) table.
- "conv1d": a 1-D convolution with padding "same", like "conv2d" one dimension down.
- "gap1d", "gmp1d": global average / max pooling over the sequence.
- "attention": x + Wo . MultiHeadSelfAttention(LayerNorm(x)), the identity when Wo is zero.

The custom Keras layers ("bag", "embedding", "attention") live in
`automl.graph.text_keras`, imported only when a Keras layer is made. Pure Python and
numpy here.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from automl.graph.layers import (
    ANY,
    FIXED,
    KEPT,
    NON_NEGATIVE,
    PASS,
    PRODUCE,
    InputAxis,
    LayerType,
    Params,
    Shape,
    WeightLayout,
    _positive,
    register,
)

BAG_MODES = ("binary", "sublinear")


def _tokens(shape: Shape) -> Shape:
    if len(shape) != 1:
        raise ValueError(f"needs a sequence of token ids (L,). Received: shape={shape}")
    return shape


def _sequence(shape: Shape) -> Shape:
    if len(shape) != 2:
        raise ValueError(f"needs a sequence (T, C) input. Received: shape={shape}")
    return shape


def key_dim(channels: int, heads: int) -> int:
    """The per-head size of an attention layer's queries, keys and values."""
    return max(channels // heads, 8)


class _TextKeras(LayerType):
    """A type whose Keras layer is `keras_class` of `automl.graph.text_keras`."""

    def keras_layer(self, params: Params, name: str) -> Any:
        from automl.graph import text_keras  # imports Keras: only when a layer is made

        return getattr(text_keras, self.keras_class)(name=name, **self.keras_kwargs(params))


@register
class Bag(_TextKeras):
    name = "bag"
    defaults = {"tokens": None, "mode": "binary", "idf": None}
    channels = FIXED
    sign = NON_NEGATIVE
    label_params = (("mode", ""),)
    keras_class = "BagOfTokens"
    takes_tokens = True

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        _tokens(ins[0])
        if params["mode"] not in BAG_MODES:
            raise ValueError(f"mode must be one of {BAG_MODES}. Received: {params['mode']!r}")
        return (_positive(params["tokens"], "tokens"),)

    def keras_kwargs(self, params: Params) -> Params:
        return {"tokens": params["tokens"], "mode": params["mode"], "idf": params["idf"]}


@register
class Embedding(_TextKeras):
    name = "embedding"
    defaults = {"tokens": None, "units": 64, "length": None}
    channels = PRODUCE
    width_param = "units"
    label_params = (("length", "l"),)
    weights = WeightLayout(units_from=0)  # [table (tokens, units)]
    keras_class = "TokenEmbedding"
    takes_tokens = True
    init_scale: ClassVar[float] = 0.05

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        length = _tokens(ins[0])[0]
        if params["length"] is not None:
            length = min(_positive(params["length"], "length"), length)
        _positive(params["tokens"], "tokens")
        return (length, _positive(params["units"], "units"))

    def count_params(self, params: Params, ins: list[Shape]) -> int:
        return params["tokens"] * params["units"]

    def keras_kwargs(self, params: Params) -> Params:
        return {key: params[key] for key in ("tokens", "units", "length")}

    def initial_weights(self, params: Params, channels: int, identity: bool) -> list[np.ndarray]:
        """A small random table (the same for the same sizes), whatever `identity`: an
        embedding starts a new branch whose consumer's weights are zero, and a zero table
        would get no gradient."""
        rng = np.random.default_rng(params["units"])
        shape = (params["tokens"], params["units"])
        return [rng.uniform(-self.init_scale, self.init_scale, shape).astype(np.float32)]


@register
class Conv1D(LayerType):
    name = "conv1d"
    defaults = {"filters": None, "kernel_size": 3, "strides": 1, "use_bias": True}
    channels = PRODUCE
    consumes = True
    width_param = "filters"
    label_params = (("kernel_size", "k"), ("strides", "s"))
    weights = WeightLayout(units_from=0, input_axes=(InputAxis(0, 1, True),))
    keras_class = "Conv1D"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        length = _sequence(ins[0])[0]
        strides = _positive(params["strides"], "strides")
        _positive(params["kernel_size"], "kernel_size")
        return (-(-length // strides), _positive(params["filters"], "filters"))  # "same"

    def count_params(self, params: Params, ins: list[Shape]) -> int:
        k, filters = params["kernel_size"], params["filters"]
        return k * ins[0][-1] * filters + (filters if params["use_bias"] else 0)

    def keras_kwargs(self, params: Params) -> Params:
        kwargs = {key: params[key] for key in ("filters", "kernel_size", "strides", "use_bias")}
        return {**kwargs, "padding": "same"}

    def initial_weights(self, params: Params, channels: int, identity: bool) -> list[np.ndarray]:
        k, filters = params["kernel_size"], params["filters"]
        kernel = np.zeros((k, channels, filters), np.float32)
        if identity:
            kernel[k // 2] = np.eye(channels, filters, dtype=np.float32)
        return [kernel] + ([np.zeros(filters, np.float32)] if params["use_bias"] else [])


@register
class GlobalAvgPool1D(LayerType):
    name = "gap1d"
    channels = PASS
    sign = KEPT
    keras_class = "GlobalAveragePooling1D"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        return (_sequence(ins[0])[1],)


@register
class GlobalMaxPool1D(GlobalAvgPool1D):
    name = "gmp1d"
    keras_class = "GlobalMaxPooling1D"


@register
class Attention(_TextKeras):
    """Pre-norm multi-head self-attention with a residual: x + Wo . MHSA(LayerNorm(x)).

    Its weights: LayerNorm gamma and beta (C,), then kernel (C, heads, key_dim) and bias
    (heads, key_dim) of the queries, keys and values, then the output kernel
    (heads, key_dim, C) and bias (C,). Its channels cannot grow (FIXED): a widening
    whose effective area reaches it is refused.
    """

    name = "attention"
    defaults = {"heads": 2}
    channels = FIXED
    sign = ANY
    label_params = (("heads", "h"),)
    weights = WeightLayout(input_axes=tuple(InputAxis(i, 0, True) for i in (2, 4, 6)))
    keras_class = "SelfAttention"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        _positive(params["heads"], "heads")
        return _sequence(ins[0])

    def count_params(self, params: Params, ins: list[Shape]) -> int:
        channels, heads = ins[0][-1], params["heads"]
        inner = heads * key_dim(channels, heads)
        return 2 * channels + 3 * (channels * inner + inner) + inner * channels + channels

    def keras_kwargs(self, params: Params) -> Params:
        return {"heads": params["heads"]}

    def initial_weights(self, params: Params, channels: int, identity: bool) -> list[np.ndarray]:
        """The identity: a zero output projection; random queries, keys and values (the same
        for the same sizes), so that the projection gets a gradient."""
        if not identity:
            raise ValueError("An attention layer cannot start with a zero output.")
        heads = params["heads"]
        dim = key_dim(channels, heads)
        rng = np.random.default_rng(channels)
        limit = np.sqrt(6.0 / (channels + heads * dim))  # Glorot uniform
        arrays = [np.ones(channels, np.float32), np.zeros(channels, np.float32)]
        for _ in range(3):  # queries, keys, values
            kernel = rng.uniform(-limit, limit, (channels, heads, dim)).astype(np.float32)
            arrays += [kernel, np.zeros((heads, dim), np.float32)]
        return arrays + [
            np.zeros((heads, dim, channels), np.float32),
            np.zeros(channels, np.float32),
        ]
