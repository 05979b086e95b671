"""ArchitectureGraph -> keras.Model, with built-in Keras layers only.

This is the one place where graphs meet Keras. Each node becomes one layer named
`n{id}_{type}`, so a child graph that keeps its parent's node ids can take the
parent's weights layer by layer.
"""

from __future__ import annotations

import re

import keras

from automl.graph.architecture import ArchitectureGraph, Node

_GRAPH_LAYER = re.compile(r"^n\d+_")


def layer_name(node: Node) -> str:
    """The Keras layer name of a graph node."""
    return f"n{node.id}_{node.type}"


def make_layer(node: Node, prefix: str = "") -> keras.layers.Layer | None:
    """A fresh Keras layer for one node (None for the input node), named `prefix` + `n{id}_{type}`."""
    p = node.params
    name = prefix + layer_name(node)
    kind = node.type
    if kind == "input":
        return None
    if kind == "conv2d":
        return keras.layers.Conv2D(
            p["filters"], p["kernel_size"], strides=p["strides"], padding="same",
            use_bias=p["use_bias"], name=name,
        )  # fmt: skip
    if kind == "sep_conv2d":
        return keras.layers.SeparableConv2D(
            p["filters"], p["kernel_size"], strides=p["strides"], padding="same",
            use_bias=p["use_bias"], name=name,
        )  # fmt: skip
    if kind == "dense":
        return keras.layers.Dense(p["units"], use_bias=p["use_bias"], name=name)
    if kind == "output":
        return keras.layers.Dense(p["units"], activation=p["activation"], name=name)
    if kind == "batchnorm":
        return keras.layers.BatchNormalization(momentum=0.9, name=name)
    if kind == "relu":
        return keras.layers.ReLU(name=name)
    if kind == "maxpool":
        return keras.layers.MaxPooling2D(p["pool_size"], p["strides"], padding="same", name=name)
    if kind == "avgpool":
        return keras.layers.AveragePooling2D(
            p["pool_size"], p["strides"], padding="same", name=name
        )
    if kind == "gap":
        return keras.layers.GlobalAveragePooling2D(name=name)
    if kind == "flatten":
        return keras.layers.Flatten(name=name)
    if kind == "dropout":
        return keras.layers.Dropout(p["rate"], name=name)
    if kind == "add":
        return keras.layers.Add(name=name)
    if kind == "concat":
        return keras.layers.Concatenate(name=name)
    raise ValueError(f"No Keras layer for node type {kind!r}.")


def apply_graph(graph: ArchitectureGraph, x, prefix: str = ""):
    """Apply the graph's layers to the Keras tensor `x`; returns the output tensor.

    `prefix` goes before every layer name, so several graphs fit in one model.
    """
    tensors = {}
    for node_id in graph.order:
        node = graph.node(node_id)
        if node.type == "input":
            tensors[node_id] = x
            continue
        layer = make_layer(node, prefix)
        ins = [tensors[i] for i in node.inputs]
        tensors[node_id] = layer(ins if node.type in ("add", "concat") else ins[0])
    return tensors[graph.output_id]


def build_model(
    graph: ArchitectureGraph, inputs=None, x=None, name: str = "automl_model"
) -> keras.Model:
    """Build a functional `keras.Model` from a graph.

    Args:
        graph: the architecture.
        inputs: Keras input(s) of the model; a fresh `keras.Input` of the graph's
            input shape when None.
        x: the tensor the graph starts from (for example `inputs` after
            preprocessing layers); `inputs` when None.
        name: the model's name.

    Returns:
        An unbuilt-weights-free functional model whose graph layers are named
        `n{id}_{type}`.
    """
    if inputs is None:
        inputs = keras.Input(shape=graph.input_shape, name="input")
    if x is None:
        x = inputs
    return keras.Model(inputs, apply_graph(graph, x), name=name)


def graph_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The model's graph layers by name (preprocessing layers left out)."""
    return {layer.name: layer for layer in model.layers if _GRAPH_LAYER.match(layer.name)}
