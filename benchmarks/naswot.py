"""NASWOT screening benchmark: does the training-free score rank architectures by accuracy?

Data: scikit-learn's `load_digits` (8x8 images, pixels / 16), a fixed 75/25
stratified train / validation split (random_state=0).

Candidates: `--n` architectures, each a seed from `automl.graph.seeds`
(`small_cnn` at widths 8, 16 and 32 with 1 or 2 convs per block, `resnet_cnn`
at widths 8 and 16, `mlp` at widths 32, 64 and 128), followed by a chain of 0 to
6 random network morphisms (`automl.morphism.operators.random_op`, the type
drawn uniformly among those with a valid operation, then `apply_op`); a
morphism that would take the graph above `--max-params` parameters is drawn
again. Duplicate graphs are drawn again too.

For each candidate:

- NASWOT score (`automl.search.screening`) of the network at its initial weights on
  one fixed batch of `--score-batch` (64) training images, timed in two parts:
  building the Keras model (seconds) and scoring it (one forward pass,
  milliseconds);
- then the same initialisation (the same seed) is trained from scratch for
  `--epochs` epochs (Adam, lr 1e-3, batch 32), and the best validation accuracy
  over the epochs is recorded.

Reported:

- Spearman and Kendall rank correlations between score and accuracy, with
  their p-values. 1 means the score orders the candidates exactly as training
  does; 0 means no relation.
- The same correlations between parameter count and accuracy: the "bigger is
  better" baseline that costs nothing at all. NASWOT is useful only where it
  ranks better than this baseline. The correlation of score with parameter
  count is shown too: log det K grows with the number of ReLU units, so part of
  what the score knows is size.
- The accuracy of the candidate with the top score and of the largest one,
  next to the best and the median accuracy: what picking by each rule buys.
- Mean build seconds and score milliseconds per candidate (the screening cost)
  and mean training seconds (what screening would save).

Caveats: a few epochs on a small data set leave small, noisy accuracy gaps
between candidates, and `--n` candidates give wide confidence intervals on a
rank correlation (see the p-values). A score of -inf (a singular kernel: two
images with the same activation code) ranks lowest and is written as null in
the JSON.

Defaults: n = 24, 3 epochs, about 1.5 minutes on 2 CPU cores (building and
scoring take about 0.1 s per candidate, training about 3 s); `--quick`: n = 6,
1 epoch, about 20 seconds.

Usage:
    python benchmarks/naswot.py [--quick] [--n N] [--epochs E] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from automl.graph.architecture import ArchitectureGraph  # noqa: E402
from automl.graph.seeds import mlp, resnet_cnn, small_cnn  # noqa: E402
from automl.morphism.operators import OPERATIONS, apply_op, random_op  # noqa: E402

INPUT_SHAPE = (8, 8, 1)
CLASSES = 10
MAX_CHAIN = 6
# (label, seed function, keyword arguments)
SEEDS = [
    (f"small_cnn w{w} c{c}", small_cnn, {"width": w, "convs_per_block": c})
    for w in (8, 16, 32)
    for c in (1, 2)
]
SEEDS += [(f"resnet_cnn w{w}", resnet_cnn, {"width": w}) for w in (8, 16)]
SEEDS += [(f"mlp w{w}", mlp, {"width": w}) for w in (32, 64, 128)]


def load_data(seed: int = 0):
    """Digits as (x_train, y_train, x_val, y_val): 8x8x1 float32 images in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    return x_train, y_train, x_val, y_val


def morph(graph: ArchitectureGraph, rng: np.random.Generator, max_params: int) -> dict | None:
    """One random morphism of `graph` that keeps it under `max_params`; None if none was found."""
    kinds = list(OPERATIONS)
    for _ in range(20):
        if not kinds:
            return None
        kind = kinds[int(rng.integers(len(kinds)))]
        op = random_op(graph, kind, rng)
        if op is None:
            kinds.remove(kind)  # no valid operation of this type on this graph
            continue
        try:
            child = apply_op(graph, op)
        except ValueError:
            continue
        if child.count_params() <= max_params:
            return op
    return None


def sample_candidates(n: int, rng: np.random.Generator, max_params: int) -> list[dict]:
    """`n` distinct candidates: a random seed graph and a chain of 0..MAX_CHAIN morphisms."""
    candidates: list[dict] = []
    seen: set[str] = set()
    while len(candidates) < n:
        label, seed_fn, kwargs = SEEDS[int(rng.integers(len(SEEDS)))]
        graph = seed_fn(INPUT_SHAPE, CLASSES, **kwargs)
        if graph.count_params() > max_params:
            continue
        ops = []
        for _ in range(int(rng.integers(MAX_CHAIN + 1))):
            op = morph(graph, rng, max_params)
            if op is None:
                break
            graph = apply_op(graph, op)
            ops.append(op)
        key = graph.key()  # equal for the same layers and connections
        if key in seen:
            continue
        seen.add(key)
        candidates.append({"seed_graph": label, "ops": ops, "graph": graph})
    return candidates


def train_accuracy(graph: ArchitectureGraph, data, args) -> tuple[float, float]:
    """Best validation accuracy over `args.epochs` epochs from the seed's initialisation."""
    import keras

    from automl.data.arrays import as_dataset
    from automl.graph.builder import build_model

    x_train, y_train, x_val, y_val = data
    keras.utils.set_random_seed(args.seed)  # the initialisation that was scored
    model = build_model(graph)
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(
        as_dataset(x_train, y_train, args.batch_size, shuffle_seed=args.seed),
        validation_data=as_dataset(x_val, y_val, 512),
        epochs=args.epochs,
        verbose=0,
        shuffle=False,  # the dataset is shuffled, the same way for every candidate
    )
    seconds = time.perf_counter() - start
    keras.backend.clear_session(free_memory=False)
    return float(max(history.history["val_accuracy"])), seconds


def ranks_ready(values: list[float]) -> list[float]:
    """-inf replaced by a value below every finite one (ranks unchanged, no inf arithmetic)."""
    finite = [v for v in values if math.isfinite(v)]
    floor = (min(finite) if finite else 0.0) - 1.0
    return [v if math.isfinite(v) else floor for v in values]


def correlations(x: list[float], y: list[float]) -> dict:
    from scipy import stats

    x = ranks_ready(x)
    spearman = stats.spearmanr(x, y)
    kendall = stats.kendalltau(x, y)
    return {
        "spearman": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
        "kendall": float(kendall.statistic),
        "kendall_p": float(kendall.pvalue),
    }


def short_ops(ops: list[dict]) -> str:
    names = {"deepen": "D", "widen": "W", "add_skip": "A", "concat_skip": "C"}
    return "".join(names[op["op"]] for op in ops) or "-"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n=6, 1 epoch")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--n", type=int, default=None, help="number of candidates (default 24)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="sampling and initialisation seed")
    parser.add_argument("--score-batch", type=int, default=64, help="images in the NASWOT batch")
    parser.add_argument("--max-params", type=int, default=300_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args(argv)
    args.n = args.n or (6 if args.quick else 24)
    args.epochs = args.epochs or (1 if args.quick else 3)

    import keras

    from automl.search.screening import score_graphs

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()  # reproducible runs for a given seed
    total_start = time.perf_counter()
    data = load_data()
    rng = np.random.default_rng(args.seed)
    candidates = sample_candidates(args.n, rng, args.max_params)
    pick = np.sort(rng.choice(len(data[0]), size=args.score_batch, replace=False))
    batch = data[0][pick]

    print(
        f"{'#':>3s} {'seed graph':18s} {'ops':7s} {'params':>8s} {'layers':>6s} "
        f"{'NASWOT':>9s} {'build s':>8s} {'score ms':>9s} {'val acc':>8s} {'train s':>8s}",
        flush=True,
    )
    rows = []
    for index, candidate in enumerate(candidates):
        graph = candidate["graph"]
        times: list[dict] = []
        (score,) = score_graphs([graph], batch, seed=args.seed, times=times)
        accuracy, train_seconds = train_accuracy(graph, data, args)
        row = {
            "seed_graph": candidate["seed_graph"],
            "ops": candidate["ops"],
            "chain_length": len(candidate["ops"]),
            "params": graph.count_params(),
            "layers": len(graph) - 1,
            "score": score if math.isfinite(score) else None,
            "build_s": times[0]["build_s"],
            "score_ms": 1000 * times[0]["score_s"],
            "val_accuracy": accuracy,
            "train_s": train_seconds,
            "graph": graph.to_dict(),
        }
        rows.append(row)
        print(
            f"{index:3d} {row['seed_graph']:18s} {short_ops(row['ops']):7s} "
            f"{row['params']:8d} {row['layers']:6d} {score:9.2f} {row['build_s']:8.3f} "
            f"{row['score_ms']:9.1f} {accuracy:8.4f} {train_seconds:8.1f}",
            flush=True,
        )

    scores = [r["score"] if r["score"] is not None else -math.inf for r in rows]
    accuracies = [r["val_accuracy"] for r in rows]
    params = [float(r["params"]) for r in rows]
    by_score = correlations(scores, accuracies)
    by_params = correlations(params, accuracies)
    score_params = correlations(scores, params)
    top_score = accuracies[int(np.argmax(ranks_ready(scores)))]
    largest = accuracies[int(np.argmax(params))]
    summary = {
        "score_ms": float(np.mean([r["score_ms"] for r in rows])),
        "build_s": float(np.mean([r["build_s"] for r in rows])),
        "train_s": float(np.mean([r["train_s"] for r in rows])),
    }
    seconds = time.perf_counter() - total_start

    print(f"\nrank correlation with the best validation accuracy over {len(rows)} candidates")
    print(f"{'predictor':18s} {'Spearman':>9s} {'(p)':>7s} {'Kendall':>8s} {'(p)':>7s}")
    for name, c in (("NASWOT score", by_score), ("parameter count", by_params)):
        print(
            f"{name:18s} {c['spearman']:9.3f} {c['spearman_p']:7.3f} "
            f"{c['kendall']:8.3f} {c['kendall_p']:7.3f}"
        )
    print(f"NASWOT vs parameter count: Spearman {score_params['spearman']:.3f}")
    print(
        f"accuracy of the top-scoring candidate {top_score:.4f}, of the largest {largest:.4f}; "
        f"best {max(accuracies):.4f}, median {float(np.median(accuracies)):.4f}"
    )
    print(
        f"per candidate: build {summary['build_s']:.3f} s, score {summary['score_ms']:.1f} ms, "
        f"training {summary['train_s']:.1f} s; singular kernels (-inf): "
        f"{sum(r['score'] is None for r in rows)}; total {seconds:.0f} s"
    )
    report = {
        "spearman": by_score["spearman"],
        "kendall": by_score["kendall"],
        "spearman_params": by_params["spearman"],
        "kendall_params": by_params["kendall"],
        "score_ms": summary["score_ms"],
        "build_s": summary["build_s"],
        "train_s": summary["train_s"],
        "correlations": {
            "score_vs_accuracy": by_score,
            "params_vs_accuracy": by_params,
            "score_vs_params": score_params,
        },
        "picks": {
            "top_score_accuracy": top_score,
            "largest_accuracy": largest,
            "best_accuracy": max(accuracies),
            "median_accuracy": float(np.median(accuracies)),
        },
        "singular_kernels": sum(r["score"] is None for r in rows),
        "rows": rows,
        "settings": {
            "n": args.n,
            "epochs": args.epochs,
            "quick": args.quick,
            "seed": args.seed,
            "score_batch": args.score_batch,
            "score_training_flag": False,
            "max_params": args.max_params,
            "max_chain_length": MAX_CHAIN,
            "seed_graphs": [label for label, _, _ in SEEDS],
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "optimizer": "Adam",
            "accuracy": "best validation accuracy over the epochs",
            "backend": keras.backend.backend(),
            "dataset": "sklearn load_digits, pixels / 16, 75/25 stratified split, random_state=0",
            "total_seconds": seconds,
        },
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
