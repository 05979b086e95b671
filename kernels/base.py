"""The kernels' one graph representation and the scikit-learn kernel base class.

Every kernel sees architectures as a `LabelledGraph`: node labels in a
topological order (node 0 the input, the last node the output), the inputs of
each node as earlier positions, an optional width per node, and a canonical
key. `as_labelled` converts what the library hands over:

- `automl.graph.architecture.ArchitectureGraph`: one node per layer, in the
  graph's canonical order (so ids do not matter); label = the layer type's
  label from `automl.graph.layers`: the type plus the structural parameters
  that are not a width (kernel size, pool size, stride), for example
  `conv2d_k3`, `conv2d_k1_s2`, `maxpool_p2_s2`; width = filters or units.
  Key = `graph.key()`.
- a NAS-Bench-201 `Cell` (`automl.nb201.codec`) or its arch string, through `from_nb201`.
- any object with a `to_graph()` method returning a `LabelledGraph`.

Conversions are cached (ArchitectureGraphs by identity, cells and strings by
value, labelled graphs by key), and kernels keep per-graph features in the
`LabelledGraph.cache` dict, so a Gaussian process that evaluates its kernel
many times while tuning hyperparameters pays for the features once.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.gaussian_process.kernels import GenericKernelMixin, Kernel

from automl.graph import layers
from automl.nb201 import codec as nb201

_CACHE_SIZE = 50_000


@dataclass(frozen=True, eq=False)
class LabelledGraph:
    """A DAG with labelled nodes: the form every kernel in `automl.kernels` reads.

    Args:
        key: canonical key; equal keys must mean equal graphs (used for caching).
        labels: node labels in a topological order; node 0 is the input and the
            last node the output.
        inputs: for each node, the positions of its inputs (all smaller).
        widths: for each node, filters or units, or None (default: all None).

    Raises:
        ValueError: if the lengths differ or an input is not an earlier node.
    """

    key: str
    labels: tuple[str, ...]
    inputs: tuple[tuple[int, ...], ...]
    widths: tuple[float | None, ...] | None = None
    cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        widths = self.widths if self.widths is not None else (None,) * len(self.labels)
        object.__setattr__(self, "widths", tuple(widths))
        if not (len(self.labels) == len(self.inputs) == len(self.widths)) or not self.labels:
            raise ValueError(
                "labels, inputs and widths need one entry per node. Received: "
                f"{len(self.labels)} labels, {len(self.inputs)} inputs, {len(self.widths)} widths."
            )
        for i, ins in enumerate(self.inputs):
            if any(not 0 <= j < i for j in ins):
                raise ValueError(
                    f"Inputs must be earlier nodes (topological order). Received: node {i} "
                    f"takes inputs {ins}."
                )

    def __len__(self) -> int:
        return len(self.labels)

    def successors(self) -> list[list[int]]:
        """For each node, the positions of the nodes that take it as an input."""
        out: list[list[int]] = [[] for _ in self.labels]
        for i, ins in enumerate(self.inputs):
            for j in ins:
                out[j].append(i)
        return out


def from_architecture(graph: Any) -> LabelledGraph:
    """Converts an `ArchitectureGraph` to a `LabelledGraph` (see the module docstring)."""
    order = graph.canonical_order()
    position = {node_id: k for k, node_id in enumerate(order)}
    labels, inputs, widths = [], [], []
    for node_id in order:
        node = graph.node(node_id)
        labels.append(layers.get(node.type).label(node.params))
        inputs.append(tuple(sorted({position[s] for s in node.inputs})))
        width = node.width
        widths.append(float(width) if isinstance(width, (int, float)) and width > 0 else None)
    return LabelledGraph(graph.key(), tuple(labels), tuple(inputs), tuple(widths))


class _Caches:
    """Bounded caches: by identity (with a weak reference check), by value, by key."""

    def __init__(self) -> None:
        self.by_id: OrderedDict[int, tuple[Any, LabelledGraph]] = OrderedDict()
        self.by_value: OrderedDict[Any, LabelledGraph] = OrderedDict()
        self.by_key: OrderedDict[str, LabelledGraph] = OrderedDict()

    @staticmethod
    def _put(cache: OrderedDict, key: Any, value: Any) -> None:
        cache[key] = value
        if len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)

    def shared(self, graph: LabelledGraph) -> LabelledGraph:
        """The cached graph with the same key (so its features are reused), or `graph`."""
        found = self.by_key.get(graph.key)
        if found is None:
            self._put(self.by_key, graph.key, graph)
            return graph
        return found


_CACHES = _Caches()
_EXTRA_CACHES: list[dict] = []  # caches of derived results, emptied by clear_caches


def register_cache(cache: dict) -> dict:
    """Registers a kernel module's own cache so `clear_caches` empties it too; returns it."""
    _EXTRA_CACHES.append(cache)
    return cache


def clear_caches() -> None:
    """Empties every conversion and feature cache (for timing cold starts, or memory)."""
    for cache in (_CACHES.by_id, _CACHES.by_value, _CACHES.by_key, *_EXTRA_CACHES):
        cache.clear()


def as_labelled(item: Any) -> LabelledGraph:
    """Converts one architecture to the kernels' `LabelledGraph` form (cached).

    Args:
        item: a `LabelledGraph`, an `ArchitectureGraph`, a NAS-Bench-201 `Cell` or
            arch string, or any object whose `to_graph()` returns a `LabelledGraph`.

    Returns:
        The labelled graph; graphs with the same key share one cached object.

    Raises:
        TypeError: if the item is none of these.
    """
    if isinstance(item, LabelledGraph):
        return _CACHES.shared(item)
    if hasattr(item, "canonical_nodes"):  # ArchitectureGraph: hashing it is not cheap
        entry = _CACHES.by_id.get(id(item))
        if entry is not None and entry[0]() is item:
            return entry[1]
        graph = _CACHES.shared(from_architecture(item))
        _CACHES._put(_CACHES.by_id, id(item), (weakref.ref(item), graph))
        return graph
    try:
        found = _CACHES.by_value.get(item)
    except TypeError:  # unhashable
        found = None
    if found is not None:
        return found
    if isinstance(item, str):
        graph = from_nb201(nb201.parse(item))
    elif isinstance(item, nb201.Cell):
        graph = from_nb201(item)
    elif hasattr(item, "to_graph"):
        graph = item.to_graph()
    else:
        raise TypeError(
            "Graph kernels take ArchitectureGraphs, NAS-Bench-201 cells or arch strings, "
            f"or LabelledGraphs. Received: an object of type {type(item).__name__}."
        )
    if not isinstance(graph, LabelledGraph):
        raise TypeError(
            f"{type(item).__name__}.to_graph() must return a LabelledGraph. "
            f"Received: {type(graph).__name__}."
        )
    graph = _CACHES.shared(graph)
    try:
        _CACHES._put(_CACHES.by_value, item, graph)
    except TypeError:
        pass
    return graph


def as_labelled_list(items: Iterable[Any]) -> list[LabelledGraph]:
    """Converts a list (or 1-D object array) of architectures; see `as_labelled`."""
    return [as_labelled(item) for item in items]


def from_nb201(cell: nb201.Cell) -> LabelledGraph:
    """Converts a NAS-Bench-201 cell to a `LabelledGraph`.

    Operations become nodes: node 0 is `input`, each live edge (`nb201.live_edges`)
    is a node labelled with its op, taking the edge's source as input; cell nodes 1
    and 2 become `add` nodes summing their incoming op nodes, and node 3 becomes
    `output`. Edges with op `none` are dropped, and so is every edge whose source is
    unreachable from the input or whose target cannot reach the output. A cell with
    no live edge (constant zero output) becomes just `input` and an unconnected
    `output`. The key is the canonical arch string.
    """
    labels = ["input"]
    inputs: list[tuple[int, ...]] = [()]
    position = {0: 0}  # cell node -> graph node
    live = nb201.live_edges(cell)
    for target in range(1, nb201.NUM_NODES):
        incoming = []
        for k in live:
            source, edge_target = nb201.EDGES[k]
            if edge_target == target:
                labels.append(cell.ops[k])
                inputs.append((position[source],))
                incoming.append(len(labels) - 1)
        if incoming or target == nb201.NUM_NODES - 1:
            labels.append("output" if target == nb201.NUM_NODES - 1 else "add")
            inputs.append(tuple(incoming))
            position[target] = len(labels) - 1
    return LabelledGraph(nb201.format_cell(cell), tuple(labels), tuple(inputs))


class GraphKernel(GenericKernelMixin, Kernel):
    """Base class of kernels on architectures, for scikit-learn's Gaussian processes.

    `X` and `Y` are lists (or 1-D object arrays) of anything `as_labelled` takes,
    so `GaussianProcessRegressor(kernel=...)` fits on architectures directly and
    the kernel composes with scikit-learn kernels, for example
    `ConstantKernel() * WLKernel() + WhiteKernel()`. Hyperparameters are declared
    the scikit-learn way (`hyperparameter_*` properties); discrete ones are
    `fixed`, continuous ones are tuned by the GP's marginal likelihood.

    Every kernel here is normalised: k(x, x) = 1, so `diag` is all ones.
    Subclasses implement `_gram(xs, ys, eval_gradient)` on `LabelledGraph` lists
    (`ys` is None for k(X) = k(X, X)).
    """

    def __call__(self, X, Y=None, eval_gradient: bool = False):
        """The kernel matrix k(X, Y), and its gradient if `eval_gradient`.

        Args:
            X: architectures, length n.
            Y: architectures, length m; None means Y = X.
            eval_gradient: also return the gradient with respect to the log of the
                non-fixed hyperparameters (only when Y is None).

        Returns:
            K of shape (n, m), and with `eval_gradient` the gradient of shape
            (n, n, number of non-fixed hyperparameters).

        Raises:
            ValueError: if `eval_gradient` is set while Y is given.
        """
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        xs = as_labelled_list(X)
        ys = None if Y is None else as_labelled_list(Y)
        return self._gram(xs, ys, eval_gradient)

    def _gram(self, xs: list[LabelledGraph], ys: list[LabelledGraph] | None, eval_gradient: bool):
        raise NotImplementedError(f"{type(self).__name__} must implement _gram().")

    def diag(self, X) -> np.ndarray:
        """The diagonal k(x, x) for each x in X: all ones, every kernel here is normalised."""
        return np.ones(len(X))

    def is_stationary(self) -> bool:
        """Graph kernels are not functions of x - y."""
        return False

    def __repr__(self) -> str:
        params = ", ".join(f"{name}={_short(value)}" for name, value in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _short(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3g}"
    return repr(value)
