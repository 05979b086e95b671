"""Network morphism benchmark: inherited weights vs training from scratch, and morph speed.

On scikit-learn's `load_digits` (8x8 images, pixels / 16, a fixed stratified
train / validation split), a parent CNN is trained; then, for each morphism type
(deepen, widen, add_skip, concat_skip), a child is made with one random
morphism (deepen inserts a conv-BN-ReLU block after a ReLU, as Auto-Keras's deep
morphism does) and trained twice with Adam on the same data: once starting from the
parent's weights (`inherit_weights`) and once from scratch. The figure is the
number of epochs (and seconds) until each reaches the parent's validation
accuracy, capped at `--max-epochs` (a run that never reaches it reports the cap).
The paper's claim to check: inherited weights get there in at most a third of
the from-scratch epochs.

It also times one morphism (graph operation only) on a 100-layer graph.

Usage:
    python benchmarks/morphism.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from automl.graph.architecture import ArchitectureGraph  # noqa: E402
from automl.graph.seeds import small_cnn  # noqa: E402
from automl.morphism.operators import (  # noqa: E402
    OPERATIONS,
    apply_op,
    deepen_error,
    random_children,
    random_op,
)


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


def datasets(data, batch_size: int, seed: int):
    from automl.data import as_dataset  # tf.data on TensorFlow, a PyDataset elsewhere

    x_train, y_train, x_val, y_val = data
    return as_dataset(x_train, y_train, batch_size, shuffle_seed=seed), as_dataset(
        x_val, y_val, 512
    )


def make_reach_target(target: float):
    """A Keras callback that stops training once val_accuracy >= target."""
    import keras

    class ReachTarget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs: int | None = None
            self.seconds: float | None = None

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs.get("val_accuracy", 0.0) >= target - 1e-9:
                self.epochs = epoch + 1
                self.seconds = time.perf_counter() - self.start
                self.model.stop_training = True

    return ReachTarget()


def compile_model(model, learning_rate: float):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def epochs_to_target(model, train, val, target: float, max_epochs: int, lr: float):
    """Train until the validation accuracy reaches `target`: (epochs, seconds)."""
    compile_model(model, lr)
    callback = make_reach_target(target)
    start = time.perf_counter()
    model.fit(train, validation_data=val, epochs=max_epochs, callbacks=[callback], verbose=0)
    if callback.epochs is None:  # not reached: report the cap
        return max_epochs, time.perf_counter() - start
    return callback.epochs, callback.seconds


def choose_op(graph: ArchitectureGraph, kind: str, rng: np.random.Generator) -> dict:
    """A random operation of type `kind`; deepen inserts a conv-BN-ReLU block (as Auto-Keras)."""
    if kind != "deepen":
        return random_op(graph, kind, rng)
    places = [i for i in graph.order if deepen_error(graph, i, "conv_block") is None]
    after = places[int(rng.integers(len(places)))]
    return {"op": "deepen", "after": after, "layer": "conv_block", "kernel_size": 3}


def run_seed(seed: int, data, args) -> list[dict]:
    import keras

    from automl.graph.builder import build_model
    from automl.morphism.weights import inherit_weights

    train, val = datasets(data, args.batch_size, seed)
    parent_graph = small_cnn((8, 8, 1), 10, width=args.width, blocks=2, convs_per_block=1)
    keras.utils.set_random_seed(seed)
    parent = compile_model(build_model(parent_graph), args.lr)
    parent.fit(train, validation_data=val, epochs=args.parent_epochs, verbose=0)
    target = float(parent.evaluate(val, verbose=0)[1])
    print(f"seed {seed}: parent {parent_graph} val_accuracy {target:.4f}", flush=True)
    rng = np.random.default_rng(seed)
    rows = []
    for kind in OPERATIONS:
        op = choose_op(parent_graph, kind, rng)
        child_graph = apply_op(parent_graph, op)
        keras.utils.set_random_seed(seed + 1)
        inherited = build_model(child_graph)
        inherit_weights(parent, parent_graph, inherited, child_graph)
        start_acc = float(compile_model(inherited, args.lr).evaluate(val, verbose=0)[1])
        e_inh, s_inh = epochs_to_target(inherited, train, val, target, args.max_epochs, args.lr)
        keras.utils.set_random_seed(seed + 1)
        scratch = build_model(child_graph)
        e_scr, s_scr = epochs_to_target(scratch, train, val, target, args.max_epochs, args.lr)
        rows.append(
            {
                "seed": seed,
                "morphism": kind,
                "op": op,
                "target_accuracy": target,
                "inherited_start_accuracy": start_acc,
                "epochs_inherited": e_inh,
                "epochs_scratch": e_scr,
                "seconds_inherited": s_inh,
                "seconds_scratch": s_scr,
            }
        )
        print(f"  {kind:12s} {op} inherited {e_inh} epochs, scratch {e_scr} epochs", flush=True)
        keras.backend.clear_session(free_memory=False)
    return rows


def deep_chain(blocks: int = 33) -> ArchitectureGraph:
    """A 101-layer chain: `blocks` x (conv, BN, ReLU), global pooling, output."""
    layers: list[tuple[str, dict]] = []
    for _ in range(blocks):
        layers += [("conv2d", {"filters": 16}), ("batchnorm", {}), ("relu", {})]
    layers += [("gap", {}), ("output", {"units": 10})]
    return ArchitectureGraph.chain((32, 32, 3), layers)


def time_morphs(repeats: int = 50) -> dict:
    """Milliseconds per random morphism (choice + graph operation) on a 100-layer graph."""
    graph = deep_chain()
    rng = np.random.default_rng(0)
    per_kind = {}
    for kind in OPERATIONS:
        start = time.perf_counter()
        for _ in range(repeats):
            apply_op(graph, random_op(graph, kind, rng))
        per_kind[kind] = (time.perf_counter() - start) / repeats * 1000
    start = time.perf_counter()
    for _ in range(repeats // 5):
        random_children(graph, rng, n=8)
    children_ms = (time.perf_counter() - start) / (repeats // 5) * 1000
    return {
        "layers": len(graph) - 1,
        "morph_100_layers_ms": max(per_kind.values()),
        "morph_ms_by_type": per_kind,
        "random_children_8_ms": children_ms,
    }


def summarise(rows: list[dict]) -> list[dict]:
    results = []
    for kind in OPERATIONS:
        mine = [r for r in rows if r["morphism"] == kind]
        results.append(
            {
                "morphism": kind,
                "epochs_inherited": float(np.mean([r["epochs_inherited"] for r in mine])),
                "epochs_scratch": float(np.mean([r["epochs_scratch"] for r in mine])),
                "seconds_inherited": float(np.mean([r["seconds_inherited"] for r in mine])),
                "seconds_scratch": float(np.mean([r["seconds_scratch"] for r in mine])),
            }
        )
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, fewer epochs")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5)")
    parser.add_argument("--width", type=int, default=16, help="parent's first conv width")
    parser.add_argument("--parent-epochs", type=int, default=None)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args(argv)
    seeds = args.seeds or (1 if args.quick else 5)
    args.parent_epochs = args.parent_epochs or (20 if args.quick else 30)
    args.max_epochs = args.max_epochs or (50 if args.quick else 100)

    timing = time_morphs()
    print(
        f"morphing a {timing['layers']}-layer graph: {timing['morph_100_layers_ms']:.2f} ms "
        f"(slowest type; by type { ({k: round(v, 2) for k, v in timing['morph_ms_by_type'].items()}) }), "
        f"8 random children {timing['random_children_8_ms']:.2f} ms",
        flush=True,
    )
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()  # reproducible runs for a given seed
    data = load_data()
    rows = [row for seed in range(seeds) for row in run_seed(seed, data, args)]
    results = summarise(rows)
    print(f"\nepochs (seconds) to reach the parent's validation accuracy, mean of {seeds} seed(s)")
    print(f"{'morphism':12s} {'inherited':>18s} {'scratch':>18s} {'ratio':>7s}")
    for r in results:
        ratio = r["epochs_inherited"] / r["epochs_scratch"]
        print(
            f"{r['morphism']:12s} {r['epochs_inherited']:7.1f} ({r['seconds_inherited']:6.1f} s)"
            f" {r['epochs_scratch']:7.1f} ({r['seconds_scratch']:6.1f} s) {ratio:7.2f}"
        )
    report = {
        "results": results,
        "morph_100_layers_ms": timing["morph_100_layers_ms"],
        "morph_timing": timing,
        "runs": rows,
        "config": {
            "seeds": seeds,
            "width": args.width,
            "parent_epochs": args.parent_epochs,
            "max_epochs": args.max_epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "dataset": "sklearn load_digits, 75/25 stratified split, random_state=0",
        },
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
