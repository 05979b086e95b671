"""The NAS-Bench-201 cell codec: ops, edges, the canonical arch string, the table.

A cell has 4 nodes: node 0 is the cell input, node 3 the output, and node j sums
its incoming edges. Each of the 6 edges (one from every earlier node) carries one
of the 5 operations in `OPS`. Edges have one fixed order, sorted by target, then
by source:

    EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))   # (source, target)

Edge k means the same edge everywhere: position k of `Cell.ops`, row k of the
alphas of a NAS-Bench-201 supernet (`automl.cells`), and position k in `live_edges`.
The canonical arch string, the key of the benchmark table, lists node by node
the `op~source` entries of the edges into that node, sources in increasing order:

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

This module is pure Python; the search moves live in `automl.nb201.space`, the
labelled graph of a cell for the graph kernels in `automl.kernels`.

Example:
    >>> cell = parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|"
    ...              "+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    >>> cell.ops[EDGES.index((1, 2))]
    'skip_connect'
    >>> format_cell(cell) == cell.to_string()
    True
"""

from __future__ import annotations

import csv
import importlib.resources
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from automl.errors import InputError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_NODES = 4
EDGES: tuple[tuple[int, int], ...] = tuple(
    (source, target) for target in range(1, NUM_NODES) for source in range(target)
)
NUM_CELLS = len(OPS) ** len(EDGES)  # 15,625
TABLE_PATH = Path(str(importlib.resources.files("automl.nb201") / "cifar100.csv"))
"""The shipped table: CIFAR-100 test accuracy of every cell (200 epochs), from NAS-Bench-201."""

Nodes = tuple[tuple[tuple[str, int], ...], ...]
"""Nodes 1, 2, 3 in order; each a tuple of (op, source) entries, sources increasing."""


@dataclass(frozen=True)
class Cell:
    """One NAS-Bench-201 cell: the operation on each of the 6 edges, in `EDGES` order.

    Args:
        ops: six operation names from `OPS`.

    Raises:
        InputError: if there are not six ops or one is not in `OPS`.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        object.__setattr__(self, "ops", ops)
        if len(ops) != len(EDGES):
            raise InputError(f"A cell has {len(EDGES)} edge ops. Received: {len(ops)} ops {ops}.")
        unknown = [op for op in ops if op not in OPS]
        if unknown:
            raise InputError(f"Unknown NAS-Bench-201 ops {unknown}. Known ops: {list(OPS)}.")

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

    def __str__(self) -> str:
        return format_cell(self)


def to_nodes(cell: Cell) -> Nodes:
    """The cell node by node: for nodes 1, 2, 3, the (op, source) entry of each incoming edge."""
    return tuple(
        tuple((op, source) for (source, t), op in zip(EDGES, cell.ops) if t == target)
        for target in range(1, NUM_NODES)
    )


def from_nodes(nodes: Sequence[Sequence[tuple[str, int]]]) -> Cell:
    """The cell of `to_nodes` form (inverse of `to_nodes`).

    Args:
        nodes: for nodes 1, 2, 3, the (op, source) entries; node j lists sources 0..j-1
            in order.

    Raises:
        InputError: if the nodes do not describe a NAS-Bench-201 cell.
    """
    return _from_nodes(nodes, nodes)


def _from_nodes(nodes: Sequence[Sequence[tuple[str, int]]], given: object) -> Cell:
    """`from_nodes`, naming `given` (what the caller received) in its errors."""
    if len(nodes) != NUM_NODES - 1:
        raise InputError(
            f"A NAS-Bench-201 cell has {NUM_NODES - 1} nodes. Received: {len(nodes)} in {given!r}."
        )
    ops = []
    for target, node in enumerate(nodes, start=1):
        sources = [source for _, source in node]
        if sources != list(range(target)):
            raise InputError(
                f"Node {target} takes inputs {list(range(target))} in order. "
                f"Received: {sources} in {given!r}."
            )
        ops += [op for op, _ in node]
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise InputError(
            f"Unknown NAS-Bench-201 ops {unknown} in {given!r}. Known ops: {list(OPS)}."
        )
    return Cell(tuple(ops))


def parse(arch: str) -> Cell:
    """Parses a canonical arch string such as `|nor_conv_3x3~0|+|...|+|...|`.

    Args:
        arch: nodes 1, 2, 3 separated by `+`, each `|`-delimited `op~source` entries,
            sources in increasing order. Whitespace around the string is ignored.

    Returns:
        The cell.

    Raises:
        InputError: if `arch` does not describe a NAS-Bench-201 cell; the message
            names the string.
    """
    if not isinstance(arch, str):
        raise InputError(f"An arch string must be a str. Received: {type(arch).__name__} {arch!r}.")
    chunks = arch.strip().split("+")
    if len(chunks) != NUM_NODES - 1:
        raise InputError(
            f"A NAS-Bench-201 arch string has {NUM_NODES - 1} nodes separated by '+'. "
            f"Received: {arch!r}."
        )
    nodes = []
    for target, chunk in enumerate(chunks, start=1):
        chunk = chunk.strip()
        if len(chunk) < 2 or not (chunk.startswith("|") and chunk.endswith("|")):
            raise InputError(
                f"Node {target} must be written '|op~source|...|'. Received: {chunk!r} in {arch!r}."
            )
        entries = []
        for entry in chunk[1:-1].split("|"):
            op, sep, source = entry.partition("~")
            if not (op and sep and source.isascii() and source.isdigit()):
                raise InputError(
                    f"Entries are written 'op~source'. Received: {entry!r} in {arch!r}."
                )
            entries.append((op, int(source)))
        nodes.append(tuple(entries))
    return _from_nodes(nodes, arch)


def format_cell(cell: Cell) -> str:
    """The canonical arch string of a cell (inverse of `parse`)."""
    return "+".join(
        "|" + "|".join(f"{op}~{source}" for op, source in node) + "|" for node in to_nodes(cell)
    )


def all_cells() -> list[Cell]:
    """All 15,625 cells, in lexicographic order of op indices over `EDGES`."""
    return [Cell(ops) for ops in itertools.product(OPS, repeat=len(EDGES))]


def one_hot(cell: Cell) -> list[float]:
    """The 30-dimensional one-hot encoding (6 edges x 5 ops, edge-major, `OPS` order)."""
    return [1.0 if op == cell_op else 0.0 for cell_op in cell.ops for op in OPS]


def live_edges(cell: Cell) -> list[int]:
    """Positions (in `EDGES` order) of the edges that can change the output.

    An edge is live when its op is not `none`, its source is reachable from node 0
    through non-`none` edges, and its target reaches node 3 through them. The list
    is empty exactly when the output does not depend on the input (constant zero).
    """
    active = [k for k, op in enumerate(cell.ops) if op != "none"]
    from_input = {0}
    for k in active:  # EDGES is sorted by target, so one pass suffices
        source, target = EDGES[k]
        if source in from_input:
            from_input.add(target)
    to_output = {NUM_NODES - 1}
    for k in reversed(active):
        source, target = EDGES[k]
        if target in to_output:
            to_output.add(source)
    return [k for k in active if EDGES[k][0] in from_input and EDGES[k][1] in to_output]


def load_table(path: str | Path | None = None, column: str = "test_accuracy") -> dict[str, float]:
    """Reads a CSV table of cells into {canonical arch string: score}.

    Args:
        path: a CSV with an `arch` column (any arch string `parse` reads) and
            `column`; the packaged CIFAR-100 table (`TABLE_PATH`) if None or empty.
        column: the score column.

    Returns:
        The scores, keyed by canonical arch string.

    Raises:
        InputError: if the file is missing, lacks a column, or a row is malformed.
    """
    path = Path(path) if path else TABLE_PATH
    if not path.is_file():
        raise InputError(f"No NAS-Bench-201 table at {path}. Pass a CSV with an 'arch' column.")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if "arch" not in fields or column not in fields:
            raise InputError(
                f"The table {path} needs columns 'arch' and {column!r}. Found: {fields}."
            )
        table = {}
        for row in reader:
            try:
                table[format_cell(parse(row["arch"]))] = float(row[column])
            except (ValueError, TypeError) as err:  # InputError is a ValueError
                raise InputError(f"Line {reader.line_num} of {path}: {err}") from err
        return table
