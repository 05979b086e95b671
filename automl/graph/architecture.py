"""ArchitectureGraph: a network as a DAG of layer specs (pure Python, no TensorFlow).

Every node is one layer: a type name from `LAYER_TYPES`, a dict of plain
parameters, and an ordered tuple of input node ids. Node ids are stable: a
morphism adds nodes with fresh ids and never renumbers, so the builder can name
Keras layers after them (`n{id}_{type}`) and weights can be copied by name.

Shapes are inferred (batch dimension left out) and the parameter count equals
Keras's `model.count_params()` for the model that `automl.graph.builder` builds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

# type name -> defaults of its parameters (every parameter a graph may hold).
LAYER_TYPES: dict[str, dict[str, Any]] = {
    "input": {"shape": None},
    "conv2d": {"filters": None, "kernel_size": 3, "strides": 1, "use_bias": True},
    "sep_conv2d": {"filters": None, "kernel_size": 3, "strides": 1, "use_bias": True},
    "dense": {"units": None, "use_bias": True},
    "batchnorm": {},
    "relu": {},
    "maxpool": {"pool_size": 2, "strides": 2},
    "avgpool": {"pool_size": 2, "strides": 2},
    "gap": {},
    "flatten": {},
    "dropout": {"rate": 0.25},
    "add": {},
    "concat": {},
    "output": {"units": None, "activation": "softmax"},
}
WEIGHTED_TYPES = frozenset({"conv2d", "sep_conv2d", "dense", "batchnorm", "output"})
MERGE_TYPES = frozenset({"add", "concat"})
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Node:
    """One layer of an `ArchitectureGraph`."""

    id: int
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[int, ...] = ()

    @property
    def width(self) -> int | None:
        """Filters or units of a weighted layer, None for the others."""
        return self.params.get("filters", self.params.get("units"))

    def spec(self) -> str:
        """Type and parameters as a canonical string (ids left out)."""
        return self.type + json.dumps(self.params, sort_keys=True, separators=(",", ":"))


class ArchitectureGraph:
    """A neural network as a directed acyclic graph of layer specs.

    Args:
        nodes: the nodes; exactly one of type `input` and one of type `output`.
        history: morphism operations that produced this graph (not part of the key).

    Raises:
        ValueError: if a node has an unknown type, a missing input, a cycle, or
            shapes that do not fit (for example `add` of different widths).

    Example:
        >>> g = ArchitectureGraph.chain((8, 8, 1), [("conv2d", {"filters": 8}),
        ...     ("relu", {}), ("gap", {}), ("output", {"units": 10})])
        >>> g.count_params()
        170
    """

    def __init__(self, nodes: list[Node], history: list[dict] | None = None):
        self._nodes: dict[int, Node] = {}
        for node in nodes:
            if node.type not in LAYER_TYPES:
                raise ValueError(
                    f"Unknown layer type {node.type!r}. Known types: {sorted(LAYER_TYPES)}."
                )
            params = {**LAYER_TYPES[node.type], **node.params}
            if node.id in self._nodes:
                raise ValueError(f"Duplicate node id {node.id}.")
            self._nodes[node.id] = Node(node.id, node.type, params, tuple(node.inputs))
        self.history: list[dict] = list(history or [])
        self._order = self._topological_order()
        self._shapes = self._infer_shapes()

    # ----------------------------------------------------------------- building
    @classmethod
    def chain(cls, input_shape, layers: list[tuple[str, dict]]) -> ArchitectureGraph:
        """A sequential graph: input, then `layers` as (type, params) in order."""
        nodes = [Node(0, "input", {"shape": list(input_shape)})]
        for i, (layer_type, params) in enumerate(layers, start=1):
            nodes.append(Node(i, layer_type, dict(params), (i - 1,)))
        return cls(nodes)

    def with_nodes(self, nodes: list[Node], op: dict | None = None) -> ArchitectureGraph:
        """A new graph from `nodes`, with `op` appended to the history."""
        history = self.history + ([op] if op is not None else [])
        return ArchitectureGraph(nodes, history)

    # ----------------------------------------------------------------- access
    @property
    def nodes(self) -> dict[int, Node]:
        return self._nodes

    def node(self, node_id: int) -> Node:
        return self._nodes[node_id]

    @property
    def order(self) -> list[int]:
        """Node ids in a deterministic topological order."""
        return list(self._order)

    @property
    def input_id(self) -> int:
        return next(i for i in self._order if self._nodes[i].type == "input")

    @property
    def output_id(self) -> int:
        return next(i for i in self._order if self._nodes[i].type == "output")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self._nodes[self.input_id].params["shape"])

    @property
    def next_id(self) -> int:
        return max(self._nodes) + 1

    def shape(self, node_id: int) -> tuple[int, ...]:
        """Output shape of a node, batch dimension left out."""
        return self._shapes[node_id]

    def consumers(self, node_id: int) -> list[int]:
        """Ids of the nodes that take `node_id` as an input, in topological order."""
        return [i for i in self._order if node_id in self._nodes[i].inputs]

    def __len__(self) -> int:
        return len(self._nodes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArchitectureGraph) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return f"ArchitectureGraph({len(self)} layers, {self.count_params()} params)"

    def to_networkx(self):
        """The graph as a `networkx.DiGraph` with `type` and `params` node attributes."""
        import networkx as nx

        g = nx.DiGraph()
        for i in self._order:
            node = self._nodes[i]
            g.add_node(i, type=node.type, params=dict(node.params))
            for src in node.inputs:
                g.add_edge(src, i)
        return g

    # ----------------------------------------------------------------- structure
    def _topological_order(self) -> list[int]:
        indegree = {i: len(n.inputs) for i, n in self._nodes.items()}
        for node in self._nodes.values():
            for src in node.inputs:
                if src not in self._nodes:
                    raise ValueError(
                        f"Node {node.id} takes input {src}, which is not in the graph."
                    )
        ready = sorted(i for i, d in indegree.items() if d == 0)
        children: dict[int, list[int]] = {i: [] for i in self._nodes}
        for node in self._nodes.values():
            for src in set(node.inputs):
                children[src].append(node.id)
        order: list[int] = []
        while ready:
            current = ready.pop(0)
            order.append(current)
            for child in children[current]:
                indegree[child] -= len([s for s in self._nodes[child].inputs if s == current])
                if indegree[child] == 0:
                    ready.append(child)
                    ready.sort()
        if len(order) != len(self._nodes):
            raise ValueError("The architecture graph has a cycle.")
        types = [self._nodes[i].type for i in order]
        if types.count("input") != 1 or types.count("output") != 1:
            raise ValueError(
                "An architecture graph needs exactly one 'input' and one 'output' node. "
                f"Received: {types.count('input')} input and {types.count('output')} output nodes."
            )
        return order

    def _infer_shapes(self) -> dict[int, tuple[int, ...]]:
        shapes: dict[int, tuple[int, ...]] = {}
        for i in self._order:
            node = self._nodes[i]
            ins = [shapes[s] for s in node.inputs]
            try:
                shapes[i] = _output_shape(node, ins)
            except ValueError as err:
                raise ValueError(f"Node {i} ({node.type}): {err}") from None
        return shapes

    # ----------------------------------------------------------------- size
    def node_params(self, node_id: int) -> int:
        """Number of weights of one layer (trainable and not), as Keras counts them."""
        node = self._nodes[node_id]
        p = node.params
        if node.type in ("input",) or not node.inputs:
            return 0
        cin = self._shapes[node.inputs[0]][-1]
        if node.type == "conv2d":
            k = p["kernel_size"]
            return k * k * cin * p["filters"] + (p["filters"] if p["use_bias"] else 0)
        if node.type == "sep_conv2d":
            k = p["kernel_size"]
            bias = p["filters"] if p["use_bias"] else 0
            return k * k * cin + cin * p["filters"] + bias
        if node.type == "dense":
            return cin * p["units"] + (p["units"] if p["use_bias"] else 0)
        if node.type == "output":
            return cin * p["units"] + p["units"]
        if node.type == "batchnorm":
            return 4 * cin
        return 0

    def count_params(self) -> int:
        """Total parameter count; equals Keras's `count_params()` of the built model."""
        return sum(self.node_params(i) for i in self._nodes)

    # ----------------------------------------------------------------- identity
    def canonical_nodes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Nodes as (spec, canonical input positions), independent of node ids.

        Nodes are numbered in a topological order that breaks ties by the node's
        spec and its inputs' canonical numbers, so two graphs that differ only in
        their node ids give the same list.
        """
        indegree = {i: len(set(n.inputs)) for i, n in self._nodes.items()}
        children: dict[int, set[int]] = {i: set() for i in self._nodes}
        for node in self._nodes.values():
            for src in node.inputs:
                children[src].add(node.id)
        canon: dict[int, int] = {}
        ready = [i for i, d in indegree.items() if d == 0]
        out: list[tuple[str, tuple[int, ...]]] = []
        while ready:

            def signature(i: int) -> tuple[str, tuple[int, ...]]:
                node = self._nodes[i]
                return (node.spec(), tuple(canon[s] for s in node.inputs))

            ready.sort(key=signature)
            current = ready.pop(0)
            out.append(signature(current))
            canon[current] = len(canon)
            for child in children[current]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        return out

    def key(self) -> str:
        """Canonical key: equal for graphs with the same layers and connections."""
        text = json.dumps(self.canonical_nodes(), separators=(",", ":"))
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "nodes": [
                {
                    "id": i,
                    "type": self._nodes[i].type,
                    "params": copy.deepcopy(self._nodes[i].params),
                    "inputs": list(self._nodes[i].inputs),
                }
                for i in self._order
            ],
            "history": copy.deepcopy(self.history),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ArchitectureGraph:
        version = data.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(
                f"Architecture format version {version} is newer than this automl "
                f"understands ({FORMAT_VERSION}). Upgrade automl to read it."
            )
        nodes = [
            Node(int(n["id"]), n["type"], dict(n.get("params", {})), tuple(n.get("inputs", ())))
            for n in data["nodes"]
        ]
        return cls(nodes, data.get("history"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArchitectureGraph:
        return cls.from_dict(json.loads(text))


def _conv_out(size: int, stride: int) -> int:
    return math.ceil(size / stride)  # padding "same"


def _output_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    p = node.params
    kind = node.type
    if kind == "input":
        shape = tuple(int(s) for s in p["shape"])
        if not shape or any(s <= 0 for s in shape):
            raise ValueError(f"input shape must be positive. Received: shape={shape}")
        return shape
    if not ins:
        raise ValueError("has no inputs.")
    if kind in MERGE_TYPES:
        first = ins[0]
        if kind == "add" and any(s != first for s in ins):
            raise ValueError(f"add needs equal input shapes. Received: {ins}")
        if kind == "concat":
            if any(s[:-1] != first[:-1] for s in ins):
                raise ValueError(f"concat needs equal shapes but the last axis. Received: {ins}")
            return first[:-1] + (sum(s[-1] for s in ins),)
        return first
    if len(ins) != 1:
        raise ValueError(f"takes one input. Received: {len(ins)} inputs")
    shape = ins[0]
    if kind in ("conv2d", "sep_conv2d", "maxpool", "avgpool"):
        if len(shape) != 3:
            raise ValueError(f"needs an image (H, W, C) input. Received: shape={shape}")
        stride = p["strides"]
        h, w = _conv_out(shape[0], stride), _conv_out(shape[1], stride)
        channels = p["filters"] if kind in ("conv2d", "sep_conv2d") else shape[2]
        if kind in ("conv2d", "sep_conv2d") and (not channels or channels < 1):
            raise ValueError(f"filters must be a positive integer. Received: {channels}")
        return (h, w, channels)
    if kind == "gap":
        if len(shape) != 3:
            raise ValueError(f"needs an image (H, W, C) input. Received: shape={shape}")
        return (shape[2],)
    if kind == "flatten":
        return (math.prod(shape),)
    if kind in ("dense", "output"):
        if len(shape) != 1:
            raise ValueError(f"needs a flat input; add 'gap' or 'flatten'. Received: shape={shape}")
        if not p["units"] or p["units"] < 1:
            raise ValueError(f"units must be a positive integer. Received: {p['units']}")
        return (p["units"],)
    return shape  # batchnorm, relu, dropout
