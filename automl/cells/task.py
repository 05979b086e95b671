"""`ImageClassifier(strategy="milenas" | "darts")`: supernet search, then a fixed network.

The estimator's training data are searched on (split 50/50 by `run_search`), the
chosen genotype is built as a fixed network of `Cell`s behind the estimator's
preprocessing layers, trained with early stopping on the validation data, and
returned for export. `cell_options` of the estimator overrides `DEFAULTS`.
"""

from __future__ import annotations

import time

from automl.errors import InputError

# Scaled down from MiLeNAS (8 cells, 16 channels, 50 epochs on a GPU) for small data on a
# CPU, where tracing the DARTS supernet's step alone takes a minute or more.
DEFAULTS = {
    "space": "darts",  # or "nb201" (NAS-Bench-201 cells, much lighter)
    "stages": 3,  # NB201 only: stages of the supernet
    "search_epochs": 10,  # early stopping at model size (6, 0) still applies
    "search_cells": 3,  # supernet cells (DARTS: at least 3) or cells per stage (NB201)
    "search_channels": 8,  # supernet channels
    "cells": 5,  # cells of the final network (more than the supernet)
    "channels": 16,  # channels of the final network
    "alpha_lr": 3e-3,  # MiLeNAS's 3e-4 is for ~20,000 steps; a few hundred need more
    "darts_order": 2,  # strategy="darts": 1 or 2 (first or second order)
    "batch_size": 64,
    "max_epochs": 100,  # final training, early stopping on the validation data
}


def options(estimator) -> dict:
    given = dict(getattr(estimator, "cell_options", None) or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise InputError(f"Unknown cell_options {unknown}. Known: {sorted(DEFAULTS)}.")
    return {**DEFAULTS, **given}


def cell_search(estimator, train, val, time_limit=None):
    """Run the search for a fitted estimator's data; returns (trained model, summary rows)."""
    import keras

    from automl.cells.search import build_network, run_search

    opts = options(estimator)
    pre, n_classes = estimator.preprocessor_, estimator.target_.n_outputs
    method = "milenas" if estimator.strategy == "milenas" else f"darts{opts['darts_order']}"
    start = time.time()
    result = run_search(pre.normalise_images(train[0]), train[1], num_classes=n_classes, method=method,
                        epochs=opts["search_epochs"], batch_size=opts["batch_size"],
                        cells=opts["search_cells"], channels=opts["search_channels"],
                        space=opts["space"], stages=opts["stages"], seed=estimator.seed,
                        alpha_lr=opts["alpha_lr"], verbose=estimator.verbose)  # fmt: skip
    search_seconds = time.time() - start
    keras.utils.set_random_seed(estimator.seed)
    inputs, x = pre.build_inputs()
    outputs = build_network(result.genotype, x, n_classes, cells=opts["cells"],
                            channels=opts["channels"])  # fmt: skip
    model = keras.Model(inputs, outputs, name="automl_cell_model")
    model.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    stop = keras.callbacks.EarlyStopping("val_accuracy", patience=5, mode="max",
                                         restore_best_weights=True)  # fmt: skip
    start = time.time()
    history = model.fit(estimator._dataset(*train, shuffle=True),
                        validation_data=estimator._dataset(*val, shuffle=False),
                        epochs=estimator.epochs or opts["max_epochs"], callbacks=[stop],
                        shuffle=False, verbose=0).history  # fmt: skip
    rows = [
        {"trial_id": f"size_{e['model_size'][0]}_{e['model_size'][1]}", "strategy": method,
         "key": e["genotype"], "params": None, "score": e["accuracy"], "epochs": e["epoch"] + 1,
         "seconds": None, "status": "SEARCHED"}
        for e in result.by_size
    ]  # fmt: skip
    rows.append({"trial_id": "final", "strategy": method, "key": str(result.genotype),
                 "params": model.count_params(), "score": max(history["val_accuracy"]),
                 "epochs": len(history["val_accuracy"]),
                 "seconds": round(search_seconds + time.time() - start, 2),
                 "status": "COMPLETED"})  # fmt: skip
    estimator._log(f"{method}: genotype {result.genotype} -> val_accuracy "
                   f"{rows[-1]['score']:.4f} ({rows[-1]['params']:,} params)")  # fmt: skip
    return model, rows
