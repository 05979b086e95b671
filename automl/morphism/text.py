"""The text morphism: a learned-embedding branch beside the features a text model has.

`text_branch` adds input -> embedding -> gap1d and concatenates the pooled embeddings
to the tensor that feeds the output layer. The output layer's weights for the new
channels start at zero (`automl.morphism.weights`), so the child computes the parent's
function; the branch learns from the first step. It lets a bag-of-tokens model grow
word embeddings. (Sequence layers, conv1d and attention, come in by `deepen`.)

Pure Python: no TensorFlow.
"""

from __future__ import annotations

from automl.graph.architecture import ArchitectureGraph, Node

BRANCH_UNITS = 32
BRANCH_LENGTH = 256


def is_text(graph: ArchitectureGraph) -> bool:
    """Whether the graph's input is a sequence of token ids (its input node has "tokens")."""
    return graph.node(graph.input_id).params.get("tokens") is not None


def text_branch_error(graph: ArchitectureGraph) -> str | None:
    """Why `text_branch(graph)` is invalid, or None if it is valid."""
    if not is_text(graph):
        return "A text branch needs a text graph (an input node with 'tokens')."
    if any(node.type == "embedding" for node in graph.nodes.values()):
        return "The graph already has an embedding; a text branch adds one only once."
    (feeding,) = graph.node(graph.output_id).inputs
    if len(graph.shape(feeding)) != 1:
        return f"The output layer's input {feeding} is not flat: {graph.shape(feeding)}."
    return None


def text_branch_op(graph: ArchitectureGraph) -> dict | None:
    """The text-branch operation that `random_op` proposes, or None if it is invalid."""
    if text_branch_error(graph) is not None:
        return None
    return {"op": "text_branch", "units": BRANCH_UNITS, "length": BRANCH_LENGTH}


def text_branch(
    graph: ArchitectureGraph, units: int = BRANCH_UNITS, length: int = BRANCH_LENGTH
) -> ArchitectureGraph:
    """Add input -> embedding -> gap1d, concatenated to the output layer's input.

    Args:
        graph: the parent graph: a text graph with no embedding yet.
        units: the embedding's units (the new channels of the output layer's input).
        length: the embedding reads the first min(length, L) tokens.

    Returns:
        The child graph; the output layer takes concat(its old input, pooled embeddings).

    Raises:
        ValueError: if the graph is not a text graph or already has an embedding.
    """
    error = text_branch_error(graph)
    if error:
        raise ValueError(error)
    units, length = int(units), int(length)
    if units < 1 or length < 1:
        raise ValueError(f"units and length must be positive. Received: {units}, {length}")
    source = graph.input_id
    params = graph.node(source).params
    first = graph.next_id
    embed = {"tokens": params["tokens"], "units": units, "length": min(length, params["shape"][0])}
    output = graph.node(graph.output_id)
    new = [
        Node(first, "embedding", embed, (source,)),
        Node(first + 1, "gap1d", {}, (first,)),
        Node(first + 2, "concat", {}, (output.inputs[0], first + 1)),
    ]
    nodes = [
        Node(n.id, n.type, dict(n.params), (first + 2,)) if n.id == output.id else n
        for n in graph.nodes.values()
    ]
    op = {"op": "text_branch", "units": units, "length": length}
    return graph.with_nodes(nodes + new, op)
