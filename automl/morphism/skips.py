"""Skip connections between image tensors: add-skip and concat-skip (network morphisms).

Both leave from a node `start` and join a later node `end`; pooling copies on the branch
match the resampling along the path from `start` to `end` (`LayerType.skip_pool`). A new
1x1 conv merges the branch: zero in an add-skip, the identity on `end`'s channels in a
concat-skip (`automl.morphism.weights`), so the child computes the parent's function.
`automl.morphism.operators` replays and samples them with the other morphisms.

Pure Python: no TensorFlow.
"""

from __future__ import annotations

from automl.graph import layers
from automl.graph.architecture import ArchitectureGraph, Node
from automl.morphism.area import path
from automl.morphism.edits import check_node, rewired


def _skip_branch(graph: ArchitectureGraph, start: int, end: int, kind: str) -> list[Node]:
    """Validate a skip from `start` to `end`; the branch's pooling copies as new nodes."""
    start = check_node(graph, start, "start")
    end = check_node(graph, end, "end")
    if start == end:
        raise ValueError(f"A skip connection needs two different nodes. Received: {start}, {end}")
    if graph.node(end).type in ("input", "output"):
        raise ValueError(f"A skip connection cannot end at the {graph.node(end).type} node.")
    if len(graph.shape(start)) != 3 or len(graph.shape(end)) != 3:
        raise ValueError(
            f"{kind} connects image tensors. Received: node {start} with shape "
            f"{graph.shape(start)}, node {end} with shape {graph.shape(end)}"
        )
    route = path(graph, start, end)  # ValueError if end is not after start
    branch: list[Node] = []
    previous = start
    for node_id in route[1:]:
        node = graph.node(node_id)
        pool = layers.get(node.type).skip_pool(node.params)
        if pool is None:
            continue
        pool_type, params = pool
        branch.append(Node(graph.next_id + len(branch), pool_type, params, (previous,)))
        previous = branch[-1].id
    return branch


def add_skip(graph: ArchitectureGraph, start: int, end: int) -> ArchitectureGraph:
    """Add `start`'s output (pooled like the path) through a zero 1x1 conv to `end`'s output.

    Args:
        graph: the parent graph.
        start: id of the node the skip leaves from (an image tensor).
        end: id of a later node (an image tensor, reachable from `start`).

    Returns:
        The child graph: start -> pooling copies -> conv 1x1 -> add(end, conv).

    Raises:
        ValueError: if the nodes cannot be connected.
    """
    branch = _skip_branch(graph, start, end, "add_skip")
    source = branch[-1].id if branch else start
    conv_id = graph.next_id + len(branch)
    filters = graph.shape(end)[-1]
    conv = Node(conv_id, "conv2d", {"filters": filters, "kernel_size": 1}, (source,))
    merge = Node(conv_id + 1, "add", {}, (end, conv_id))
    nodes = rewired(graph, end, merge.id, branch + [conv, merge])
    return _child(graph, nodes, {"op": "add_skip", "start": start, "end": end})


def concat_skip(graph: ArchitectureGraph, start: int, end: int) -> ArchitectureGraph:
    """Concatenate `start`'s output (pooled like the path) to `end`'s, then a 1x1 conv.

    The 1x1 conv is initialised to the identity on `end`'s channels and zero on
    the skip channels, so the child computes the parent's function.

    Args:
        graph: the parent graph.
        start: id of the node the skip leaves from (an image tensor).
        end: id of a later node (an image tensor, reachable from `start`).

    Returns:
        The child graph: concat(end, pooled start) -> conv 1x1 with end's width.

    Raises:
        ValueError: if the nodes cannot be connected.
    """
    branch = _skip_branch(graph, start, end, "concat_skip")
    source = branch[-1].id if branch else start
    merge_id = graph.next_id + len(branch)
    merge = Node(merge_id, "concat", {}, (end, source))
    filters = graph.shape(end)[-1]
    conv = Node(merge_id + 1, "conv2d", {"filters": filters, "kernel_size": 1}, (merge_id,))
    nodes = rewired(graph, end, conv.id, branch + [merge, conv])
    return _child(graph, nodes, {"op": "concat_skip", "start": start, "end": end})


def _child(graph: ArchitectureGraph, nodes: list[Node], op: dict) -> ArchitectureGraph:
    try:
        return graph.with_nodes(nodes, op)
    except ValueError as err:
        raise ValueError(f"Invalid {op['op']} from {op['start']} to {op['end']}: {err}") from None
