"""NAS-Bench-201 search moves: random cells, one-edge mutations and neighbours.

The cell encoding itself (ops, edges, arch strings, enumeration, the table) is the
codec `automl.graph.nb201`.

Example:
    >>> import random
    >>> cell = sample(random.Random(0))
    >>> sum(a != b for a, b in zip(cell.ops, mutate(cell, random.Random(1)).ops))
    1
"""

from __future__ import annotations

import random
from typing import Any

from automl.graph.nb201 import EDGES, OPS, Cell


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
