"""ArchitectureGraph -> keras.Model, with built-in Keras layers only.

This is the one place where graphs become Keras models. Each node becomes the
layer that its type in `automl.graph.layers` makes, named `n{id}_{type}`, so a
child graph that keeps its parent's node ids can take the parent's weights layer
by layer.
"""

from __future__ import annotations

import re

import keras

from automl.graph import layers
from automl.graph.architecture import ArchitectureGraph, Node

_GRAPH_LAYER = re.compile(r"^n\d+_")


def layer_name(node: Node) -> str:
    """The Keras layer name of a graph node."""
    return f"n{node.id}_{node.type}"


def make_layer(node: Node, prefix: str = "") -> keras.layers.Layer | None:
    """A fresh Keras layer for one node (None for the input node), named `prefix` + `n{id}_{type}`."""
    return layers.get(node.type).keras_layer(node.params, prefix + layer_name(node))


def apply_graph(graph: ArchitectureGraph, x, prefix: str = "", inference: bool = False):
    """Apply the graph's layers to the Keras tensor `x`; returns the output tensor.

    Args:
        graph: the architecture.
        x: the Keras tensor the graph's input node stands for.
        prefix: goes before every layer name, so several graphs fit in one model.
        inference: leave out the layers that act only while training ("augment"),
            as an exported model does (`ArchitectureGraph.inference_graph`); the
            other layers keep their names, so a model built with them takes the
            trained model's weights by layer name and predicts the same.

    Returns:
        The output tensor.
    """
    if inference:
        graph = graph.inference_graph()
    tensors = {}
    for node_id in graph.order:
        node = graph.node(node_id)
        layer = make_layer(node, prefix)
        if layer is None:  # the input node
            tensors[node_id] = x
            continue
        ins = [tensors[i] for i in node.inputs]
        tensors[node_id] = layer(ins if layers.get(node.type).arity == "many" else ins[0])
    return tensors[graph.output_id]


def build_model(
    graph: ArchitectureGraph,
    inputs=None,
    x=None,
    name: str = "automl_model",
    inference: bool = False,
) -> keras.Model:
    """Build a functional `keras.Model` from a graph.

    Args:
        graph: the architecture.
        inputs: Keras input(s) of the model; a fresh `keras.Input` of the graph's
            input shape when None (int32 for a text graph's token ids).
        x: the tensor the graph starts from (for example `inputs` after
            preprocessing layers); `inputs` when None.
        name: the model's name.
        inference: leave out the training-only layers (see `apply_graph`).

    Returns:
        An unbuilt-weights-free functional model whose graph layers are named
        `n{id}_{type}`.
    """
    if inputs is None:
        tokens = graph.node(graph.input_id).params.get("tokens") is not None
        inputs = keras.Input(graph.input_shape, dtype="int32" if tokens else None, name="input")
    if x is None:
        x = inputs
    return keras.Model(inputs, apply_graph(graph, x, inference=inference), name=name)


def graph_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The model's graph layers by name (preprocessing layers left out)."""
    return {layer.name: layer for layer in model.layers if _GRAPH_LAYER.match(layer.name)}


def inference_model(model: keras.Model) -> keras.Model:
    """`model` without its training-only layers ("augment"), for export.

    A functional model that calls every other layer of `model` as `model` does (the
    same layer objects, so the same weights and names) and passes each training-only
    layer's input straight on: in inference it predicts what `model` predicts. It is
    not compiled; compile it to train or evaluate it. A model without such layers is
    returned as it is.

    Args:
        model: a functional model whose graph layers `apply_graph` made (with
            preprocessing, heads, ensembles or folds around them).

    Returns:
        The model without training-only layers.
    """
    from automl.graph.augment_keras import ImageAugment

    if not any(isinstance(layer, ImageAugment) for layer in model.layers):
        return model

    def call(layer, *args, **kwargs):
        return args[0] if isinstance(layer, ImageAugment) else layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
