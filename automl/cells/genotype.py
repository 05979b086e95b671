"""Genotypes: the discrete cells derived from a supernet's alphas.

A cell is written as its intermediate nodes separated by `+`, each node listing
its incoming edges as `|op~input|`, the NAS-Bench-201 notation. A NAS-Bench-201
genotype is one such cell (all 6 edges, `none` included), and its string is the
canonical arch string of the codec `automl.nb201.codec` (the key of the benchmark
table); `Genotype.to_nb201` and `Genotype.from_nb201` convert. A DARTS genotype is
`normal=<cell>;reduction=<cell>` with 2 kept edges per node, where inputs 0 and
1 are the cell's inputs and 2..5 its intermediate nodes. Entries inside a node
are sorted by input, so every genotype has one canonical string.

This module is pure Python + numpy (no TensorFlow).

Example:
    >>> g = Genotype.from_string("|nor_conv_3x3~0|+|skip_connect~0|none~1|+"
    ...                          "|none~0|none~1|avg_pool_3x3~2|")
    >>> str(Genotype.from_string(str(g))) == str(g)
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from automl.cells.ops import DARTS_OPS, PARAMETRIC_OPS
from automl.nb201 import codec as nb201

CellSpec = tuple[tuple[tuple[str, int], ...], ...]
"""Nodes in order; each node a tuple of (op name, input index) pairs."""

DARTS_STEPS = 4
EARLY_STOP_SIZE = (6, 0)


def darts_edges(steps: int = DARTS_STEPS) -> list[tuple[int, int]]:
    """(source, target) of every edge of a DARTS cell, sorted by target then source."""
    return [(source, node + 2) for node in range(steps) for source in range(node + 2)]


def nb201_edges() -> list[tuple[int, int]]:
    """(source, target) of every edge of a NAS-Bench-201 cell: the codec's `EDGES` order."""
    return list(nb201.EDGES)


def cell_to_string(cell: CellSpec) -> str:
    """The canonical string of a cell."""
    return "+".join(
        "|" + "|".join(f"{op}~{source}" for op, source in _sorted(node)) + "|" for node in cell
    )


def cell_from_string(text: str) -> CellSpec:
    """Parse a cell string (inverse of `cell_to_string`).

    Raises:
        ValueError: if the text is not `|op~input|...+|...|`.
    """
    nodes = []
    for chunk in text.strip().split("+"):
        if not (chunk.startswith("|") and chunk.endswith("|") and len(chunk) > 2):
            raise ValueError(f"A cell node must look like '|op~input|'. Received: {chunk!r}")
        entries = []
        for entry in chunk[1:-1].split("|"):
            op, sep, source = entry.partition("~")
            if not sep or not source.isdigit() or not op:
                raise ValueError(f"A cell entry must look like 'op~input'. Received: {entry!r}")
            entries.append((op, int(source)))
        nodes.append(_sorted(entries))
    return tuple(nodes)


def _sorted(node) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(((str(op), int(source)) for op, source in node), key=lambda e: e[::-1]))


@dataclass(frozen=True)
class Genotype:
    """A derived architecture: one NAS-Bench-201 cell, or a DARTS normal + reduction pair.

    Args:
        normal: the normal cell (for NAS-Bench-201, the only cell).
        reduction: the DARTS reduction cell; None for NAS-Bench-201.
    """

    normal: CellSpec
    reduction: CellSpec | None = field(default=None)

    def __post_init__(self):
        object.__setattr__(self, "normal", tuple(_sorted(node) for node in self.normal))
        if self.reduction is not None:
            object.__setattr__(self, "reduction", tuple(_sorted(n) for n in self.reduction))

    @property
    def space(self) -> str:
        """ "darts" or "nb201"."""
        return "nb201" if self.reduction is None else "darts"

    def to_string(self) -> str:
        """The canonical string (see the module docstring)."""
        if self.reduction is None:
            return cell_to_string(self.normal)
        return f"normal={cell_to_string(self.normal)};reduction={cell_to_string(self.reduction)}"

    __str__ = to_string

    @classmethod
    def from_string(cls, text: str) -> Genotype:
        """Parse a genotype string.

        Raises:
            ValueError: if the text is malformed.
        """
        text = text.strip()
        if not text.startswith("normal="):
            return cls(cell_from_string(text))
        normal, sep, reduction = text[len("normal=") :].partition(";reduction=")
        if not sep:
            raise ValueError(f"A DARTS genotype needs ';reduction='. Received: {text!r}")
        return cls(cell_from_string(normal), cell_from_string(reduction))

    @classmethod
    def from_nb201(cls, cell: nb201.Cell) -> Genotype:
        """The NAS-Bench-201 genotype of a codec cell; its string is the cell's arch string."""
        return cls(nb201.to_nodes(cell))

    def to_nb201(self) -> nb201.Cell:
        """The codec cell of a NAS-Bench-201 genotype (inverse of `from_nb201`).

        Raises:
            ValueError: if this is a DARTS genotype or not a full NAS-Bench-201 cell.
        """
        if self.reduction is not None:
            raise ValueError(f"A DARTS genotype is no NAS-Bench-201 cell. Received: {self}")
        return nb201.from_nodes(self.normal)

    @property
    def model_size(self) -> tuple[int, int]:
        """(n, r): parametric (sep/dil conv) edges in the normal and the reduction cell.

        For NAS-Bench-201 genotypes n counts conv edges and r is 0.
        """
        if self.reduction is None:
            return (sum(op.startswith("nor_conv") for node in self.normal for op, _ in node), 0)
        return (_count_parametric(self.normal), _count_parametric(self.reduction))


def _count_parametric(cell: CellSpec) -> int:
    return sum(op in PARAMETRIC_OPS for node in cell for op, _ in node)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    logits = np.asarray(logits, dtype="float64")
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def derive_darts_cell(alphas: np.ndarray, steps: int = DARTS_STEPS) -> CellSpec:
    """Per node, the 2 incoming edges whose strongest non-`none` op is strongest.

    Args:
        alphas: (num_edges, 8) logits, rows in `darts_edges` order, columns in `DARTS_OPS`.
        steps: intermediate nodes.

    Returns:
        The cell, each kept edge with its best non-`none` op.
    """
    weights = softmax(alphas)
    _check_shape(weights, (len(darts_edges(steps)), len(DARTS_OPS)))
    none = DARTS_OPS.index("none")
    weights[:, none] = -np.inf
    nodes, row = [], 0
    for node in range(steps):
        rows = weights[row : row + node + 2]
        strength = rows.max(axis=1)
        kept = sorted(np.argsort(-strength, kind="stable")[:2])
        nodes.append(tuple((DARTS_OPS[int(rows[s].argmax())], int(s)) for s in kept))
        row += node + 2
    return tuple(nodes)


def derive_nb201_cell(alphas: np.ndarray) -> CellSpec:
    """The argmax op (`none` included) of every edge, never a dead cell.

    If the argmax leaves the output unreachable from the input (a network of
    constant output), the `none` edge whose best other op is closest to `none`
    takes that op, until the output is reachable.

    Args:
        alphas: (6, 5) logits, rows in `nb201.EDGES` order, columns in `nb201.OPS`.

    Returns:
        The cell's nodes (`nb201.to_nodes`), so its string is the table's arch string.
    """
    alphas = np.asarray(alphas)
    _check_shape(alphas, (len(nb201.EDGES), len(nb201.OPS)))
    best = alphas.argmax(axis=1)
    none = nb201.OPS.index("none")
    others = np.delete(np.arange(len(nb201.OPS)), none)
    while not nb201.live_edges(_nb201_cell(best)):
        dead = [k for k in range(len(nb201.EDGES)) if best[k] == none]
        margin = [alphas[k, others].max() - alphas[k, none] for k in dead]
        k = dead[int(np.argmax(margin))]
        best[k] = others[int(alphas[k, others].argmax())]
    return nb201.to_nodes(_nb201_cell(best))


def _nb201_cell(op_indices: np.ndarray) -> nb201.Cell:
    return nb201.Cell(tuple(nb201.OPS[int(i)] for i in op_indices))


def derive_genotype(alpha_normal: np.ndarray, alpha_reduction: np.ndarray | None = None):
    """The genotype of a supernet's alphas (DARTS when `alpha_reduction` is given)."""
    if alpha_reduction is None:
        return Genotype(derive_nb201_cell(alpha_normal))
    return Genotype(derive_darts_cell(alpha_normal), derive_darts_cell(alpha_reduction))


def _check_shape(array: np.ndarray, expected: tuple[int, int]) -> None:
    if array.shape != expected:
        raise ValueError(f"Alphas must have shape {expected}. Received: shape={array.shape}")


def reached_early_stop(size: tuple[int, int], stop_size: tuple[int, int] = EARLY_STOP_SIZE):
    """The MiLeNAS rule: stop once the normal cell has `stop_size[0]` or more parametric
    edges while the reduction cell has at most `stop_size[1]`."""
    return size[0] >= stop_size[0] and size[1] <= stop_size[1]


class ModelSizeRecord:
    """Model-size-based search: the best genotype per (n, r) by search-validation accuracy.

    Example:
        >>> record = ModelSizeRecord()
        >>> g = Genotype.from_string("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        >>> record.update(g, accuracy=0.5, epoch=0)
        True
        >>> record.best[(0, 0)]["accuracy"]
        0.5
    """

    def __init__(self):
        self.best: dict[tuple[int, int], dict] = {}

    def update(self, genotype: Genotype, accuracy: float, epoch: int) -> bool:
        """Keep `genotype` if it beats (or ties, being later) the best of its size."""
        size = genotype.model_size
        current = self.best.get(size)
        if current is not None and accuracy < current["accuracy"]:
            return False
        self.best[size] = {"genotype": str(genotype), "accuracy": float(accuracy), "epoch": epoch}
        return True

    def to_list(self) -> list[dict]:
        """JSON-friendly entries sorted by size."""
        return [{"model_size": list(size), **self.best[size]} for size in sorted(self.best)]
