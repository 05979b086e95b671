"""Function-preserving weight transfer from a trained parent model to a morphed child.

The child graph's history ends with the operations that turned the parent graph
into it. `inherit_weights` reads the parent's weights as numpy arrays (with
`layer.get_weights()`, so a parent that was saved and loaded works the same),
replays the operations on them one by one, and sets the child's layers:

- deepen: new layers start as the identity (`LayerType.initial_weights`):
  identity kernels (centre tap for convs), zero biases; BatchNorm with gamma 1,
  beta 0, moving mean 0 and moving variance 1 - epsilon, which is the identity
  in inference mode. A residual block's second dense starts at zero, so
  x + dense(relu(dense(x))) is x.
- widen: producers' new units copy old ones (Net2Net); every consumer's weights
  for a channel copied c times are divided by c; channel-wise weights
  (BatchNorm) are copied. Where each layer type keeps its channels is its
  `WeightLayout` in `automl.graph.layers`.
- add-skip: a zero 1x1 conv; concat-skip: a 1x1 conv that is the identity on
  the original channels and zero on the skip channels.
- text-branch: a small random embedding (`LayerType.initial_weights`); the output
  layer's kernel gets zero rows for the pooled embeddings it now also takes.
- augment: nothing to copy or initialise; the augment layer has no weights and is
  the identity in inference.

Keras is imported only inside `inherit_weights`.
"""

from __future__ import annotations

import numpy as np

from automl.graph import layers
from automl.graph.architecture import ArchitectureGraph
from automl.morphism.area import effective_area
from automl.morphism.operators import apply_op

Weights = dict[int, list[np.ndarray]]
WIDEN_MODES = ("split", "zero")


def inherit_weights(
    parent_model,
    parent_graph: ArchitectureGraph,
    child_model,
    child_graph: ArchitectureGraph,
    noise_std: float = 0.0,
    rng: np.random.Generator | None = None,
    widen_noise: float = 0.0,
    widen_mode: str = "split",
) -> None:
    """Set the child model's graph layers so that it computes the parent's function.

    Args:
        parent_model: the trained parent, built from `parent_graph` by
            `automl.graph.builder.build_model` (possibly saved and loaded since).
        parent_graph: the parent's graph.
        child_model: the child, built from `child_graph` the same way; layers
            outside the graph (for example preprocessing) are left alone.
        child_graph: a graph whose history is the parent's history followed by
            the morphisms to replay.
        noise_std: standard deviation of Gaussian noise added to the new
            weights (copied units, new layers) to break symmetry; 0 keeps the
            function exactly (in inference mode).
        rng: random generator for the noise.
        widen_noise: noise on the incoming weights of the units a widen copies,
            relative to the standard deviation of that layer's kernel. Copied units
            with equal weights get equal gradients and stay copies; this small noise
            lets them learn apart (the child then computes the parent's function to
            within about this fraction of a unit's contribution).
        widen_mode: where a widen's new units start. "split": a copied unit's
            outgoing weights are divided among its copies (Net2Net's function-
            preserving widening). "zero": the old units keep their outgoing weights
            and the copies start with zero outgoing weights (Auto-Keras's widening):
            the function is kept exactly whatever `widen_noise`, and the copies learn
            apart from the first step because their outgoing weights differ.

    Raises:
        ValueError: if the child's history does not extend the parent's, the
            replayed operations do not give the child graph, or a layer is missing.
    """
    from automl.graph.builder import graph_layers, layer_name

    depth = len(parent_graph.history)
    if child_graph.history[:depth] != parent_graph.history:
        raise ValueError(
            "The child graph's history does not start with the parent graph's history; "
            "morph the parent graph (or replay the operations with apply_op) to get the child."
        )
    if widen_mode not in WIDEN_MODES:
        raise ValueError(f"widen_mode must be one of {WIDEN_MODES}; received {widen_mode!r}.")
    if (noise_std or widen_noise) and rng is None:
        rng = np.random.default_rng()
    parent_layers = graph_layers(parent_model)
    child_layers = graph_layers(child_model)
    weights: Weights = {}
    for node_id, node in parent_graph.nodes.items():
        name = layer_name(node)
        if node.type == "input":
            continue
        if name not in parent_layers:
            raise ValueError(f"The parent model has no layer {name!r} for node {node_id}.")
        weights[node_id] = [np.array(w) for w in parent_layers[name].get_weights()]
    transfer = _Transfer(noise_std, rng, widen_noise, widen_mode)
    graph = parent_graph
    for op in child_graph.history[depth:]:
        child = apply_op(graph, op)
        transfer.apply(graph, child, op, weights)
        graph = child
    if graph.key() != child_graph.key() or set(graph.nodes) != set(child_graph.nodes):
        raise ValueError(
            "Replaying the child's history on the parent graph does not give the child graph."
        )
    for node_id, node in child_graph.nodes.items():
        layer = child_layers.get(layer_name(node))
        if layer is None:
            if node.type == "input":
                continue
            raise ValueError(f"The child model has no layer {layer_name(node)!r}.")
        if layer.weights:
            layer.set_weights(weights[node_id])


class _Transfer:
    """Weight transforms per operation, on a dict node id -> list of numpy arrays."""

    def __init__(self, noise_std: float, rng, widen_noise: float = 0.0, widen_mode: str = "split"):
        self.noise_std = noise_std
        self.rng = rng
        self.widen_noise = widen_noise
        self.widen_mode = widen_mode

    def noise(self, shape) -> np.ndarray | float:
        if not self.noise_std:
            return 0.0
        return self.rng.normal(0.0, self.noise_std, size=shape).astype(np.float32)

    def apply(self, graph: ArchitectureGraph, child: ArchitectureGraph, op: dict, w: Weights):
        new_ids = [i for i in child.order if i not in graph.nodes]
        if op["op"] == "widen":
            self.widen(graph, op, w)
            return
        identity = op["op"] != "add_skip"  # deepen: identity; concat-skip: identity on `end`
        # a residual block's last dense (the one before its add) starts at zero
        zero = new_ids[-2] if op.get("layer") == "residual" else None
        for node_id in new_ids:
            node = child.node(node_id)
            cin = child.shape(node.inputs[0])[-1]
            keep = identity and node_id != zero
            arrays = layers.get(node.type).initial_weights(node.params, cin, keep)
            # noise on the kernels only (biases and BatchNorm statistics stay exact)
            w[node_id] = [a + self.noise(a.shape) if a.ndim > 1 else a for a in arrays]
        if op["op"] == "text_branch":  # the output layer: zero rows for the new channels
            kernel, *rest = w[child.output_id]
            extra = child.shape(child.node(child.output_id).inputs[0])[-1] - kernel.shape[0]
            zeros = np.zeros((extra, kernel.shape[1]), kernel.dtype)
            w[child.output_id] = [np.concatenate([kernel, zeros]), *rest]

    def widen(self, graph: ArchitectureGraph, op: dict, w: Weights) -> None:
        old = graph.node(op["node"]).width
        area = effective_area(graph, op["node"], list(range(old)) + list(op["copy_from"]))
        for node_id in area.producers:  # output units copy old ones
            m = np.asarray(area.maps[node_id])
            new_units = np.arange(len(m)) >= graph.shape(node_id)[-1]
            arrays = w[node_id]
            first = self.layout(graph, node_id).units_from  # the kernel; later arrays too
            for index in range(first, len(arrays)):
                grown = arrays[index][..., m]
                if index == first:
                    grown[..., new_units] += self.noise(grown[..., new_units].shape)
                    if self.widen_noise:
                        scale = self.widen_noise * float(np.std(arrays[index]) or 1.0)
                        shape = grown[..., new_units].shape
                        grown[..., new_units] += self.rng.normal(0.0, scale, shape).astype(
                            grown.dtype
                        )
                arrays[index] = grown
        for node_id, m in area.maps.items():
            if self.layout(graph, node_id).channelwise:
                w[node_id] = [a[..., np.asarray(m)] for a in w[node_id]]
        for node_id in area.consumers:  # input channels: copy, then divide or zero the copies
            m = np.asarray(area.maps[graph.node(node_id).inputs[0]])
            if self.widen_mode == "split":  # each copy carries 1 / (copy count) of the weight
                scale = (1.0 / np.bincount(m)[m]).astype(np.float32)
            else:  # an old channel keeps its weight (it comes before its copies), copies get 0
                scale = np.zeros(len(m), dtype=np.float32)
                scale[np.unique(m, return_index=True)[1]] = 1.0
            arrays = w[node_id]
            for index, axis, scaled in self.layout(graph, node_id).input_axes:
                grown = np.take(arrays[index], m, axis=axis)
                if scaled:
                    shape = [1] * grown.ndim
                    shape[axis] = -1
                    grown = grown * scale.reshape(shape)
                arrays[index] = grown

    @staticmethod
    def layout(graph: ArchitectureGraph, node_id: int) -> layers.WeightLayout:
        return layers.get(graph.node(node_id).type).weights
