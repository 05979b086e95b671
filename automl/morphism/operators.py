"""Network morphisms on `ArchitectureGraph`s: deepen, widen, add-skip and concat-skip
(`automl.morphism.skips`), text-branch (`automl.morphism.text`) and augment
(`automl.morphism.augment`), and their replay and random sampling.

Every operator is a pure function: it returns a new graph whose history ends in
a JSON-able dict that `apply_op` replays exactly, so a sequence of morphisms
found on a weightless graph can be replayed on a trained parent. Existing node
ids are kept and new nodes take fresh ids (`graph.next_id` upwards), so
`automl.morphism.weights.inherit_weights` can copy weights layer by layer and
initialise the new layers so that the child computes the parent's function.

Pure Python: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from automl.graph import layers
from automl.graph.architecture import ArchitectureGraph, Node
from automl.morphism import augment as augment_morphism
from automl.morphism import text as text_morphism
from automl.morphism.area import descendants, effective_area, non_negative
from automl.morphism.augment import feeds_augment
from automl.morphism.edits import check_node, rewired
from automl.morphism.skips import add_skip, concat_skip

OPERATIONS = ("deepen", "widen", "add_skip", "concat_skip")  # on image and table graphs
TEXT_OPERATIONS = OPERATIONS + ("text_branch",)  # on text graphs
IMAGE_AUGMENT_OPERATIONS = OPERATIONS + ("augment",)  # on images of 16x16 pixels or more
# what `deepen` may insert: name -> layer types, in order
DEEPEN_LAYERS: dict[str, tuple[str, ...]] = {
    "conv2d": ("conv2d",),
    "conv_block": ("conv2d", "batchnorm", "relu"),
    "batchnorm": ("batchnorm",),
    "relu": ("relu",),
    "dense": ("dense",),
    "dense_block": ("dense", "batchnorm", "relu"),
    "dropout": ("dropout",),
    "residual": ("dense", "relu", "dense", "add"),  # x + dense(relu(dense(x))), zero at first
    "conv1d": ("conv1d",),  # sequences (T, C)
    "conv1d_block": ("conv1d", "relu"),
    "attention": ("attention",),  # x + attention(x), zero at first
}
SEQUENCE_LAYERS = ("conv1d", "conv1d_block", "attention")
KERNEL_SIZES = (1, 3, 5)
DEFAULT_MAX_MODEL_SIZE = 2**25
# layer types whose units `widen` can grow
WIDENABLE = tuple(name for name in layers.names() if layers.get(name).channels == layers.PRODUCE)


# ---------------------------------------------------------------------- deepen
def deepen_error(
    graph: ArchitectureGraph,
    after: int,
    layer: str,
    kernel_size: int = 3,
    nonneg: dict[int, bool] | None = None,
) -> str | None:
    """Why `deepen(graph, after, layer, kernel_size)` is invalid, or None if it is valid."""
    if layer not in DEEPEN_LAYERS:
        return f"layer must be one of {sorted(DEEPEN_LAYERS)}. Received: layer={layer!r}"
    node = graph.node(after)
    if node.type == "output":
        return "Cannot insert a layer after the output layer."
    if feeds_augment(graph, after):
        return f"Insert layers after the augment node, not after node {after}, which feeds it."
    if isinstance(graph.shape(after), layers.TokenShape):
        return f"Node {after} holds token ids; insert layers after its 'bag' or 'embedding'."
    if node.type == "bag" and layer in ("relu", "batchnorm"):  # always the identity there
        return f"A {layer} layer after a bag of tokens (node {after}) would change nothing."
    rank = len(graph.shape(after))
    if layer in SEQUENCE_LAYERS:
        if rank != 2:
            return f"A {layer} layer needs a sequence (T, C); node {after} is {graph.shape(after)}."
    elif layer.startswith("conv") and rank != 3:
        return f"A conv layer needs an image tensor; node {after} has shape {graph.shape(after)}."
    if (layer.startswith("dense") or layer in ("dropout", "residual")) and rank != 1:
        return (
            f"A {layer} layer goes in the dense part; node {after} has shape "
            f"{graph.shape(after)}. Insert it after 'gap' or 'flatten'."
        )
    if layer.startswith("conv") and kernel_size not in KERNEL_SIZES:
        return f"kernel_size must be one of {KERNEL_SIZES}. Received: kernel_size={kernel_size!r}"
    if layer in ("relu", "conv_block", "dense_block", "conv1d_block"):
        nonneg = nonneg if nonneg is not None else non_negative(graph)
        if not nonneg[after]:
            return (
                f"Inserting a ReLU after node {after} ({node.type}) would change the network's "
                "function; insert it where the tensor is non-negative (after a ReLU)."
            )
    return None


def deepen(
    graph: ArchitectureGraph,
    after: int,
    layer: str = "conv_block",
    kernel_size: int = 3,
    rate: float = 0.25,
) -> ArchitectureGraph:
    """Insert identity-initialisable layer(s) after node `after`.

    Args:
        graph: the parent graph.
        after: id of the node whose output the new layers take; its consumers
            take the new layers' output instead.
        layer: one of `DEEPEN_LAYERS`: "conv2d" (k x k, as many filters as
            channels), "conv_block" (conv2d, BN, ReLU), "batchnorm", "relu",
            "dense", "dense_block" (dense, BN, ReLU), "dropout", or "residual"
            (x + dense(relu(dense(x))) with the last dense zero, so it goes
            anywhere in the dense part and can add a nonlinearity to a linear model);
            after a sequence (T, C): "conv1d", "conv1d_block" (conv1d, ReLU) or
            "attention" (x + attention(x), its output projection zero).
        kernel_size: kernel size of a conv layer, 1, 3 or 5.
        rate: dropout rate of a dropout layer.

    Returns:
        The child graph.

    Raises:
        ValueError: if the layer cannot go there without changing the function
            (for example a ReLU after a tensor that may be negative).
    """
    after = check_node(graph, after, "after")
    error = deepen_error(graph, after, layer, kernel_size)
    if error:
        raise ValueError(error)
    width = graph.shape(after)[-1]
    op: dict[str, Any] = {"op": "deepen", "after": after, "layer": layer}
    params_of = {
        "conv2d": {"filters": width, "kernel_size": kernel_size},
        "conv1d": {"filters": width, "kernel_size": kernel_size},
        "dense": {"units": width},
    }
    if layer.startswith("conv"):
        op["kernel_size"] = kernel_size
    if layer == "dropout":
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1). Received: rate={rate!r}")
        op["rate"] = rate
        params_of["dropout"] = {"rate": rate}
    new_nodes: list[Node] = []
    previous = after
    for offset, kind in enumerate(DEEPEN_LAYERS[layer]):
        node_id = graph.next_id + offset
        inputs = (after, previous) if kind == "add" else (previous,)
        new_nodes.append(Node(node_id, kind, dict(params_of.get(kind, {})), inputs))
        previous = node_id
    # old consumers of `after` take the last new node; the first new node takes `after`
    return graph.with_nodes(rewired(graph, after, previous, new_nodes), op)


# ---------------------------------------------------------------------- widen
def widen(
    graph: ArchitectureGraph,
    node: int,
    width: int | None = None,
    copy_from: list[int] | None = None,
    rng: np.random.Generator | None = None,
) -> ArchitectureGraph:
    """Give a conv or dense layer more units, each new unit a copy of an old one.

    Every layer in the effective area (see `automl.morphism.area`) changes with
    it: other producers sharing the channels through Add grow the same way,
    BN / pooling / Concatenate pass the channels on, consumers take more inputs.

    Args:
        graph: the parent graph.
        node: id of a conv2d, sep_conv2d, dense, conv1d or embedding node (not the output).
        width: the new number of units; twice the old one when None.
        copy_from: for each new unit, the old unit it copies; random (with `rng`)
            or round-robin when None.
        rng: random generator for `copy_from`.

    Returns:
        The child graph.

    Raises:
        ValueError: if the node cannot be widened or the arguments do not fit.
    """
    node = check_node(graph, node, "node")
    target = graph.node(node)
    if target.type not in WIDENABLE:
        raise ValueError(
            f"Only {list(WIDENABLE)} layers can be widened. "
            f"Received: node {node} of type {target.type!r}"
        )
    old = target.width
    width = 2 * old if width is None else int(width)
    if width <= old:
        raise ValueError(f"width must exceed the current {old}. Received: width={width}")
    if copy_from is None:
        extra = width - old
        copy_from = (
            [int(c) for c in rng.integers(0, old, size=extra)]
            if rng is not None
            else [i % old for i in range(extra)]
        )
    copy_from = [int(c) for c in copy_from]
    if len(copy_from) != width - old or any(not 0 <= c < old for c in copy_from):
        raise ValueError(
            f"copy_from needs {width - old} unit indices in [0, {old}). Received: {copy_from}"
        )
    area = effective_area(graph, node, list(range(old)) + copy_from)
    nodes = []
    for n in graph.nodes.values():
        if n.id in area.producers:
            key = layers.get(n.type).width_param
            n = Node(n.id, n.type, {**n.params, key: len(area.maps[n.id])}, n.inputs)
        nodes.append(n)
    op = {"op": "widen", "node": node, "width": width, "copy_from": copy_from}
    return graph.with_nodes(nodes, op)


# ---------------------------------------------------------------------- replay
_APPLY: dict[str, tuple[Callable[..., ArchitectureGraph], tuple[str, ...]]] = {
    "deepen": (deepen, ("after", "layer", "kernel_size", "rate")),
    "widen": (widen, ("node", "width", "copy_from")),
    "add_skip": (add_skip, ("start", "end")),
    "concat_skip": (concat_skip, ("start", "end")),
    "text_branch": (text_morphism.text_branch, ("units", "length")),
    "augment": (augment_morphism.augment, augment_morphism.ARGUMENTS),
}


def apply_op(graph: ArchitectureGraph, op: dict) -> ArchitectureGraph:
    """Replay one recorded operation (an entry of `graph.history`) on `graph`.

    Args:
        graph: the graph to morph.
        op: a dict as recorded by a morphism, e.g. `{"op": "widen", "node": 3, ...}`.

    Returns:
        The child graph, with `op` appended to its history.

    Raises:
        ValueError: if the operation is unknown or does not fit the graph.
    """
    if not isinstance(op, dict) or op.get("op") not in _APPLY:
        raise ValueError(f"op must be a dict with 'op' in {list(_APPLY)}. Received: {op!r}")
    function, allowed = _APPLY[op["op"]]
    unknown = set(op) - set(allowed) - {"op"}
    if unknown:
        raise ValueError(f"Unknown arguments {sorted(unknown)} for {op['op']}. Received: {op!r}")
    return function(graph, **{k: v for k, v in op.items() if k != "op"})


def apply_ops(graph: ArchitectureGraph, ops: list[dict]) -> ArchitectureGraph:
    """Replay a sequence of operations in order."""
    for op in ops:
        graph = apply_op(graph, op)
    return graph


# ---------------------------------------------------------------------- sampling
def random_op(graph: ArchitectureGraph, kind: str, rng: np.random.Generator) -> dict | None:
    """A random valid operation of type `kind` on `graph`, or None if there is none."""
    if kind == "deepen":
        nonneg = non_negative(graph)
        choices = [
            (after, layer)
            for after in graph.order
            for layer in DEEPEN_LAYERS
            if deepen_error(graph, after, layer, 3, nonneg) is None
        ]
        if not choices:
            return None
        after, layer = choices[rng.integers(len(choices))]
        op: dict[str, Any] = {"op": "deepen", "after": after, "layer": layer}
        if layer.startswith("conv"):
            op["kernel_size"] = int(rng.choice(KERNEL_SIZES))
        if layer == "dropout":
            op["rate"] = 0.25
        return op
    if kind == "widen":
        candidates = [i for i in graph.order if graph.node(i).type in WIDENABLE]
        for index in rng.permutation(len(candidates)):
            node = candidates[index]
            old = graph.node(node).width
            copy_from = [int(c) for c in rng.integers(0, old, size=old)]
            try:
                effective_area(graph, node, list(range(old)) + copy_from)
            except ValueError:
                continue
            return {"op": "widen", "node": node, "width": 2 * old, "copy_from": copy_from}
        return None
    if kind in ("add_skip", "concat_skip"):
        images = [
            i for i in graph.order if len(graph.shape(i)) == 3 and not feeds_augment(graph, i)
        ]
        for index in rng.permutation(len(images)):
            start = images[index]
            ends = [
                i
                for i in descendants(graph, start)
                if len(graph.shape(i)) == 3 and graph.node(i).type != "output"
            ]
            if ends:
                end = sorted(ends)[rng.integers(len(ends))]
                return {"op": kind, "start": start, "end": end}
        return None
    if kind == "text_branch":
        return text_morphism.text_branch_op(graph)
    if kind == "augment":
        return augment_morphism.augment_op(graph)
    raise ValueError(f"kind must be one of {list(_APPLY)}. Received: kind={kind!r}")


def operations(graph: ArchitectureGraph) -> tuple[str, ...]:
    """The morphism kinds that `random_children` draws from for this graph:
    `TEXT_OPERATIONS` for text, `IMAGE_AUGMENT_OPERATIONS` for images of at least 16x16
    pixels (`automl.morphism.augment.applicable`), `OPERATIONS` for the others."""
    if text_morphism.is_text(graph):
        return TEXT_OPERATIONS
    return IMAGE_AUGMENT_OPERATIONS if augment_morphism.applicable(graph) else OPERATIONS


def random_children(
    graph: ArchitectureGraph,
    rng: np.random.Generator,
    n: int = 8,
    max_model_size: int = DEFAULT_MAX_MODEL_SIZE,
) -> list[ArchitectureGraph]:
    """Up to `n` distinct children, each one random morphism of `graph`.

    The operation type is drawn uniformly from those of `operations(graph)` that have
    a valid operation on this graph; children with more than `max_model_size`
    parameters are dropped (so fewer than `n` may come back).

    Args:
        graph: the parent graph.
        rng: random generator.
        n: number of children to draw.
        max_model_size: parameter cap (Auto-Keras uses 2**25).

    Returns:
        The children; `child.history[-1]` is the operation that made each.
    """
    children: list[ArchitectureGraph] = []
    seen: set[str] = set()
    kinds = list(operations(graph))
    for _ in range(n):
        op = None
        available = list(kinds)
        while op is None and available:
            kind = available.pop(int(rng.integers(len(available))))
            op = random_op(graph, kind, rng)
            if op is None:
                kinds.remove(kind)  # no valid operation of this type on this graph
        if op is None:
            break
        text = repr(sorted(op.items()))
        if text in seen:
            continue
        seen.add(text)
        try:
            child = apply_op(graph, op)
        except ValueError:  # e.g. a skip whose branch cannot match shapes in an odd graph
            continue
        if child.count_params() <= max_model_size:
            children.append(child)
    return children
