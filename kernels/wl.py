"""Weisfeiler-Lehman subtree kernel on architecture graphs.

Each node starts with its label (the op or layer type, plus a width bucket
round(log2(width)) for layers that have a width when `use_width` is set). In
each of `h` iterations every node's label is replaced by a hash of its label and
the sorted labels of its neighbours (inputs, outputs, or both; `direction`).
A graph's feature vector counts every label of iterations 0..h; the kernel is
the cosine of two feature vectors, so k(x, x) = 1 and the Gram matrix is
positive semi-definite (it is an inner product of explicit features).

Features are computed once per graph and cached; a Gram matrix is one sparse
matrix product, so 300 graphs take milliseconds.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
from automl.kernels.base import GraphKernel, LabelledGraph
from scipy import sparse
from sklearn.gaussian_process.kernels import Hyperparameter

DIRECTIONS = ("in", "out", "both")


def _hash(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True
    )


def _initial_label(graph: LabelledGraph, i: int, use_width: bool) -> str:
    width = graph.widths[i]
    if use_width and width:
        return f"{graph.labels[i]}/w{round(math.log2(width))}"
    return graph.labels[i]


def wl_features(
    graph: LabelledGraph, h: int, use_width: bool = True, direction: str = "both"
) -> tuple[np.ndarray, np.ndarray, float]:
    """The WL subtree features of one graph (cached on the graph).

    Args:
        graph: the labelled graph.
        h: number of relabelling iterations.
        use_width: add a width bucket to the initial labels.
        direction: neighbours used in relabelling: `in`, `out` or `both`.

    Returns:
        (feature ids as int64, counts as float64, Euclidean norm of the counts).
    """
    cache_key = ("wl", h, use_width, direction)
    found = graph.cache.get(cache_key)
    if found is not None:
        return found
    succ = graph.successors()
    current = [_hash("0:" + _initial_label(graph, i, use_width)) for i in range(len(graph))]
    counts: dict[int, int] = {}
    for label in current:
        counts[label] = counts.get(label, 0) + 1
    for step in range(1, h + 1):
        new = []
        for i in range(len(graph)):
            parts = [str(step), str(current[i])]
            if direction in ("in", "both"):
                parts.append("<" + ",".join(map(str, sorted(current[j] for j in graph.inputs[i]))))
            if direction in ("out", "both"):
                parts.append(">" + ",".join(map(str, sorted(current[j] for j in succ[i]))))
            new.append(_hash("|".join(parts)))
        current = new
        for label in current:
            counts[label] = counts.get(label, 0) + 1
    ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    result = (ids, values, float(np.sqrt(values @ values)))
    graph.cache[cache_key] = result
    return result


class WLKernel(GraphKernel):
    """Normalised Weisfeiler-Lehman subtree kernel.

    Args:
        h: number of WL iterations (a fixed hyperparameter, not tuned by the GP).
        use_width: add a width bucket round(log2(width)) to layer labels.
        direction: neighbours used in relabelling, `in`, `out` or `both`.

    Example:
        >>> from sklearn.gaussian_process import GaussianProcessRegressor
        >>> from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel
        >>> from automl.nb201 import codec as nb201
        >>> cells = nb201.all_cells()[:20]
        >>> kernel = ConstantKernel() * WLKernel(h=2) + WhiteKernel()
        >>> gp = GaussianProcessRegressor(kernel, normalize_y=True).fit(cells, range(20))
    """

    def __init__(self, h: int = 2, use_width: bool = True, direction: str = "both"):
        self.h = h
        self.use_width = use_width
        self.direction = direction

    @property
    def hyperparameter_h(self) -> Hyperparameter:
        return Hyperparameter("h", "numeric", "fixed")

    def _features(self, graphs: list[LabelledGraph]) -> tuple[list, np.ndarray]:
        if int(self.h) != self.h or self.h < 0:
            raise ValueError(f"h must be a non-negative integer. Received: h={self.h!r}.")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"direction must be one of {DIRECTIONS}. Received: {self.direction!r}."
            )
        feats = [wl_features(g, int(self.h), bool(self.use_width), self.direction) for g in graphs]
        return feats, np.array([f[2] for f in feats])

    @staticmethod
    def _matrices(*groups: list) -> list[sparse.csr_matrix]:
        ids = np.concatenate([f[0] for group in groups for f in group])
        _, columns = np.unique(ids, return_inverse=True)
        width = int(columns.max()) + 1 if len(columns) else 0
        out, start = [], 0
        for group in groups:
            sizes = np.array([len(f[0]) for f in group])
            stop = start + int(sizes.sum())
            rows = np.repeat(np.arange(len(group)), sizes)
            values = np.concatenate([f[1] for f in group])
            out.append(
                sparse.csr_matrix((values, (rows, columns[start:stop])), shape=(len(group), width))
            )
            start = stop
        return out

    def _gram(self, xs, ys, eval_gradient):
        fx, nx = self._features(xs)
        if ys is None:
            (mx,) = self._matrices(fx)
            dot = (mx @ mx.T).toarray()
            K = dot / np.outer(nx, nx)
            np.fill_diagonal(K, 1.0)
        else:
            fy, ny = self._features(ys)
            mx, my = self._matrices(fx, fy)
            K = (mx @ my.T).toarray() / np.outer(nx, ny)
        if eval_gradient:
            return K, np.empty((K.shape[0], K.shape[0], 0))
        return K
