"""NAS-Bench-201 as a search space: random cells, one-edge mutations, neighbours, `NB201Space`.

The cell encoding itself (ops, edges, arch strings, enumeration, the table) is the
codec `automl.nb201.codec`.

Example:
    >>> import random
    >>> cell = sample(random.Random(0))
    >>> sum(a != b for a, b in zip(cell.ops, mutate(cell, random.Random(1)).ops))
    1
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from automl.nb201.codec import EDGES, OPS, Cell, format_cell, parse


def _randrange(rng: Any, n: int) -> int:
    """An int in [0, n) from a `numpy.random.Generator` or a `random.Random`."""
    if hasattr(rng, "integers"):
        return int(rng.integers(n))
    return rng.randrange(n)


def sample(rng: Any = None) -> Cell:
    """A uniformly random cell: one draw in [0, 5) per edge, in `EDGES` order.

    Args:
        rng: a `numpy.random.Generator` or `random.Random`; a fresh `random.Random()` if None.
    """
    rng = random.Random() if rng is None else rng
    return Cell(tuple(OPS[_randrange(rng, len(OPS))] for _ in EDGES))


def neighbours(cell: Cell) -> list[Cell]:
    """All 24 cells that differ from `cell` on exactly one edge, edge by edge in `OPS` order."""
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


class NB201Space:
    """The 15,625 NAS-Bench-201 cells (`automl.nb201.codec.Cell`); neighbours are the
    24 one-edge mutations. Cells go to the graph kernels as they are."""

    def sample(self, rng: np.random.Generator) -> Cell:
        return sample(rng)

    def neighbours(self, arch: Cell, rng: np.random.Generator) -> list[Cell]:
        children = neighbours(arch)
        return [children[i] for i in rng.permutation(len(children))]

    def to_graph(self, arch: Cell) -> Cell:
        return arch

    def key(self, arch: Cell) -> str:
        return format_cell(arch)

    def dumps(self, arch: Cell) -> str:
        return format_cell(arch)

    def loads(self, text: str) -> Cell:
        return parse(text)
