"""The deterministic validation split of a stream: a hash of (position, seed) per element.

A stream cannot be shuffled and split in memory, so each element (or, for a
`keras.utils.PyDataset`, each batch) is routed by a hash of its position in the
stream and the seed: it is held out when `uniform(position, seed)` falls below
the fraction. The same stream and seed give the same split on every pass, in
every process and on resume; a different seed gives an unrelated split.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / the golden ratio, the splitmix64 increment


def _mix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 values (wrapping arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(positions, seed: int) -> np.ndarray:
    """A number in [0, 1) for each position, a fixed function of (position, seed).

    Example:
        >>> held = uniform(np.arange(1000), seed=0) < 0.2  # about 200 True
    """
    with np.errstate(over="ignore"):
        key = _mix(np.asarray([seed], dtype=np.uint64) + np.uint64(_GOLDEN))
        z = _mix(np.asarray(positions, dtype=np.uint64) * np.uint64(_GOLDEN) + key)
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def held_out(positions, fraction: float | None, seed: int) -> np.ndarray:
    """Whether each position goes to the held-out part (all False without a fraction)."""
    positions = np.asarray(positions)
    if not fraction:
        return np.zeros(positions.shape, dtype=bool)
    return uniform(positions, seed) < fraction


def routed(stream, fraction: float | None, seed: int):
    """The batches of `stream` with the held-out mask of their rows: (x, y, w, held).

    Element streams are routed row by row (rows numbered across batches); batch
    streams (`unit == "batch"`) batch by batch.
    """
    from automl.data.arrays import n_samples

    start = 0
    for index, (x, y, w) in enumerate(stream.batches()):
        rows = n_samples(x)
        if stream.unit == "batch":
            held = np.full(rows, bool(held_out([index], fraction, seed)[0]))
        else:
            held = held_out(np.arange(start, start + rows), fraction, seed)
        start += rows
        yield x, y, w, held
