"""Graph kernels as GP surrogates on NAS-Bench-201 (CIFAR-100), against a one-hot RBF GP.

For each seed, N cells are drawn for training (N = 50, 100, 200, nested) and
1,000 other cells for testing; a Gaussian process
`ConstantKernel * kernel + WhiteKernel` with `normalize_y=True` is fitted on the
test accuracies of the training cells, and the rank correlation (Kendall's tau,
Spearman's rho) between its predicted means and the true accuracies of the test
cells is averaged over the seeds. The baseline is an isotropic RBF kernel on the
30-dimensional one-hot encoding of the 6 edges. Also times one cold Gram
matrix (features and distances not cached) per kernel on 300 cells, and on 300
ResNet-like `ArchitectureGraph`s (30 layers on average).

Usage:
    python benchmarks/kernels.py [--quick] [--json OUT]
"""

from __future__ import annotations

import os

# The GP's small dense solves run faster single-threaded, and timings stay stable
# on a shared machine. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from automl.kernels.base import clear_caches  # noqa: E402
from automl.kernels.edit_distance import EditDistanceKernel  # noqa: E402
from automl.kernels.wl import WLKernel  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel  # noqa: E402

from automl.nb201 import codec as nb201  # noqa: E402
from automl.nb201 import space as moves  # noqa: E402

KERNELS = {
    "wl_h1": lambda: WLKernel(h=1),
    "wl_h2": lambda: WLKernel(h=2),
    "edit_distance_clip": lambda: EditDistanceKernel(embedding="clip"),
    "edit_distance_bourgain": lambda: EditDistanceKernel(embedding="bourgain"),
    "onehot_rbf": lambda: RBF(length_scale=2.0, length_scale_bounds=(1e-2, 1e3)),
}
BASELINE = "onehot_rbf"


def _inputs(name: str, cells: list[nb201.Cell]):
    if name == BASELINE:
        return np.array([nb201.one_hot(c) for c in cells])
    return cells


def fit_predict(name: str, train, y_train, test, seed: int) -> np.ndarray:
    """Fits the GP with kernel `name` and returns its predicted mean on `test`."""
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * KERNELS[name]() + WhiteKernel(1e-1, (1e-6, 1e1))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(_inputs(name, train), y_train)
    return gp.predict(_inputs(name, test))


def rank_scores(kernels, sizes, seeds: int, n_test: int) -> list[dict]:
    """Mean Kendall tau and Spearman rho per (kernel, N) over `seeds` seeds."""
    table = nb201.load_table()
    cells = [nb201.parse(arch) for arch in table]
    accuracy = np.array(list(table.values()))
    scores: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(cells))
        test_idx = order[max(sizes) : max(sizes) + n_test]
        test = [cells[i] for i in test_idx]
        for n in sizes:
            train = [cells[i] for i in order[:n]]
            for name in kernels:
                predicted = fit_predict(name, train, accuracy[order[:n]], test, seed)
                tau = kendalltau(predicted, accuracy[test_idx]).statistic
                rho = spearmanr(predicted, accuracy[test_idx]).statistic
                scores.setdefault((name, n), []).append((tau, rho))
    return [
        {
            "kernel": name,
            "n_train": n,
            "kendall_tau": float(np.mean([s[0] for s in scores[name, n]])),
            "spearman_rho": float(np.mean([s[1] for s in scores[name, n]])),
            "seeds": seeds,
        }
        for name in kernels
        for n in sizes
    ]


def architectures(n_graphs: int = 300) -> list:
    """Distinct ResNet-like ArchitectureGraphs (1-3 stages, 1-2 blocks, varied widths)."""
    from automl.graph.seeds import resnet_cnn

    shapes = itertools.product(range(4, 4 + n_graphs), (1, 2, 3), (1, 2))
    return [
        resnet_cnn((16, 16, 3), 10, width=w, stages=s, blocks_per_stage=b)
        for w, s, b in itertools.islice(shapes, n_graphs)
    ]


def gram_seconds(kernels, graphs: list | None = None, n_graphs: int = 300) -> dict[str, float]:
    """Seconds for one cold Gram matrix (caches emptied first) per kernel.

    Args:
        kernels: kernel names.
        graphs: the graphs; None means `n_graphs` random NAS-Bench-201 cells.
        n_graphs: number of random cells.
    """
    if graphs is None:
        rng = np.random.default_rng(1234)
        graphs = [moves.sample(rng) for _ in range(n_graphs)]
    out = {}
    for name in kernels:
        clear_caches()
        kernel = KERNELS[name]()
        start = time.perf_counter()
        kernel(_inputs(name, graphs))
        out[name] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, N = 50 and 100")
    parser.add_argument("--json", metavar="OUT", help="write the results to this JSON file")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 10)")
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    args = parser.parse_args(argv)
    sizes = (50, 100) if args.quick else (50, 100, 200)
    seeds = args.seeds or (2 if args.quick else 10)
    start = time.perf_counter()
    results = rank_scores(args.kernels, sizes, seeds, n_test=1000)
    timings = gram_seconds(args.kernels)
    graph_kernels = [name for name in args.kernels if name != BASELINE]
    timings_graphs = gram_seconds(graph_kernels, architectures())
    print(f"NAS-Bench-201 CIFAR-100, GP rank correlation on 1,000 test cells, {seeds} seeds")
    print(f"{'kernel':<24}{'N':>5}{'tau':>8}{'rho':>8}")
    for row in results:
        print(
            f"{row['kernel']:<24}{row['n_train']:>5}"
            f"{row['kendall_tau']:>8.3f}{row['spearman_rho']:>8.3f}"
        )
    print("Gram matrix, cold caches (s):   300 NB201 cells   300 ArchitectureGraphs")
    for name, seconds in timings.items():
        other = f"{timings_graphs[name]:18.4f}" if name in timings_graphs else ""
        print(f"  {name:<24}{seconds:18.4f}{other}")
    print(f"total {time.perf_counter() - start:.0f} s")
    output = {
        "results": results,
        "gram_seconds_300": timings,
        "gram_seconds_300_architecture_graphs": timings_graphs,
    }
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(output, handle, indent=2)
    return output


if __name__ == "__main__":
    main()
