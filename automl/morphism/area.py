"""Graph walks the morphisms share: consumers, non-negative tensors, paths, effective areas.

The effective area of a widening is the set of tensors whose channels change
when one layer gets more units. Every tensor in it gets a *channel map*: a list
`m` whose entry `j` is the old channel that new channel `j` copies. How a map
passes through a layer is the `channels` role of its type in
`automl.graph.layers`:

- `PASS` (BN, ReLU, pooling, dropout, global pooling, also over sequences, Add):
  the map travels unchanged, in both directions (every input of an Add shares its map);
- `CONCAT` (Concatenate): the inputs' maps are joined with their channel offsets;
- `PRODUCE` (conv, dense, conv1d, embedding): the walk ends; a producer whose
  output is in the area has new units that copy old ones;
- `FIXED` (input, output, flatten, bag, attention): the channels cannot change.

Channels are the last axis, so images (H, W, C), sequences (T, C) and flat
tensors (C,) are handled alike.

A layer whose type `consumes` input channels (conv, dense, output) and whose
input is in the area is a *consumer*: its weights for a copied channel are
divided by the copy count.

Pure Python: no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from automl.graph import layers
from automl.graph.architecture import ArchitectureGraph
from automl.graph.layers import CONCAT, KEPT, NON_NEGATIVE, PASS, PRODUCE


def consumer_map(graph: ArchitectureGraph) -> dict[int, list[int]]:
    """For every node id, the ids of the nodes that take it as an input (each once)."""
    users: dict[int, list[int]] = {i: [] for i in graph.nodes}
    for node_id in graph.order:
        for src in dict.fromkeys(graph.node(node_id).inputs):
            users[src].append(node_id)
    return users


def non_negative(graph: ArchitectureGraph) -> dict[int, bool]:
    """Whether each node's output is non-negative for every input (known from structure).

    A ReLU output is (sign `NON_NEGATIVE`); pooling, dropout, flatten, Add and
    Concatenate of non-negative tensors are (sign `KEPT`); everything else is
    not assumed to be.
    """
    out: dict[int, bool] = {}
    for node_id in graph.order:
        node = graph.node(node_id)
        sign = layers.get(node.type).sign
        out[node_id] = sign == NON_NEGATIVE or (sign == KEPT and all(out[i] for i in node.inputs))
    return out


def descendants(graph: ArchitectureGraph, node_id: int) -> set[int]:
    """Ids of the nodes reachable from `node_id` (itself left out)."""
    return nx.descendants(graph.digraph, node_id)


def path(graph: ArchitectureGraph, start: int, end: int) -> list[int]:
    """A path of node ids from `start` to `end` (both included); first inputs preferred.

    Raises:
        ValueError: if `end` is not reachable from `start`.
    """
    below = descendants(graph, start)
    if end not in below:
        raise ValueError(f"Node {end} is not reachable from node {start}.")
    below.add(start)
    nodes = [end]
    while nodes[-1] != start:
        nodes.append(next(i for i in graph.node(nodes[-1]).inputs if i in below))
    return nodes[::-1]


@dataclass(frozen=True)
class EffectiveArea:
    """What a widening changes.

    Attributes:
        maps: node id -> channel map of that node's output (only changed tensors).
        producers: weighted layers whose output units grow, in topological order.
        consumers: weighted layers whose input channels grow, in topological order.
    """

    maps: dict[int, list[int]]
    producers: list[int]
    consumers: list[int]


def _concat_map(graph: ArchitectureGraph, node_id: int, maps: dict[int, list[int]]) -> list[int]:
    out: list[int] = []
    offset = 0
    for src in graph.node(node_id).inputs:
        width = graph.shape(src)[-1]
        out.extend(offset + c for c in maps.get(src, range(width)))
        offset += width
    return out


def _split_concat_map(graph: ArchitectureGraph, node_id: int, m: list[int]) -> list[list[int]]:
    """Split a map of a Concatenate's output into its inputs' maps (ValueError if it cannot)."""
    inputs = graph.node(node_id).inputs
    bounds = []
    offset = 0
    for src in inputs:
        bounds.append((offset, offset + graph.shape(src)[-1]))
        offset = bounds[-1][1]
    parts: list[list[int]] = [[] for _ in inputs]
    segment = 0
    for c in m:
        while segment < len(bounds) and not bounds[segment][0] <= c < bounds[segment][1]:
            segment += 1
        if segment == len(bounds):
            raise ValueError(
                f"Cannot widen through concat node {node_id}: the new channels of its output "
                "do not fall inside one of its inputs. Widen a layer before the concat instead."
            )
        parts[segment].append(c - bounds[segment][0])
    return parts


def _identity(m: list[int], width: int) -> bool:
    return len(m) == width and all(c == i for i, c in enumerate(m))


def effective_area(graph: ArchitectureGraph, node_id: int, channel_map: list[int]) -> EffectiveArea:
    """The tensors and layers that change when `node_id`'s units become `channel_map`.

    Args:
        graph: the graph before widening.
        node_id: a conv2d, sep_conv2d or dense node.
        channel_map: for every new unit, the old unit it copies (old units first).

    Returns:
        The effective area.

    Raises:
        ValueError: if the area reaches the input, the output layer, a flatten
            layer, or a Concatenate whose channels cannot be split consistently.
    """
    users = consumer_map(graph)
    maps: dict[int, list[int]] = {}
    queue: list[int] = []

    def assign(target: int, m: list[int]) -> None:
        width = graph.shape(target)[-1]
        if maps.get(target) == m or (target not in maps and _identity(m, width)):
            return
        maps[target] = list(m)
        queue.append(target)

    assign(node_id, channel_map)
    steps = 0
    while queue:
        steps += 1
        if steps > 20 * len(graph) + 100:
            raise ValueError(f"Widening node {node_id} gives conflicting channel maps.")
        current = queue.pop(0)
        node = graph.node(current)
        channels = layers.get(node.type).channels
        m = maps[current]
        # backwards: the tensors this one is a channel-wise function of
        if channels == PASS:
            for src in node.inputs:
                assign(src, m)
        elif channels == CONCAT:
            for src, part in zip(node.inputs, _split_concat_map(graph, current, m), strict=True):
                assign(src, part)
        elif current != node_id and channels != PRODUCE:
            raise ValueError(
                f"Cannot widen node {node_id}: its effective area reaches node {current} "
                f"({node.type}), whose width cannot change."
            )
        # forwards: the tensors computed channel-wise from this one
        for user in users[current]:
            kind = graph.node(user).type
            spec = layers.get(kind)
            if spec.channels == PASS:
                assign(user, m)
            elif spec.channels == CONCAT:
                assign(user, _concat_map(graph, user, maps))
            elif not spec.consumes:
                raise ValueError(
                    f"Cannot widen node {node_id}: its effective area reaches node {user} "
                    f"({kind}); widening through {kind} is not supported."
                )
    _check_area(graph, node_id, maps)
    specs = {i: layers.get(graph.node(i).type) for i in graph.order}
    producers = [i for i in graph.order if i in maps and specs[i].channels == PRODUCE]
    consumers = [i for i in graph.order if specs[i].consumes and graph.node(i).inputs[0] in maps]
    return EffectiveArea(maps, producers, consumers)


def _check_area(graph: ArchitectureGraph, node_id: int, maps: dict[int, list[int]]) -> None:
    """Verify every layer's constraint on the final maps (odd graphs can fool the walk)."""

    def get(i: int) -> list[int]:
        return maps[i] if i in maps else list(range(graph.shape(i)[-1]))

    for i in graph.order:
        node = graph.node(i)
        spec = layers.get(node.type)
        if i in maps and set(maps[i]) != set(range(graph.shape(i)[-1])):
            raise ValueError(f"Widening node {node_id} would drop channels of node {i}.")
        if spec.channels == PASS:
            ok = all(get(s) == get(i) for s in node.inputs)
        elif spec.channels == CONCAT:
            ok = _concat_map(graph, i, maps) == get(i)
        elif spec.channels == PRODUCE:
            ok = True
        else:  # FIXED: unchanged, and so are its inputs unless it consumes them
            ok = i not in maps and (spec.consumes or not any(s in maps for s in node.inputs))
        if not ok:
            raise ValueError(
                f"Cannot widen node {node_id}: the channel maps conflict at node {i} ({node.type})."
            )
