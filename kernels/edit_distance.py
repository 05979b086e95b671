"""The Auto-Keras neural-network edit distance and the kernel built on it.

The distance of Jin, Song and Hu, "Auto-Keras: An Efficient Neural Architecture
Search System" (KDD 2019):

d(a, b) = D_l(a, b) + lambda * D_s(a, b), where

- D_l, layer edit distance: the main chain of a graph is its longest path
  ending at the output (ties go to the earlier input). The two chains' label
  sequences are aligned by dynamic programming: insert or delete costs 1,
  substituting a layer for one of another label costs 1, and for one of the
  same label |w_a - w_b| / max(w_a, w_b) (0 for layers without a width).
- D_s, skip-connection distance: every input of a main-chain node other than
  its chain predecessor is a skip connection, traced back through off-chain
  nodes to the latest main-chain node it starts from; it has a start rank u, a
  span delta, and a kind (the merging node's label and the sorted labels of the
  branch's own nodes). Skips are matched by the Hungarian algorithm: a pair of
  the same kind costs (|u_a - u_b| + |delta_a - delta_b|) / (max u + max delta),
  of different kinds 1, and each unmatched skip 1.

Both parts are vectorised over all pairs at once: the edit distance runs one
numpy row update per layer of the longest chain (a row of the DP table is a
cumulative minimum), and skip sets of up to 6 are matched by scoring every
permutation at once (`linear_sum_assignment` for larger ones).

The distance does not embed isometrically in a Euclidean space, so
exp(-d^2 / l^2) need not be positive semi-definite. `EditDistanceKernel` makes
it PSD by either embedding of `automl.kernels.embedding`, fitted on a reference
set and reused for queries.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

import numpy as np
from automl.kernels import embedding
from automl.kernels.base import GraphKernel, LabelledGraph, as_labelled_list, register_cache
from scipy.optimize import linear_sum_assignment
from sklearn.gaussian_process.kernels import Hyperparameter

_CODES: dict[str, int] = {}
_MATRICES: OrderedDict = register_cache(OrderedDict())
_CHUNK = 20_000
_MAX_PERMUTED = 6
EMBEDDINGS = ("bourgain", "clip")


def _code(label: str) -> int:
    return _CODES.setdefault(label, len(_CODES))


def structure(graph: LabelledGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Main chain and skip connections of a graph (cached on the graph).

    Returns:
        (label codes of the main chain, their widths with 0 for none,
        skips as a float array of rows (u, delta, kind code)).
    """
    found = graph.cache.get("edit")
    if found is not None:
        return found
    inputs = graph.inputs
    length, best = [1] * len(graph), [-1] * len(graph)
    for v, ins in enumerate(inputs):
        for p in sorted(ins):
            if length[p] + 1 > length[v]:
                length[v], best[v] = length[p] + 1, p
    chain, v = [], len(graph) - 1
    while v != -1:
        chain.append(v)
        v = best[v]
    chain.reverse()
    rank = {node: r for r, node in enumerate(chain)}
    skips = []
    for r, v in enumerate(chain):
        for p in sorted(set(inputs[v])):
            if r > 0 and p == chain[r - 1]:
                continue
            start, branch, stack, seen = 0, [], [p], set()
            while stack:
                q = stack.pop()
                if q in seen:
                    continue
                seen.add(q)
                if q in rank:
                    start = max(start, rank[q])
                else:
                    branch.append(graph.labels[q])
                    stack.extend(inputs[q])
            kind = graph.labels[v] + ":" + "/".join(sorted(branch))
            skips.append((start, r - start, _code(kind)))
    codes = np.array([_code(graph.labels[i]) for i in chain], dtype=np.int64)
    widths = np.array([graph.widths[i] or 0.0 for i in chain], dtype=np.float64)
    result = (codes, widths, np.array(skips, dtype=np.float64).reshape(-1, 3))
    graph.cache["edit"] = result
    return result


def _pad(rows: list[np.ndarray], fill: float, dtype, width: int = 0) -> np.ndarray:
    width = max(1, width, max(len(r) for r in rows))
    out = np.full((len(rows), width) + rows[0].shape[1:], fill, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _substitution_table(codes: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Substitution cost minus 1 between every two (label code, width) tokens."""
    same = codes[:, None] == codes[None, :]
    top = np.maximum(widths[:, None], widths[None, :])
    near = np.abs(widths[:, None] - widths[None, :]) / np.where(top > 0, top, 1.0)
    return np.where(same, near, 1.0) - 1.0


def _layer_distance(tokens_a, len_a, tokens_b, len_b, table) -> np.ndarray:
    """Edit distances for pairs of padded token rows (P, La) and (P, Lb).

    Works on Q[i, j] = D[i, j] - j, for which a DP row is a cumulative minimum:
    Q[i, 0] = i and Q[i, j] = min over j' <= j of min(Q[i-1, j'] + 1,
    Q[i-1, j'-1] + sub(i, j') - 1). Arrays are (column, pair), so each step of
    the cumulative minimum is one contiguous vector operation over all pairs.
    """
    pairs, cols = tokens_b.shape[0], int(len_b.max()) + 1
    tokens_b = np.ascontiguousarray(tokens_b[:, : cols - 1].T)
    tokens_a = np.ascontiguousarray(tokens_a.T)
    prev = np.zeros((cols, pairs), dtype=table.dtype)
    row = np.empty((cols, pairs), dtype=table.dtype)
    out = np.zeros(pairs)
    for i in range(1, int(len_a.max()) + 1):
        sub = table[tokens_a[i - 1], tokens_b]
        np.add(prev[:-1], sub, out=sub)
        np.add(prev[1:], 1.0, out=row[1:])
        np.minimum(row[1:], sub, out=row[1:])
        row[0] = i
        np.minimum.accumulate(row, axis=0, out=prev)
        done = np.flatnonzero(len_a == i)
        out[done] = prev[len_b[done], done] + len_b[done]
    return out


def _skip_distance(skips_a: np.ndarray, na: np.ndarray, skips_b: np.ndarray, nb: np.ndarray):
    """Optimal skip matching costs for aligned pairs of padded (P, S, 3) skip arrays."""
    out = np.maximum(na, nb).astype(np.float64)
    size = np.where(np.minimum(na, nb) > 0, out, 0).astype(int)
    for n in np.unique(size[size > 0]):
        idx = np.flatnonzero(size == n)
        sa, sb = skips_a[idx, :n], skips_b[idx, :n]
        ua, da, ka = (sa[:, :, None, c] for c in range(3))
        ub, db, kb = (sb[:, None, :, c] for c in range(3))
        scale = np.maximum(ua, ub) + np.maximum(da, db)
        near = (np.abs(ua - ub) + np.abs(da - db)) / np.where(scale > 0, scale, 1.0)
        cost = np.where((ka == kb) & (ka >= 0), near, 1.0)
        if n <= _MAX_PERMUTED:
            perms = np.array(list(itertools.permutations(range(n))))
            rows, step = np.arange(n), max(1, _CHUNK // len(perms))
            for start in range(0, len(idx), step):
                totals = cost[start : start + step][:, rows, perms].sum(axis=2)
                out[idx[start : start + step]] = totals.min(axis=1)
        else:
            for t, i in enumerate(idx):
                r, c = linear_sum_assignment(cost[t])
                out[i] = cost[t][r, c].sum()
    return out


def _pair_distances(xs, ys, ia, ib, skip_weight: float) -> np.ndarray:
    if len(ia) == 0:
        return np.zeros(0)
    sx, sy = [structure(g) for g in xs], [structure(g) for g in ys]
    chains = [s[:2] for s in sx + sy]
    pairs = np.concatenate([np.stack([c, w], axis=1) for c, w in chains])
    tokens, inverse = np.unique(pairs, axis=0, return_inverse=True)
    table = _substitution_table(tokens[:, 0], tokens[:, 1])
    lengths = np.array([len(c) for c, _ in chains])
    padded = np.zeros((len(chains), int(lengths.max())), dtype=np.int64)
    padded[np.arange(len(chains)).repeat(lengths), _ranges(lengths)] = inverse.ravel()
    ta, tb, la, lb = padded[: len(sx)], padded[len(sx) :], lengths[: len(sx)], lengths[len(sx) :]
    na, nb = np.array([len(s[2]) for s in sx]), np.array([len(s[2]) for s in sy])
    most = int(max(na.max(), nb.max()))
    sa = _pad([s[2] for s in sx], -1.0, np.float64, most)
    sb = _pad([s[2] for s in sy], -1.0, np.float64, most)
    order = np.lexsort((lb[ib], la[ia]))  # similar lengths share a chunk: less padding
    out = np.empty(len(ia))
    for start in range(0, len(ia), _CHUNK):
        chunk = order[start : start + _CHUNK]
        a, b = ia[chunk], ib[chunk]
        layer = _layer_distance(ta[a], la[a], tb[b], lb[b], table)
        skip = _skip_distance(sa[a], na[a], sb[b], nb[b])
        out[chunk] = layer + skip_weight * skip
    return out


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [0..l0-1, 0..l1-1, ...]."""
    ends = np.cumsum(lengths)
    return np.arange(ends[-1]) - np.repeat(ends - lengths, lengths)


def distance_matrix(X, Y=None, skip_weight: float = 1.0) -> np.ndarray:
    """Pairwise Auto-Keras edit distances d = D_l + skip_weight * D_s.

    Args:
        X: architectures (anything `automl.kernels.base.as_labelled` takes).
        Y: architectures; None means Y = X (then only one triangle is computed).
        skip_weight: lambda, the weight of the skip-connection distance.

    Returns:
        The (len(X), len(Y)) distance matrix, read-only: the last few matrices are
        cached by the graphs' keys, so repeated calls during GP tuning are free.
    """
    xs = as_labelled_list(X)
    ys = xs if Y is None else as_labelled_list(Y)
    keys_x, keys_y = tuple(g.key for g in xs), tuple(g.key for g in ys)
    cache_key = (keys_x, keys_y, float(skip_weight))
    if cache_key in _MATRICES:
        _MATRICES.move_to_end(cache_key)
        return _MATRICES[cache_key]
    ux = {k: i for i, k in enumerate(dict.fromkeys(keys_x))}
    uy = ux if keys_y == keys_x else {k: i for i, k in enumerate(dict.fromkeys(keys_y))}
    gx = {g.key: g for g in xs}
    gy = {g.key: g for g in ys}
    first = [gx[k] for k in ux]
    second = first if uy is ux else [gy[k] for k in uy]
    if uy is ux:
        ia, ib = np.triu_indices(len(first), k=1)
        unique = np.zeros((len(first), len(first)))
        unique[ia, ib] = _pair_distances(first, second, ia, ib, skip_weight)
        unique += unique.T
    else:
        ia, ib = (g.ravel() for g in np.indices((len(first), len(second))))
        unique = _pair_distances(first, second, ia, ib, skip_weight).reshape(len(first), -1)
    D = unique[np.ix_([ux[k] for k in keys_x], [uy[k] for k in keys_y])]
    D.flags.writeable = False  # shared through the cache
    _MATRICES[cache_key] = D
    if len(_MATRICES) > 8:
        _MATRICES.popitem(last=False)
    return D


def edit_distance(a, b, skip_weight: float = 1.0) -> float:
    """The Auto-Keras edit distance between two architectures; see `distance_matrix`."""
    return float(distance_matrix([a], [b], skip_weight)[0, 0])


class EditDistanceKernel(GraphKernel):
    """Kernel exp(-rho^2 / l^2) on the Auto-Keras edit distance, made PSD by an embedding.

    The embedding is fitted on a reference set, the graphs of the first call
    (its `Y` if given, else its `X`; for a Gaussian process that is the training
    set), stored in `reference_`, and reused unchanged for every later call, so
    training and query graphs share one embedding. `sklearn.base.clone` (and so
    every GP fit) starts a fresh reference.

    - `"bourgain"` (Auto-Keras): rho = distance between Bourgain coordinates
      (distances to random subsets of the reference set). An RBF on vectors, so
      PSD on any graphs, and differentiable in l.
    - `"clip"`: rho = d, with the negative eigenvalues of the reference Gram
      matrix clipped to zero and Nystrom features for the other graphs; its
      gradient in l is a central finite difference.

    Default `"bourgain"`: as a GP surrogate on NAS-Bench-201 it ranks unseen cells
    better than clipping, at about the same cost. With clipping, the marginal
    likelihood picks a length scale at which exp(-d^2 / l^2) is almost diagonal at
    typical cell distances, so a test cell correlates with few training cells;
    Bourgain coordinates contract distances, and the kernel reaches further at a
    similar l. Measured results: benchmarks/README.md.

    Args:
        length_scale: l, tuned by the GP's marginal likelihood.
        length_scale_bounds: bounds of l, or "fixed".
        skip_weight: lambda, weight of the skip-connection distance (fixed).
        embedding: `"bourgain"` or `"clip"`.
        random_state: seed of the Bourgain subsets.
    """

    def __init__(
        self,
        length_scale: float = 1.0,
        length_scale_bounds=(1e-2, 1e3),
        skip_weight: float = 1.0,
        embedding: str = "bourgain",
        random_state: int = 0,
    ):
        self.length_scale = length_scale
        self.length_scale_bounds = length_scale_bounds
        self.skip_weight = skip_weight
        self.embedding = embedding
        self.random_state = random_state

    @property
    def hyperparameter_length_scale(self) -> Hyperparameter:
        return Hyperparameter("length_scale", "numeric", self.length_scale_bounds)

    @property
    def hyperparameter_skip_weight(self) -> Hyperparameter:
        return Hyperparameter("skip_weight", "numeric", "fixed")

    def set_reference(self, X) -> EditDistanceKernel:
        """Fits the embedding on the architectures `X` (otherwise the first call does).

        Returns:
            self.
        """
        if self.embedding not in EMBEDDINGS:
            raise ValueError(
                f"embedding must be one of {EMBEDDINGS}. Received: {self.embedding!r}."
            )
        self.reference_ = as_labelled_list(X)
        if not self.reference_:
            raise ValueError("The reference set is empty. Pass at least one architecture.")
        self._subsets = embedding.bourgain_subsets(len(self.reference_), self.random_state)
        self._projection = None
        return self

    def _distances(self, graphs: list[LabelledGraph]) -> np.ndarray:
        return distance_matrix(graphs, self.reference_, self.skip_weight)

    def _bourgain(self, xs, ys, length_scale: float, eval_gradient: bool):
        ex = embedding.bourgain_embed(self._distances(xs), self._subsets)
        ey = ex if ys is None else embedding.bourgain_embed(self._distances(ys), self._subsets)
        scaled = embedding.squared_distances(ex, ey) / length_scale**2
        K = np.exp(-scaled)
        if ys is None:
            np.fill_diagonal(K, 1.0)
        if eval_gradient:
            gradient = (K * 2.0 * scaled)[:, :, None]
            if self.hyperparameter_length_scale.fixed:
                gradient = np.empty((K.shape[0], K.shape[0], 0))
            return K, gradient
        return K

    def _clip(self, xs, ys, length_scale: float) -> np.ndarray:
        if self._projection is None or self._projection[0] != length_scale:
            reference = np.exp(-(self._distances(self.reference_) ** 2) / length_scale**2)
            self._projection = (length_scale, embedding.clip_projection(reference))
        projection = self._projection[1]
        kx = np.exp(-(self._distances(xs) ** 2) / length_scale**2)
        ky = kx if ys is None else np.exp(-(self._distances(ys) ** 2) / length_scale**2)
        keys_x = np.array([g.key for g in xs], dtype=object)
        keys_y = keys_x if ys is None else np.array([g.key for g in ys], dtype=object)
        K = embedding.clipped_kernel(kx, ky, projection, keys_x[:, None] == keys_y[None, :])
        if ys is None:
            K = (K + K.T) / 2.0
            np.fill_diagonal(K, 1.0)
        return K

    def _gram(self, xs, ys, eval_gradient):
        if getattr(self, "reference_", None) is None:
            self.set_reference(xs if ys is None else ys)
        length_scale = float(self.length_scale)
        if self.embedding == "bourgain":
            return self._bourgain(xs, ys, length_scale, eval_gradient)
        K = self._clip(xs, ys, length_scale)
        if not eval_gradient:
            return K
        if self.hyperparameter_length_scale.fixed:
            return K, np.empty((K.shape[0], K.shape[0], 0))
        step = 1e-4  # central difference in log(length_scale)
        upper = self._clip(xs, ys, length_scale * np.exp(step))
        lower = self._clip(xs, ys, length_scale * np.exp(-step))
        self._clip(xs, ys, length_scale)  # leave the projection at the current l
        return K, ((upper - lower) / (2 * step))[:, :, None]
