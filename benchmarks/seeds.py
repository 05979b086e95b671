"""Which starting CNN gives the most accuracy per second on small images? A seed benchmark.

The first trial of an image search trains the seed architecture from scratch, and on a
short time limit it is most of the search. Each candidate `small_cnn` size is trained
here as a trial of a search is: Adam at the library's rate, the learning rate decayed to
the planned last epoch, for a fixed time budget (`automl.training.fit.fit_trial` with
`budget` and `schedule=True`), on 4,000 `digits28` images (`image_set.py`, seed 0) at
28x28 and at 32x32, scored on 1,000 test images. Reported per candidate, size and budget:
parameters, seconds per epoch (after the first, which includes tracing), epochs run,
and test accuracy. Candidates run one after another in this process, each after
`keras.utils.set_random_seed(seed)`.

Usage:
    python benchmarks/seeds.py [--quick] [--json OUT] [--budgets 15 30] [--sizes 28 32]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

# small_cnn sizes: (width, blocks, convs per block)
CANDIDATES = {
    "w32_b2_c2": (32, 2, 2),  # the default seed
    "w16_b2_c2": (16, 2, 2),
    "w16_b3_c2": (16, 3, 2),
    "w32_b2_c1": (32, 2, 1),
    "w24_b3_c1": (24, 3, 1),
}


def load(size: int, n_train: int):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from image_set import make_image_set

    data = make_image_set(n_train=n_train, n_test=1000, seed=0, size=size)
    return [data[k] for k in ("x_train", "y_train", "x_test", "y_test")]


def run_one(name: str, size: int, budget: float, data, seed: int = 0) -> dict:
    """Train candidate `name` for `budget` seconds; its record."""
    import keras

    from automl.data.arrays import as_dataset
    from automl.graph.builder import build_model
    from automl.graph.seeds import small_cnn
    from automl.training.fit import fit_trial

    x_train, y_train, x_test, y_test = data
    width, blocks, convs = CANDIDATES[name]
    keras.utils.set_random_seed(seed)
    graph = small_cnn((size, size, 1), 10, width=width, blocks=blocks, convs_per_block=convs)
    model = build_model(graph)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    cut = int(0.8 * len(x_train))
    train = as_dataset(x_train[:cut, ..., None], y_train[:cut], 32, shuffle_seed=seed)
    val = as_dataset(x_train[cut:, ..., None], y_train[cut:], 32)
    started = time.time()
    scores, kept, info = fit_trial(
        model,
        train,
        val,
        objective="val_accuracy",
        direction="max",
        deadline=started + budget,
        budget=budget,
        monitor_loss=True,
        schedule=True,
    )
    seconds = time.time() - started
    predicted = model.predict(x_test[..., None], verbose=0).argmax(axis=1)
    return {
        "candidate": name,
        "size": size,
        "budget": budget,
        "params": graph.count_params(),
        "epoch_seconds": info.get("epoch_seconds"),
        "first_epoch_seconds": info.get("first_epoch_seconds"),
        "epochs": len(scores),
        "val_accuracy": round(float(scores[kept]), 4),
        "test_accuracy": round(float(np.mean(predicted == y_test)), 4),
        "seconds": round(seconds, 1),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="28x28, 5 s, two candidates")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--budgets", nargs="+", type=float, default=[15.0, 30.0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[28, 32])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    args = parser.parse_args(argv)
    sizes, budgets, names, n_train = args.sizes, args.budgets, args.candidates, 4000
    if args.quick:
        sizes, budgets, names, n_train = [28], [5.0], list(CANDIDATES)[:2], 1000
    rows = []
    print("candidate | size | budget s | params | epoch s | epochs | val acc | test acc")
    for size in sizes:
        data = load(size, n_train)
        for budget in budgets:
            for name in names:
                r = run_one(name, size, budget, data)
                rows.append(r)
                print(
                    f"{name} | {size} | {budget:.0f} | {r['params']:,} | {r['epoch_seconds']} | "
                    f"{r['epochs']} | {r['val_accuracy']:.4f} | {r['test_accuracy']:.4f}",
                    flush=True,
                )
    if args.json:
        from automl.project.files import write_json

        write_json(args.json, {"n_train": n_train, "runs": rows})


if __name__ == "__main__":
    main()
