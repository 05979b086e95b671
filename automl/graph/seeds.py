"""Starting architectures: a small CNN and a ResNet-like CNN for images; a linear model and an
MLP for tables; bag-of-tokens, embedding and convolutional models for text.

Each seed takes the input shape, the head (units and activation) and a few sizes,
so a strategy can vary widths and depths without knowing the layer types.
"""

from __future__ import annotations

from automl.graph.architecture import ArchitectureGraph, Node


class _Chain:
    """Appends nodes one after another; `skip` lets a node take extra inputs."""

    def __init__(self, input_shape, tokens: int | None = None):
        params = {"shape": list(input_shape)}
        if tokens is not None:  # a text input: token ids < tokens
            params["tokens"] = int(tokens)
        self.nodes = [Node(0, "input", params)]

    @property
    def last(self) -> int:
        return self.nodes[-1].id

    def add(self, layer_type: str, inputs: tuple[int, ...] | None = None, **params) -> int:
        node_id = len(self.nodes)
        self.nodes.append(Node(node_id, layer_type, params, inputs or (self.last,)))
        return node_id

    def conv_bn_relu(self, filters: int, kernel_size: int = 3, strides: int = 1) -> int:
        self.add("conv2d", filters=filters, kernel_size=kernel_size, strides=strides)
        self.add("batchnorm")
        return self.add("relu")

    def head(self, units: int, activation: str, dropout: float) -> ArchitectureGraph:
        if dropout > 0:
            self.add("dropout", rate=dropout)
        self.add("output", units=units, activation=activation)
        return ArchitectureGraph(self.nodes)


def small_cnn(
    input_shape,
    units: int,
    activation: str = "softmax",
    width: int = 32,
    blocks: int = 2,
    convs_per_block: int = 2,
    dropout: float = 0.25,
) -> ArchitectureGraph:
    """Blocks of conv-BN-ReLU, each block ending in 2x2 max pooling; then global pooling."""
    chain = _Chain(input_shape)
    size = min(input_shape[0], input_shape[1])
    for block in range(blocks):
        for _ in range(convs_per_block):
            chain.conv_bn_relu(width * 2**block)
        if size >= 4:
            chain.add("maxpool", pool_size=2, strides=2)
            size = (size + 1) // 2
    chain.add("gap")
    return chain.head(units, activation, dropout)


def resnet_cnn(
    input_shape,
    units: int,
    activation: str = "softmax",
    width: int = 16,
    stages: int = 2,
    blocks_per_stage: int = 1,
    dropout: float = 0.0,
) -> ArchitectureGraph:
    """A stem conv, then residual blocks (conv-BN-ReLU-conv-BN + identity, ReLU) per stage.

    Stages after the first start with a stride-2 conv-BN-ReLU that doubles the width.
    """
    chain = _Chain(input_shape)
    chain.conv_bn_relu(width)
    size = min(input_shape[0], input_shape[1])
    for stage in range(stages):
        filters = width * 2**stage
        if stage > 0:
            strides = 2 if size >= 4 else 1
            size = (size + strides - 1) // strides
            chain.conv_bn_relu(filters, strides=strides)
        for _ in range(blocks_per_stage):
            shortcut = chain.last
            chain.conv_bn_relu(filters)
            chain.add("conv2d", filters=filters, kernel_size=3)
            chain.add("batchnorm")
            chain.add("add", inputs=(chain.last, shortcut))
            chain.add("relu")
    chain.add("gap")
    return chain.head(units, activation, dropout)


def mlp(
    input_shape,
    units: int,
    activation: str = "softmax",
    width: int = 64,
    layers: int = 2,
    dropout: float = 0.1,
) -> ArchitectureGraph:
    """Dense-BN-ReLU layers of equal width, then dropout and the output layer."""
    chain = _Chain(input_shape)
    if len(input_shape) > 1:
        chain.add("flatten")
    for _ in range(layers):
        chain.add("dense", units=width)
        chain.add("batchnorm")
        chain.add("relu")
    return chain.head(units, activation, dropout)


def linear(input_shape, units: int, activation: str = "softmax") -> ArchitectureGraph:
    """The output layer on the (flattened) inputs: linear or logistic regression.

    The simplest model that can win on a small noisy table; morphisms grow it (a
    residual block adds a nonlinearity without changing its function).
    """
    chain = _Chain(input_shape)
    if len(input_shape) > 1:
        chain.add("flatten")
    return chain.head(units, activation, 0.0)


# ---------------------------------------------------------------------- text
def _text_chain(input_shape, tokens: int | None) -> _Chain:
    if tokens is None:
        raise ValueError("A text seed needs `tokens`, the vocabulary size of the token ids.")
    if len(input_shape) != 1:
        raise ValueError(f"A text input is a sequence (L,). Received: {tuple(input_shape)}")
    return _Chain(input_shape, tokens)


def bag_linear(
    input_shape,
    units: int,
    activation: str = "softmax",
    tokens=None,
    mode: str = "sublinear",
    idf=None,
) -> ArchitectureGraph:
    """The output layer on the L2-normalised bag of tokens (binary or sublinear counts,
    weighted by `idf` when given): TF-IDF + logistic regression, the text baseline."""
    chain = _text_chain(input_shape, tokens)
    chain.add("bag", tokens=int(tokens), mode=mode, idf=idf)
    return chain.head(units, activation, 0.0)


def bag_mlp(
    input_shape,
    units: int,
    activation: str = "softmax",
    tokens=None,
    width: int = 64,
    dropout: float = 0.25,
    mode: str = "sublinear",
    idf=None,
) -> ArchitectureGraph:
    """The bag of tokens, then one dense-ReLU layer, dropout and the output layer."""
    chain = _text_chain(input_shape, tokens)
    chain.add("bag", tokens=int(tokens), mode=mode, idf=idf)
    chain.add("dense", units=width)
    chain.add("relu")
    return chain.head(units, activation, dropout)


def embed_pool(
    input_shape,
    units: int,
    activation: str = "softmax",
    tokens=None,
    width: int = 64,
    length: int = 256,
    dropout: float = 0.0,
    idf=None,
) -> ArchitectureGraph:
    """Embeddings of the first `length` tokens, averaged (fastText-like), then the output.
    (`idf` is taken, and not used, as by every text seed.)"""
    chain = _text_chain(input_shape, tokens)
    chain.add("embedding", tokens=int(tokens), units=width, length=min(length, input_shape[0]))
    chain.add("gap1d")
    return chain.head(units, activation, dropout)


def conv_text(
    input_shape,
    units: int,
    activation: str = "softmax",
    tokens=None,
    width: int = 64,
    filters: int = 64,
    kernel_size: int = 5,
    blocks: int = 1,
    length: int = 256,
    dropout: float = 0.25,
    idf=None,
) -> ArchitectureGraph:
    """Embeddings of the first `length` tokens, `blocks` conv1d-ReLU layers, global max
    pooling over the sequence, dropout and the output layer (Kim's CNN for sentences).
    (`idf` is taken, and not used, as by every text seed.)"""
    chain = _text_chain(input_shape, tokens)
    chain.add("embedding", tokens=int(tokens), units=width, length=min(length, input_shape[0]))
    for _ in range(blocks):
        chain.add("conv1d", filters=filters, kernel_size=kernel_size)
        chain.add("relu")
    chain.add("gmp1d")
    return chain.head(units, activation, dropout)


SEEDS = {
    "small_cnn": small_cnn,
    "resnet_cnn": resnet_cnn,
    "mlp": mlp,
    "linear": linear,
    "bag_linear": bag_linear,
    "bag_mlp": bag_mlp,
    "embed_pool": embed_pool,
    "conv_text": conv_text,
}
