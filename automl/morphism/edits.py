"""Small graph edits that the morphisms share: checking a node id and rewiring a node's uses.

Pure Python: no TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automl.graph.architecture import ArchitectureGraph, Node


def check_node(graph: ArchitectureGraph, node_id: Any, what: str) -> int:
    """`node_id` as an int if it is a node id of the graph (ValueError naming `what` if not)."""
    if not isinstance(node_id, (int, np.integer)) or int(node_id) not in graph.nodes:
        raise ValueError(f"{what} must be a node id of the graph. Received: {node_id!r}")
    return int(node_id)


def rewired(graph: ArchitectureGraph, old: int, new: int, new_nodes: list[Node]) -> list[Node]:
    """The graph's nodes with every use of `old` taken by `new`, then `new_nodes`."""
    nodes = [
        Node(n.id, n.type, dict(n.params), tuple(new if i == old else i for i in n.inputs))
        if old in n.inputs
        else n
        for n in graph.nodes.values()
    ]
    return nodes + new_nodes
