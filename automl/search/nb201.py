"""NAS-Bench-201 cells: the canonical arch string, enumeration, mutation, graph form.

A cell has 4 nodes; node 0 is the cell input, node 3 the output, and node j
sums its incoming edges. Each of the 6 edges carries one of 5 operations. Edges
are kept in one fixed, sorted order, so position k of `Cell.ops` always means
the same edge:

    EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))   # (target, source)

The canonical string lists, node by node, the `op~source` entries of the edges
into that node:

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

This module is pure Python (the graph form is built by `automl.kernels`, which
is imported only when `to_graph` is called).
"""

from __future__ import annotations

import csv
import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
NUM_CELLS = len(OPS) ** len(EDGES)  # 15,625
DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "nb201_cifar100.csv"


@dataclass(frozen=True)
class Cell:
    """One NAS-Bench-201 cell: the operation on each of the 6 edges, in `EDGES` order.

    Args:
        ops: six operation names from `OPS`.

    Raises:
        ValueError: if there are not six ops or one is not in `OPS`.

    Example:
        >>> cell = Cell.from_string("|nor_conv_3x3~0|+|none~0|skip_connect~1|"
        ...                         "+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
        >>> cell.ops[2]
        'skip_connect'
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        object.__setattr__(self, "ops", ops)
        if len(ops) != len(EDGES):
            raise ValueError(f"A cell has {len(EDGES)} edge ops. Received: {len(ops)} ops {ops}.")
        unknown = [op for op in ops if op not in OPS]
        if unknown:
            raise ValueError(f"Unknown NAS-Bench-201 ops {unknown}. Known ops: {list(OPS)}.")

    @classmethod
    def from_string(cls, arch: str) -> Cell:
        """Parses the canonical arch string; see `parse`."""
        return parse(arch)

    def to_string(self) -> str:
        """The canonical arch string."""
        return format_cell(self)

    def key(self) -> str:
        """Canonical key (the arch string), for deduplication and caching."""
        return format_cell(self)

    def to_graph(self):
        """The cell as the kernels' labelled DAG; see `to_graph`."""
        return to_graph(self)

    def __str__(self) -> str:
        return format_cell(self)


def parse(arch: str) -> Cell:
    """Parses a canonical arch string such as `|nor_conv_3x3~0|+|...|+|...|`.

    Args:
        arch: the string; nodes 1, 2, 3 separated by `+`, each a `|`-delimited list
            of `op~source` entries, sources in increasing order.

    Returns:
        The cell.

    Raises:
        ValueError: if the string does not describe a NAS-Bench-201 cell.
    """
    text = str(arch).strip()
    nodes = text.split("+")
    if len(nodes) != NUM_NODES - 1:
        raise ValueError(
            f"A NAS-Bench-201 arch string has {NUM_NODES - 1} nodes separated by '+'. "
            f"Received: {arch!r}."
        )
    ops = []
    for target, node in enumerate(nodes, start=1):
        entries = [e for e in node.strip().split("|") if e]
        sources = []
        for entry in entries:
            op, _, source = entry.partition("~")
            if not source.isdigit():
                raise ValueError(f"Entries are 'op~source'. Received: {entry!r} in {arch!r}.")
            sources.append(int(source))
            ops.append(op)
        if sources != list(range(target)):
            raise ValueError(
                f"Node {target} takes inputs {list(range(target))} in order. "
                f"Received: {sources} in {arch!r}."
            )
    return Cell(tuple(ops))


def format_cell(cell: Cell) -> str:
    """The canonical arch string of a cell (inverse of `parse`)."""
    parts = []
    for target in range(1, NUM_NODES):
        entries = [f"{op}~{src}" for (t, src), op in zip(EDGES, cell.ops) if t == target]
        parts.append("|" + "|".join(entries) + "|")
    return "+".join(parts)


def all_cells() -> list[Cell]:
    """All 15,625 cells, in lexicographic order of op indices over `EDGES`."""
    return [Cell(ops) for ops in itertools.product(OPS, repeat=len(EDGES))]


def _randrange(rng: Any, n: int) -> int:
    """An int in [0, n) from a `numpy.random.Generator` or a `random.Random`."""
    if hasattr(rng, "integers"):
        return int(rng.integers(n))
    return rng.randrange(n)


def sample(rng: Any = None) -> Cell:
    """A uniformly random cell.

    Args:
        rng: a `numpy.random.Generator` or `random.Random`; a fresh `random.Random()` if None.
    """
    rng = random.Random() if rng is None else rng
    return Cell(tuple(OPS[_randrange(rng, len(OPS))] for _ in EDGES))


def neighbours(cell: Cell) -> list[Cell]:
    """All 24 cells that differ from `cell` on exactly one edge, in a fixed order."""
    out = []
    for position, current in enumerate(cell.ops):
        for op in OPS:
            if op != current:
                ops = list(cell.ops)
                ops[position] = op
                out.append(Cell(tuple(ops)))
    return out


def mutate(cell: Cell, rng: Any = None) -> Cell:
    """A random one-edge mutation: one edge, chosen uniformly, gets a different op.

    Args:
        cell: the parent cell.
        rng: a `numpy.random.Generator` or `random.Random`; a fresh `random.Random()` if None.
    """
    rng = random.Random() if rng is None else rng
    position = _randrange(rng, len(EDGES))
    choices = [op for op in OPS if op != cell.ops[position]]
    ops = list(cell.ops)
    ops[position] = choices[_randrange(rng, len(choices))]
    return Cell(tuple(ops))


def one_hot(cell: Cell) -> list[float]:
    """The 30-dimensional one-hot encoding (6 edges x 5 ops, edge-major)."""
    return [1.0 if op == cell_op else 0.0 for cell_op in cell.ops for op in OPS]


def live_edges(cell: Cell) -> list[int]:
    """Positions of the edges that can change the output.

    An edge is live when its op is not `none`, its source is reachable from node 0
    through non-`none` edges, and its target reaches node 3 through them.
    """
    active = [i for i, op in enumerate(cell.ops) if op != "none"]
    from_input = {0}
    for i in active:  # EDGES is sorted by target, so one pass suffices
        target, source = EDGES[i]
        if source in from_input:
            from_input.add(target)
    to_output = {NUM_NODES - 1}
    for i in reversed(active):
        target, source = EDGES[i]
        if target in to_output:
            to_output.add(source)
    return [i for i in active if EDGES[i][1] in from_input and EDGES[i][0] in to_output]


def to_graph(cell: Cell):
    """The cell as a labelled DAG for the graph kernels (`automl.kernels.LabelledGraph`).

    Operations become nodes: node 0 is `input`, each live edge is a node labelled
    with its op, taking the edge's source as input; cell nodes 1 and 2 become `add`
    nodes summing their incoming op nodes, and node 3 becomes `output`. Edges with
    op `none` are dropped, and so is every edge that is not live (`live_edges`):
    its source is unreachable from the input or its target cannot reach the output.
    A cell with no live edge (its output is constant zero) becomes just `input`
    and an unconnected `output`. The key is the canonical arch string.
    """
    from automl.kernels.base import LabelledGraph

    live = live_edges(cell)
    labels = ["input"]
    inputs: list[tuple[int, ...]] = [()]
    node_index = {0: 0}
    for target in range(1, NUM_NODES):
        incoming = []
        for i in live:
            if EDGES[i][0] == target:
                labels.append(cell.ops[i])
                inputs.append((node_index[EDGES[i][1]],))
                incoming.append(len(labels) - 1)
        if incoming or target == NUM_NODES - 1:
            labels.append("output" if target == NUM_NODES - 1 else "add")
            inputs.append(tuple(incoming))
            node_index[target] = len(labels) - 1
    return LabelledGraph(format_cell(cell), tuple(labels), tuple(inputs))


def load_accuracies(path: str | Path | None = None) -> dict[str, float]:
    """Reads an `arch,test_accuracy` table into {canonical arch string: accuracy}.

    Args:
        path: the CSV file; the packaged CIFAR-100 table (`automl/data`) if None.
    """
    path = DATA_PATH if path is None else Path(path)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return {format_cell(parse(row["arch"])): float(row["test_accuracy"]) for row in reader}
