"""Network morphism benchmark: warm start from the parent's weights vs training from scratch.

Data: scikit-learn's `load_digits` (8x8 images, pixels / 16), a fixed 75/25
stratified train / validation split. For each seed a parent CNN (`small_cnn`, two
conv-BN-ReLU blocks) is trained; then for each morphism type (deepen, widen,
add_skip, concat_skip) one random child of it is made (deepen inserts a
conv-BN-ReLU block after a ReLU, as Auto-Keras's deep morphism does) and trained
for `--max-epochs` epochs in two runs:

- inherited: from the parent's weights (`inherit_weights`, with `--widen-mode`
  and `--widen-noise` on the units a widen copies, relative to the layer's kernel
  std; the search uses `SearchSettings().widen_mode` and `.widen_noise`, of
  `automl.engine.settings`);
- scratch: the same child graph from a fresh initialisation.

Both runs use the same seed, the same Adam learning rate and batch size and the
same order of training batches; each is one `fit`, and a callback records the
validation accuracy after every epoch (epoch 0 is the accuracy before training).
For the widen morphism the parent itself is also trained on (a copy with its
trained weights, a fresh Adam, the same batches) for the same number of epochs.

Reported, as means over seeds:

- accuracy @k: the validation accuracy after k = 1, 3, 10 epochs (those not
  above `--max-epochs`) for the inherited and scratch runs. A warm start helps
  when inherited @k is above scratch @k, most of all at small k.
- epochs to scratch's best: the first epoch (0 counts) at which a run's
  validation accuracy reaches the scratch run's best over its epochs (its
  converged accuracy); max-epochs + 1 when it never does. Scratch needs at most
  max-epochs by definition; the inherited run should need fewer. An inherited
  run that never gets there (max-epochs + 1) means the warm start ended worse
  than a fresh start.
- for widen, parent continued @k next to the widened child's inherited @k: a
  wider network should end up at least as good as its parent given the same
  extra training; it can only if its copied units learn apart, which is what
  the widen noise and the widen mode are for. `--compare-widen` runs the widen
  child with each of `COMPARED_WIDENS`: copies that split the outgoing weights
  (Net2Net) with and without noise, and copies that start with zero outgoing
  weights (Auto-Keras), to show the effect.
- start: the inherited child's accuracy before training; function preservation
  makes it the parent's (to within the widen noise).

It also times one morphism (choice and graph operation, no Keras) on a
101-layer graph.

Defaults: 3 seeds, parent width 16 trained 10 epochs, children 10 epochs, batch
32, Adam lr 1e-3; `--quick`: 1 seed, width 8, parent 3 epochs, children 3 epochs.

Usage:
    python benchmarks/morphism.py [--quick] [--compare-widen]
        [--widen-mode split|zero] [--widen-noise X] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from automl.engine.settings import SearchSettings  # noqa: E402
from automl.graph.architecture import ArchitectureGraph  # noqa: E402
from automl.graph.seeds import small_cnn  # noqa: E402
from automl.morphism.operators import (  # noqa: E402
    OPERATIONS,
    apply_op,
    deepen_error,
    random_children,
    random_op,
)

SEARCH = SearchSettings()  # the search's widening: the defaults of --widen-mode/--widen-noise
KS = (1, 3, 10)  # epochs after which the validation accuracy is reported


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


def train_dataset(data, batch_size: int, seed: int):
    """A fresh shuffled training dataset: each one gives the same batches, epoch by epoch."""
    from automl.data.arrays import as_dataset  # tf.data on TensorFlow, a PyDataset elsewhere

    x_train, y_train, _, _ = data
    return as_dataset(x_train, y_train, batch_size, shuffle_seed=seed)


def val_dataset(data):
    from automl.data.arrays import as_dataset

    _, _, x_val, y_val = data
    return as_dataset(x_val, y_val, 512)


def compile_model(model, learning_rate: float):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def make_recorder():
    """A Keras callback that records val_accuracy after every epoch."""
    import keras

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.accuracy: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            self.accuracy.append(float((logs or {}).get("val_accuracy", float("nan"))))

    return Recorder()


def train_curve(model, data, val, args, seed: int) -> tuple[list[float], float]:
    """Validation accuracy before training and after each of `args.max_epochs` epochs.

    One `fit`; a fresh optimizer; the training batches come in the order that
    `train_dataset(data, ..., seed)` gives (the same for every run of a seed).
    Returns (accuracies, seconds of the fit).
    """
    compile_model(model, args.lr)
    start_accuracy = float(model.evaluate(val, verbose=0)[1])
    recorder = make_recorder()
    train = train_dataset(data, args.batch_size, seed)
    start = time.perf_counter()
    model.fit(
        train,
        validation_data=val,
        epochs=args.max_epochs,
        callbacks=[recorder],
        verbose=0,
        shuffle=False,
    )
    return [start_accuracy] + recorder.accuracy, time.perf_counter() - start


def epochs_to_reach(curve: list[float], target: float) -> int:
    """The first epoch (0 = before training) with accuracy >= target; len(curve) if never."""
    for epoch, accuracy in enumerate(curve):
        if accuracy >= target - 1e-9:
            return epoch
    return len(curve)  # max_epochs + 1


def choose_op(graph: ArchitectureGraph, kind: str, rng: np.random.Generator) -> dict:
    """A random operation of type `kind`; deepen inserts a conv-BN-ReLU block (as Auto-Keras)."""
    if kind != "deepen":
        return random_op(graph, kind, rng)
    places = [i for i in graph.order if deepen_error(graph, i, "conv_block") is None]
    after = places[int(rng.integers(len(places)))]
    return {"op": "deepen", "after": after, "layer": "conv_block", "kernel_size": 3}


def report_ks(max_epochs: int) -> list[int]:
    return sorted({k for k in KS if k <= max_epochs} | {max_epochs})


# (widen mode, widen noise) pairs that --compare-widen runs
COMPARED_WIDENS = [("split", 0.0), ("split", 0.01), ("zero", 0.0), ("zero", 0.01), ("zero", 1.0)]


def widen_settings(args) -> list[tuple[str, float]]:
    """The (mode, noise) pairs a widen child runs with: the chosen one, or the compared."""
    return COMPARED_WIDENS if args.compare_widen else [(args.widen_mode, args.widen_noise)]


def run_seed(seed: int, data, args) -> list[dict]:
    import keras

    from automl.graph.builder import build_model
    from automl.morphism.weights import inherit_weights

    val = val_dataset(data)
    ks = report_ks(args.max_epochs)
    parent_graph = small_cnn((8, 8, 1), 10, width=args.width, blocks=2, convs_per_block=1)
    keras.utils.set_random_seed(seed)
    parent = compile_model(build_model(parent_graph), args.lr)
    parent.fit(
        train_dataset(data, args.batch_size, seed),
        validation_data=val,
        epochs=args.parent_epochs,
        verbose=0,
        shuffle=False,  # the dataset is shuffled, the same way for every run
    )
    parent_accuracy = float(parent.evaluate(val, verbose=0)[1])
    print(f"seed {seed}: parent {parent_graph} val_accuracy {parent_accuracy:.4f}", flush=True)

    def fresh(graph):  # same seed for every run: same initialisation, dropout masks, batches
        keras.utils.set_random_seed(seed + 1)
        return build_model(graph)

    rng = np.random.default_rng(seed)
    rows = []
    for kind in OPERATIONS:
        op = choose_op(parent_graph, kind, rng)
        child_graph = apply_op(parent_graph, op)
        scratch, scratch_seconds = train_curve(fresh(child_graph), data, val, args, seed)
        scratch_best = max(scratch[1:])
        continued = None
        if kind == "widen":  # the parent trained on, from its trained weights
            copy = fresh(parent_graph)
            copy.set_weights(parent.get_weights())
            continued, _ = train_curve(copy, data, val, args, seed)
        settings = widen_settings(args) if kind == "widen" else [(args.widen_mode, 0.0)]
        for mode, noise in settings:
            child = fresh(child_graph)
            inherit_weights(
                parent,
                parent_graph,
                child,
                child_graph,
                rng=np.random.default_rng(seed),
                widen_noise=noise,
                widen_mode=mode,
            )
            inherited, inherited_seconds = train_curve(child, data, val, args, seed)
            row = {
                "seed": seed,
                "morphism": kind,
                "widen_noise": noise,
                "widen_mode": mode,
                "op": op,
                "parent_accuracy": parent_accuracy,
                "child_params": child_graph.count_params(),
                "inherited_start_accuracy": inherited[0],
                "inherited_accuracy": inherited[1:],
                "scratch_accuracy": scratch[1:],
                "inherited_at": {str(k): inherited[k] for k in ks},
                "scratch_at": {str(k): scratch[k] for k in ks},
                "scratch_best_accuracy": scratch_best,
                "epochs_to_scratch_best_inherited": epochs_to_reach(inherited, scratch_best),
                "epochs_to_scratch_best_scratch": epochs_to_reach(scratch, scratch_best),
                "seconds_inherited": inherited_seconds,
                "seconds_scratch": scratch_seconds,
            }
            if continued is not None:
                row["parent_continued_accuracy"] = continued[1:]
                row["parent_continued_at"] = {str(k): continued[k] for k in ks}
            rows.append(row)
            at = " ".join(f"@{k} {inherited[k]:.3f}/{scratch[k]:.3f}" for k in ks)
            print(
                f"  {label(row):18s} start {inherited[0]:.3f}, inherited/scratch {at}; "
                f"epochs to {scratch_best:.3f}: {row['epochs_to_scratch_best_inherited']} / "
                f"{row['epochs_to_scratch_best_scratch']}",
                flush=True,
            )
        keras.backend.clear_session(free_memory=False)
    return rows


def label(row: dict) -> str:
    if row["morphism"] != "widen":
        return row["morphism"]
    return f"widen {row['widen_mode']} noise={row['widen_noise']:g}"


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


def summarise(rows: list[dict], ks: list[int]) -> list[dict]:
    """Means over seeds per morphism (and per widen noise)."""
    results = []
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        key = (row["morphism"], row.get("widen_mode", "split"), row["widen_noise"])
        groups.setdefault(key, []).append(row)
    for (kind, mode, noise), mine in groups.items():

        def mean(key, k=None, rows=mine):
            return float(np.mean([r[key][str(k)] if k is not None else r[key] for r in rows]))

        result = {
            "morphism": kind,
            "label": label(mine[0]),
            "widen_noise": noise,
            "widen_mode": mode,
            "seeds": len(mine),
            "parent_accuracy": mean("parent_accuracy"),
            "inherited_start_accuracy": mean("inherited_start_accuracy"),
            "inherited_at": {str(k): mean("inherited_at", k) for k in ks},
            "scratch_at": {str(k): mean("scratch_at", k) for k in ks},
            # fraction of seeds where the inherited run is at least as accurate as scratch
            "inherited_not_behind_scratch_at": {
                str(k): float(
                    np.mean([r["inherited_at"][str(k)] >= r["scratch_at"][str(k)] for r in mine])
                )
                for k in ks
            },
            "scratch_best_accuracy": mean("scratch_best_accuracy"),
            "epochs_to_scratch_best_inherited": mean("epochs_to_scratch_best_inherited"),
            "epochs_to_scratch_best_scratch": mean("epochs_to_scratch_best_scratch"),
            "inherited_never_reached_scratch_best": sum(
                r["epochs_to_scratch_best_inherited"] > len(r["inherited_accuracy"]) for r in mine
            ),
        }
        if "parent_continued_at" in mine[0]:
            result["parent_continued_at"] = {str(k): mean("parent_continued_at", k) for k in ks}
            # fraction of seeds where the widened child is strictly ahead of its parent
            result["child_ahead_of_parent_at"] = {
                str(k): float(
                    np.mean(
                        [r["inherited_at"][str(k)] > r["parent_continued_at"][str(k)] for r in mine]
                    )
                )
                for k in ks
            }
        results.append(result)
    return results


def print_tables(results: list[dict], ks: list[int], seeds: int, max_epochs: int) -> None:
    def at(values: dict) -> str:
        return " ".join(f"{values[str(k)]:6.3f}" for k in ks)

    heads = " ".join(f"{'@' + str(k):>6s}" for k in ks)
    width = len(heads)
    print(
        f"\nvalidation accuracy after k epochs, mean of {seeds} seed(s); 'to best': epochs "
        f"(0 = before training) to reach the scratch run's best, {max_epochs + 1} = never"
    )
    print(
        f"{'morphism':18s} {'start':>6s} | {'inherited':^{width}s} | {'scratch':^{width}s} | "
        f"{'to best: inh':>12s} {'scr':>5s}"
    )
    print(f"{'':18s} {'':6s} | {heads} | {heads} |")
    for r in results:
        print(
            f"{r['label']:18s} {r['inherited_start_accuracy']:6.3f} | {at(r['inherited_at'])} | "
            f"{at(r['scratch_at'])} | {r['epochs_to_scratch_best_inherited']:12.1f} "
            f"{r['epochs_to_scratch_best_scratch']:5.1f}"
        )
    widen = [r for r in results if "parent_continued_at" in r]
    if widen:
        print("\nwiden: parent trained on vs widened child (inherited), same epochs and batches")
        print(f"{'':28s} {heads}")
        print(f"{'parent continued':28s} {at(widen[0]['parent_continued_at'])}")
        for r in widen:
            print(f"{'child, ' + r['label']:28s} {at(r['inherited_at'])}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, width 8, 3 epochs")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3)")
    parser.add_argument("--width", type=int, default=None, help="parent's first conv width")
    parser.add_argument("--parent-epochs", type=int, default=None)
    parser.add_argument("--max-epochs", type=int, default=None, help="epochs per child run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--widen-noise",
        type=float,
        default=SEARCH.widen_noise,
        help=f"noise on widened copies, relative to the kernel std (default {SEARCH.widen_noise})",
    )
    parser.add_argument(
        "--widen-mode",
        choices=["split", "zero"],
        default=SEARCH.widen_mode,
        help=f"where a widen's copies start (default {SEARCH.widen_mode})",
    )
    parser.add_argument(
        "--compare-widen",
        action="store_true",
        help="run the widen child with each (mode, noise) of COMPARED_WIDENS",
    )
    args = parser.parse_args(argv)
    seeds = args.seeds or (1 if args.quick else 3)
    args.width = args.width or (8 if args.quick else 16)
    args.parent_epochs = args.parent_epochs or (3 if args.quick else 10)
    args.max_epochs = args.max_epochs or (3 if args.quick else 10)
    ks = report_ks(args.max_epochs)

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
    start = time.perf_counter()
    rows = [row for seed in range(seeds) for row in run_seed(seed, data, args)]
    seconds = time.perf_counter() - start
    results = summarise(rows, ks)
    print_tables(results, ks, seeds, args.max_epochs)
    print(f"\ntraining took {seconds:.0f} s")
    report = {
        "summary": results,
        "rows": rows,
        "widen_noise": args.widen_noise,
        "morph_speed": timing,
        "settings": {
            "seeds": seeds,
            "width": args.width,
            "parent": "small_cnn, 2 blocks of 1 conv-BN-ReLU (widths w, 2w), dropout 0.25",
            "parent_epochs": args.parent_epochs,
            "max_epochs": args.max_epochs,
            "reported_epochs": ks,
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "widen_noise": args.widen_noise,
            "widen_mode": args.widen_mode,
            "compare_widen": args.compare_widen,
            "widen_settings": widen_settings(args),
            "quick": args.quick,
            "backend": keras.backend.backend(),
            "dataset": "sklearn load_digits, 75/25 stratified split, random_state=0",
            "training_seconds": seconds,
        },
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
