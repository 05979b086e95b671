"""ArchitectureGraph: a network as a DAG of layer specs (pure Python, no TensorFlow).

Every node is one layer: the name of a layer type registered in
`automl.graph.layers`, a dict of plain parameters, and an ordered tuple of input
node ids. Node ids are stable: a morphism adds nodes with fresh ids and never
renumbers, so the builder can name Keras layers after them (`n{id}_{type}`) and
weights can be copied by name.

Shapes are inferred (batch dimension left out) and the parameter count equals
Keras's `model.count_params()` for the model that `automl.graph.builder` builds;
both come from the layer types in `automl.graph.layers`. The graph's
connectivity is also held as a `networkx.DiGraph` (`ArchitectureGraph.digraph`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from automl.graph import layers, text_layers  # noqa: F401  (registers the text layer types)
from automl.graph.augment import TRAINING_ONLY  # (and registers the "augment" layer type)

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
        param = layers.get(self.type).width_param
        return self.params.get(param) if param else None

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
            params = {**layers.get(node.type).defaults, **node.params}
            if node.id in self._nodes:
                raise ValueError(f"Duplicate node id {node.id}.")
            self._nodes[node.id] = Node(node.id, node.type, params, tuple(node.inputs))
        self.history: list[dict] = list(history or [])
        self._digraph = self._build_digraph()
        self._order = self._topological_order()
        self._shapes = self._infer_shapes()
        self._canonical: list[int] | None = None
        self._specs: dict[int, str] | None = None

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

    def inference_graph(self) -> ArchitectureGraph:
        """The graph without its training-only nodes ("augment"), as a model is exported.

        Each consumer of a removed node takes that node's input instead. The other
        nodes keep their ids and parameters, so the builder gives their layers the same
        names (`n{id}_{type}`) and a trained model's weights copy in by name; in
        inference the result computes the same function as this graph. The history is
        kept (it tells how the training graph was found), so build or export the
        result, but do not morph it. A graph without such nodes is returned as it is.
        """
        removed = {i: n.inputs[0] for i, n in self._nodes.items() if n.type in TRAINING_ONLY}
        if not removed:
            return self

        def source(node_id: int) -> int:
            while node_id in removed:
                node_id = removed[node_id]
            return node_id

        nodes = [
            Node(n.id, n.type, dict(n.params), tuple(source(i) for i in n.inputs))
            for n in self._nodes.values()
            if n.id not in removed
        ]
        return ArchitectureGraph(nodes, self.history)

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

    @property
    def digraph(self) -> nx.DiGraph:
        """The connectivity as a frozen `networkx.DiGraph`: node ids, edges input -> node."""
        return self._digraph

    # ----------------------------------------------------------------- structure
    def _build_digraph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self._nodes)
        for node in self._nodes.values():
            for src in node.inputs:
                if src not in self._nodes:
                    raise ValueError(
                        f"Node {node.id} takes input {src}, which is not in the graph."
                    )
                g.add_edge(src, node.id)
        return nx.freeze(g)

    def _topological_order(self) -> list[int]:
        """Topological order that takes the smallest ready node id first."""
        try:
            order = list(nx.lexicographical_topological_sort(self._digraph))
        except nx.NetworkXUnfeasible:
            raise ValueError("The architecture graph has a cycle.") from None
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
                shapes[i] = layers.get(node.type).output_shape(node.params, ins)
            except ValueError as err:
                raise ValueError(f"Node {i} ({node.type}): {err}") from None
        return shapes

    # ----------------------------------------------------------------- size
    def node_params(self, node_id: int) -> int:
        """Number of weights of one layer (trainable and not), as Keras counts them."""
        node = self._nodes[node_id]
        ins = [self._shapes[s] for s in node.inputs]
        return layers.get(node.type).count_params(node.params, ins)

    def count_params(self) -> int:
        """Total parameter count; equals Keras's `count_params()` of the built model."""
        return sum(self.node_params(i) for i in self._nodes)

    # ----------------------------------------------------------------- identity
    def canonical_order(self) -> list[int]:
        """Node ids in the canonical order, which does not depend on the ids.

        A topological order that takes, among the nodes whose inputs are all
        placed, the one with the smallest (spec, input positions in the order),
        so two graphs that differ only in their node ids (or in the order their
        nodes were given) list the same nodes in the same places. Ties (equal
        layers on the same inputs, such as two 1x1 convs that leave the same
        node) are broken by the way the nodes lead to the output (`_tie_rank`),
        which does not depend on the ids either.
        """
        if self._canonical is None:
            self._canonical = self._canonical_order()
        return list(self._canonical)

    def _node_specs(self) -> dict[int, str]:
        if self._specs is None:
            self._specs = {i: node.spec() for i, node in self._nodes.items()}
        return self._specs

    def _canonical_order(self) -> list[int]:
        specs = self._node_specs()
        children: dict[int, set[int]] = {i: set() for i in self._nodes}
        for node in self._nodes.values():
            for src in node.inputs:
                children[src].add(node.id)
        indegree = {i: len(set(n.inputs)) for i, n in self._nodes.items()}
        ready = [i for i, d in indegree.items() if d == 0]
        rank: dict[int, int] | None = None  # computed on the first tie only

        def complete(canon: dict[int, int], indegree: dict[int, int], ready: list[int]):
            """Place the remaining nodes (mutating the arguments); the full order."""
            nonlocal rank
            while ready:
                signatures = {
                    i: (specs[i], tuple(canon[s] for s in self._nodes[i].inputs)) for i in ready
                }
                best = min(signatures.values())
                tied = [i for i in ready if signatures[i] == best]
                if len(tied) > 1:
                    if rank is None:
                        rank = self._tie_rank()
                    ranked = [i for i in tied if i in rank]
                    if ranked:
                        tied = [min(ranked, key=rank.__getitem__)]
                    else:  # nodes that do not lead to the output: try each
                        leaves = [i for i in tied if not children[i]]  # interchangeable
                        tied = [i for i in tied if children[i]] + leaves[:1]
                    if len(tied) > 1:
                        return min(
                            (branch(canon, indegree, ready, i) for i in tied),
                            key=self._canonical_nodes,
                        )
                current = tied[0]
                ready.remove(current)
                canon[current] = len(canon)
                for child in children[current]:
                    indegree[child] -= 1
                    if indegree[child] == 0:
                        ready.append(child)
            return list(canon)

        def branch(canon, indegree, ready, first: int) -> list[int]:
            canon = dict(canon)
            indegree = dict(indegree)
            ready = [i for i in ready if i != first]
            canon[first] = len(canon)
            for child in children[first]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
            return complete(canon, indegree, ready)

        return complete({}, indegree, ready)

    def _tie_rank(self) -> dict[int, int]:
        """A rank, from the structure alone, of every node that leads to the output.

        The postorder of a depth-first search from the output node that visits
        each node's inputs in their order. It depends only on the layers'
        connections and the order of their inputs, not on node ids or on the
        order the nodes were given, and no two nodes share a rank. (A graph
        whose nodes all lead to the output has no symmetry that swaps nodes, so
        a tie between such nodes is never a real one.) Nodes that do not lead
        to the output get no rank; `_canonical_order` tries each of them.
        """
        rank: dict[int, int] = {}
        seen = {self.output_id}
        stack = [(self.output_id, 0)]
        while stack:
            node_id, k = stack.pop()
            inputs = self._nodes[node_id].inputs
            if k < len(inputs):
                stack.append((node_id, k + 1))
                if inputs[k] not in seen:
                    seen.add(inputs[k])
                    stack.append((inputs[k], 0))
            else:
                rank[node_id] = len(rank)
        return rank

    def _canonical_nodes(self, order: list[int]) -> list[tuple[str, tuple[int, ...]]]:
        specs = self._node_specs()
        position = {node_id: k for k, node_id in enumerate(order)}
        return [(specs[i], tuple(position[s] for s in self._nodes[i].inputs)) for i in order]

    def canonical_nodes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Nodes as (spec, input positions) in the canonical order, independent of node ids."""
        return self._canonical_nodes(self.canonical_order())

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
