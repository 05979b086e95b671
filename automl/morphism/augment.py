"""The augment morphism: random image augmentation right after an image graph's input.

`augment` inserts an "augment" node (`automl.graph.augment`) between the input node and
all its consumers. The node has no weights and is the identity in inference, so the
child computes the parent's function; while training, it shows the network randomly
translated, rotated, zoomed and contrast-changed images, which pays when the images
are large enough for such changes to keep their class. It is offered only for images
of at least `MIN_SIZE` pixels on each side (not for 8x8 digits), never for tables or
text, and once per graph. Layers and skips start after it, not before it
(`feeds_augment`), so every path from the input sees the augmented images.

Pure Python: no TensorFlow.
"""

from __future__ import annotations

from automl.graph.architecture import ArchitectureGraph, Node
from automl.graph.augment import AUGMENT_DEFAULTS
from automl.morphism.edits import rewired

MIN_SIZE = 16  # the smallest height and width the morphism augments
ARGUMENTS = tuple(AUGMENT_DEFAULTS)  # what the recorded operation holds


def applicable(graph: ArchitectureGraph) -> bool:
    """Whether the graph is an image graph of at least `MIN_SIZE` pixels on each side."""
    shape = graph.input_shape
    tokens = graph.node(graph.input_id).params.get("tokens") is not None
    return not tokens and len(shape) == 3 and min(shape[:2]) >= MIN_SIZE


def feeds_augment(graph: ArchitectureGraph, node_id: int) -> bool:
    """Whether `node_id`'s output goes into an "augment" node (the input node, if any does)."""
    return any(graph.node(i).type == "augment" for i in graph.digraph.successors(node_id))


def augment_error(graph: ArchitectureGraph) -> str | None:
    """Why `augment(graph)` is invalid, or None if it is valid."""
    if not applicable(graph):
        return (
            f"Augmentation needs an image input of at least {MIN_SIZE}x{MIN_SIZE} pixels. "
            f"Received: input shape {graph.input_shape}"
        )
    if any(node.type == "augment" for node in graph.nodes.values()):
        return "The graph already has an augment node; it is added only once."
    return None


def augment_op(graph: ArchitectureGraph) -> dict | None:
    """The augment operation that `random_op` proposes (the default strengths), or None
    if it is invalid."""
    if augment_error(graph) is not None:
        return None
    return {"op": "augment", **AUGMENT_DEFAULTS}


def augment(
    graph: ArchitectureGraph,
    translate: float = AUGMENT_DEFAULTS["translate"],
    rotate: float = AUGMENT_DEFAULTS["rotate"],
    zoom: float = AUGMENT_DEFAULTS["zoom"],
    contrast: float = AUGMENT_DEFAULTS["contrast"],
    flip: bool = AUGMENT_DEFAULTS["flip"],
) -> ArchitectureGraph:
    """Insert an "augment" node right after the input node.

    Args:
        graph: the parent graph: an image graph of at least `MIN_SIZE` pixels on each
            side, with no augment node yet.
        translate: largest shift, as a fraction of the height and width.
        rotate: largest rotation, as a fraction of a full turn.
        zoom: largest relative change of scale.
        contrast: largest relative change of contrast.
        flip: mirror half the images left to right.

    Returns:
        The child graph: every former consumer of the input takes the augment node.

    Raises:
        ValueError: if the graph is not such an image graph, already has an augment
            node, or a strength is outside [0, 1).
    """
    error = augment_error(graph)
    if error:
        raise ValueError(error)
    params = {
        "translate": translate,
        "rotate": rotate,
        "zoom": zoom,
        "contrast": contrast,
        "flip": flip,
    }
    source, node_id = graph.input_id, graph.next_id
    nodes = rewired(graph, source, node_id, [Node(node_id, "augment", params, (source,))])
    return graph.with_nodes(nodes, {"op": "augment", **params})
