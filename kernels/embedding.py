"""Two ways to turn a distance into a positive semi-definite kernel, both fitted on a
reference set of graphs and reused unchanged for every later query.

- Bourgain embedding (as in Auto-Keras): random subsets S_1..S_m of the
  reference set, sizes halving from n/2 down to 1, log2(n) subsets per size;
  a graph x gets coordinates rho_s(x) = min over r in S_s of d(x, r) / sqrt(m).
  Each coordinate is 1-Lipschitz in d, so ||rho(x) - rho(y)|| <= d(x, y), and
  exp(-||rho(x) - rho(y)||^2 / l^2) is an RBF kernel on vectors, hence PSD for
  any set of points, reference or not.
- Eigenvalue clipping: K_ref = exp(-D_ref^2 / l^2) with its negative eigenvalues
  set to zero, extended to new graphs by the Nystrom features
  phi(x) = Lambda_+^(-1/2) V_+^T k_ref(x), plus a residual variance
  max(0, 1 - |phi(x)|^2) on graphs with the same key, then normalised to a unit
  diagonal. On the reference set this is exactly the clipped matrix (rescaled);
  for any mixed set it is an inner product of features, hence PSD.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg


def bourgain_subsets(n_reference: int, random_state: int = 0) -> np.ndarray:
    """The random reference subsets of a Bourgain embedding, deterministic in the seed.

    Args:
        n_reference: size of the reference set.
        random_state: seed.

    Returns:
        A boolean matrix (number of subsets, n_reference); each row a nonempty subset.
    """
    rng = np.random.default_rng(random_state)
    levels = max(1, math.ceil(math.log2(max(n_reference, 2))))
    rows = []
    for level in range(1, levels + 1):
        for _ in range(levels):
            row = rng.random(n_reference) < 2.0**-level
            if not row.any():
                row[rng.integers(n_reference)] = True
            rows.append(row)
    return np.array(rows)


def bourgain_embed(distances: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """Bourgain coordinates of graphs from their distances to the reference set.

    Args:
        distances: (n, n_reference) distances d(x, r).
        subsets: the boolean (m, n_reference) matrix of `bourgain_subsets`.

    Returns:
        (n, m) coordinates, scaled by 1/sqrt(m) so embedded distances are at most d.
    """
    coords = np.empty((distances.shape[0], subsets.shape[0]))
    for s, row in enumerate(subsets):
        coords[:, s] = distances[:, row].min(axis=1)
    return coords / math.sqrt(subsets.shape[0])


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of a and of b (clipped at 0)."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(sq, 0.0)


def clip_projection(reference_gram: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """The Nystrom projection V_+ Lambda_+^(-1/2) of a Gram matrix's positive part.

    Args:
        reference_gram: the symmetric (n, n) matrix exp(-D^2 / l^2) on the reference set.
        tol: eigenvalues up to tol times the largest are dropped.

    Returns:
        (n, r) matrix P; features of x are k_ref(x) @ P.
    """
    values, vectors = linalg.eigh((reference_gram + reference_gram.T) / 2.0)
    keep = values > tol * max(values.max(), tol)
    return vectors[:, keep] / np.sqrt(values[keep])


def clipped_kernel(
    kx: np.ndarray,
    ky: np.ndarray,
    projection: np.ndarray,
    same: np.ndarray,
) -> np.ndarray:
    """The clipped-spectrum kernel between two sets, from their kernels to the reference.

    Args:
        kx: (n, n_reference) values exp(-d(x, r)^2 / l^2).
        ky: (m, n_reference) the same for the second set.
        projection: the output of `clip_projection`.
        same: (n, m) booleans, True where x and y are the same graph (equal keys).

    Returns:
        (n, m) kernel matrix with unit diagonal, PSD on any set of graphs.
    """
    fx, fy = kx @ projection, ky @ projection
    nx, ny = (fx * fx).sum(1), (fy * fy).sum(1)
    residual = np.sqrt(np.maximum(1.0 - nx, 0.0))[:, None] * np.sqrt(np.maximum(1.0 - ny, 0.0))
    K = fx @ fy.T + np.where(same, residual, 0.0)
    return K / np.sqrt(np.maximum(nx, 1.0)[:, None] * np.maximum(ny, 1.0)[None, :])
