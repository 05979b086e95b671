"""What a layer graph costs to train, from its shapes alone (no Keras).

Training time per epoch grows with the multiply-adds of a forward pass and with
the activations the backward pass keeps, not with the parameter count alone: a
3x3 convolution on a 28x28 map costs 784 times its weights, a dense layer once.
These counts are the features of the search's cost model
(`automl.search.cost.CostModel`), which learns seconds from them.
"""

from __future__ import annotations

import math

import numpy as np

from automl.graph.architecture import ArchitectureGraph


def multiply_adds(graph: ArchitectureGraph) -> int:
    """Multiply-adds of one forward pass of one sample, approximately.

    A layer's weights are applied once per output position: for a node whose output
    is a feature map (H, W, C) that is its parameter count times H * W (exact for
    convolutions, close for batch normalisation), otherwise its parameter count.
    """
    total = 0
    for node_id in graph.order:
        params = graph.node_params(node_id)
        shape = graph.shape(node_id)
        total += params * (shape[0] * shape[1] if len(shape) == 3 else 1)
    return int(total)


def activations(graph: ArchitectureGraph) -> int:
    """Values all layers output for one sample (what training keeps for the backward pass)."""
    return int(sum(math.prod(graph.shape(i)) for i in graph.order))


def cost_features(graph: ArchitectureGraph) -> np.ndarray:
    """log(1 + x) of (parameters, multiply-adds, activations) per sample."""
    counts = [graph.count_params(), multiply_adds(graph), activations(graph)]
    return np.log1p(np.array(counts, dtype=float))
