"""The `automl` command: `automl fit`, `automl predict`, `automl export` (and `automl
benchmark`, when present).

Every error automl reports on purpose is printed as one line, `automl: error: <message>`,
with exit status 2 (as argparse does for bad arguments); no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from automl.engine import registry
from automl.errors import AutoMLError, InputError

_ESTIMATORS = {
    ("image", "classification"): "ImageClassifier",
    ("image", "regression"): "ImageRegressor",
    ("table", "classification"): "StructuredDataClassifier",
    ("table", "regression"): "StructuredDataRegressor",
    ("text", "classification"): "TextClassifier",
    ("text", "regression"): "TextRegressor",
}


def _fit_parser(sub) -> None:
    p = sub.add_parser(
        "fit",
        help="search a model on a dataset and export it",
        description="Search a model, report its held-out test score, save it.",
    )
    p.add_argument(
        "dataset", nargs="?", help="built-in: digits, iris, wine, breast_cancer, diabetes"
    )
    p.add_argument(
        "--csv",
        help="a CSV file (use with --target); when its only other column is free text, "
        "a text model is searched",
    )
    p.add_argument("--target", help="the target column of --csv")
    p.add_argument("--npz", help="an .npz file with x and y (or x_train, y_train, x_test, y_test)")
    p.add_argument(
        "--image-dir",
        metavar="DIR",
        help="a folder of images, one subfolder per class, read in batches (never "
        "whole); 20%% of the images are held out for the test score",
    )
    p.add_argument(
        "--text-dir",
        metavar="DIR",
        help="a folder of .txt files, one subfolder per class; 20%% of the texts are held "
        "out for the test score",
    )
    p.add_argument("--task", choices=["auto", "classification", "regression"], default="auto")
    p.add_argument(
        "--strategy",
        default="bayesian",
        choices=registry.NAMES,
        help="; ".join(
            f"{s.name}: {s.description}"
            + ("" if s.kinds == registry.KINDS and s.tasks == registry.TASKS else f" ({s.scope})")
            for s in registry.STRATEGIES.values()
        )
        + " (default: %(default)s)",
    )
    p.add_argument(
        "--max-trials",
        type=int,
        default=None,
        help="most trials (default: as many as the time limit allows)",
    )
    p.add_argument(
        "--time-limit",
        default=["3m"],
        nargs="+",
        metavar="DURATION",
        help="search time limit, e.g. 90s, 3m, '5 minutes', 1h30m (default: 3m)",
    )
    p.add_argument(
        "--validation-split",
        type=float,
        default=0.2,
        help="fraction of the training data held out to score trials (default: 0.2; "
        "tables under 1,000 rows use 5-fold cross-validation instead)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--epochs", type=int, default=None, help="epochs per trial (default: early stopping)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ensemble-size",
        type=int,
        default=5,
        help="at most N trials in the exported model, those that improve the validation "
        "score together (1: the best only)",
    )
    p.add_argument("--directory", default="automl_runs")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start the search over (deletes only what automl wrote in the project folder)",
    )
    p.add_argument(
        "--break-lock",
        action="store_true",
        help="take over the project's lock when the search that holds it has ended "
        "elsewhere (another machine, or a container with another hostname)",
    )
    p.add_argument(
        "--output",
        help="where to save the model (default: NAME.keras, NAME being the project name: "
        "the dataset's name, or its file or folder name with other characters than "
        "A-Z a-z 0-9 . _ - replaced by _)",
    )
    p.add_argument("--json", help="also write the result as JSON to this file")
    p.add_argument(
        "--verbose",
        type=int,
        choices=[0, 1, 2],
        default=1,
        help="1: a progress bar and a line per trial; 2: a line per epoch too",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display (--verbose 0)")
    role = p.add_mutually_exclusive_group()
    role.add_argument(
        "--chief",
        metavar="HOST:PORT",
        help="serve this search to workers at HOST:PORT (:PORT: this machine only); the "
        "chief builds and saves the final model. Every call carries the token in "
        "AUTOML_TOKEN (made and printed when unset; needed to serve 0.0.0.0)",
    )
    role.add_argument(
        "--worker",
        metavar="HOST:PORT",
        help="train trials for the chief at HOST:PORT (same data and options, "
        "and a --directory shared with the chief; AUTOML_TOKEN set to the chief's token)",
    )
    for name, what in [
        ("cert", "the chief's TLS certificate (PEM): serve TLS only"),
        ("key", "the chief's TLS private key (PEM)"),
        ("ca", "a worker's check of the chief: its certificate, or the CA's (PEM)"),
    ]:
        p.add_argument(
            f"--tls-{name}", metavar="FILE", help=f"{what}; default: AUTOML_TLS_{name.upper()}"
        )


def _predict_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict with a saved model",
        description="Predict with a saved .keras model on a CSV or .npz file (a text "
        "model: a CSV file of texts or a folder of .txt files).",
    )
    p.add_argument("model", help="a .keras file written by `automl fit`")
    p.add_argument(
        "data",
        help="a CSV file (feature columns) or .npz file (array x); for a text model, a "
        "CSV file with one column of texts or a folder of .txt files",
    )
    p.add_argument("--output", help="write predictions here as CSV (default: print them)")
    p.add_argument(
        "--proba",
        action="store_true",
        help="class probabilities, one column per class, instead of labels",
    )


def _export_parser(sub) -> None:
    from automl.export.keras_file import FORMATS

    p = sub.add_parser(
        "export",
        help="convert a saved model to another format",
        description="Write a .keras model saved by `automl fit` as a Keras "
        "file without optimizer state, a SavedModel folder, a TFLite "
        "file or an ONNX file, with its preprocessing inside.",
    )
    p.add_argument("model", help="a .keras file written by `automl fit`")
    p.add_argument("output", help="the file (or SavedModel folder) to write")
    p.add_argument(
        "--format",
        choices=list(FORMATS),
        default=None,
        help="default: from OUTPUT's extension (.keras, .tflite, .onnx; none: savedmodel)",
    )


def _load(args):
    from automl.data import datasets

    sources = [s for s in (args.dataset, args.csv, args.npz, args.image_dir, args.text_dir) if s]
    if len(sources) != 1:
        raise InputError(
            "Give exactly one of: a built-in dataset name, --csv FILE, --npz FILE, "
            "--image-dir DIR, --text-dir DIR."
        )
    if args.image_dir:
        return datasets.load_image_dir(args.image_dir, args.task)
    if args.text_dir:
        return datasets.load_text_dir(args.text_dir, args.task)
    if args.csv:
        if not args.target:
            raise InputError("--csv needs --target COLUMN (the column to predict).")
        return datasets.load_csv(args.csv, args.target, args.task)
    if args.npz:
        return datasets.load_npz(args.npz, args.task)
    return datasets.load_builtin(args.dataset)


def _check_output_file(path: str | None, option: str) -> None:
    """Refuse an output file that cannot be written, before any work is done."""
    from automl.export.keras_file import check_output_file

    if path is not None:
        check_output_file(path, option)


def fit(args) -> dict:
    import automl
    from automl.export.keras_file import check_model_path, save_model
    from automl.project.folder import name_from_path

    data = _load(args)
    name = name_from_path(data.name)  # one safe folder name, never "." or ".."
    if not args.worker:  # a worker saves nothing: the chief does
        model_path = check_model_path(args.output or f"{name}.keras")  # before the search
        _check_output_file(args.json, "--json")
    estimator = getattr(automl, _ESTIMATORS[data.kind, data.task])(
        strategy=args.strategy,
        max_trials=args.max_trials,
        time_limit=" ".join(args.time_limit),
        epochs=args.epochs,
        directory=args.directory,
        project_name=name,
        overwrite=args.overwrite,
        break_lock=args.break_lock,
        seed=args.seed,
        verbose=0 if args.quiet else args.verbose,
        ensemble_size=args.ensemble_size,
        batch_size=args.batch_size,
        chief=args.chief,
        worker=args.worker,
        tls={k: v for k in ("cert", "key", "ca") if (v := getattr(args, f"tls_{k}"))} or None,
    )
    start = time.time()
    estimator.fit(data.x_train, data.y_train, validation_split=args.validation_split)
    seconds = time.time() - start
    if args.worker:
        print(
            f"worker: ran {estimator.trials_run_} trial(s) in {seconds:.1f} s; the chief at "
            f"{args.worker} builds and saves the model"
        )
        return {
            "dataset": data.name,
            "trials_run": estimator.trials_run_,
            "seconds": round(seconds, 2),
        }
    summary = estimator.search_summary()
    metric = "accuracy" if data.task == "classification" else "mse"
    test_score = estimator.evaluate(data.x_test, data.y_test)[metric]
    path = save_model(estimator, model_path)
    if not args.quiet and args.verbose:
        with_cols = [
            c
            for c in (
                "trial_id",
                "score",
                "ensemble",
                "params",
                "inference_ms",
                "epochs",
                "seconds",
                "morphism",
                "status",
            )
            if c in summary.columns
        ]
        print(summary[with_cols].to_string(index=False))
        held = "20% held out" if data.y_test is None else f"{len(data.y_test)} held-out samples"
        print(f"test {metric}: {test_score:.4f}   ({held})")
        print(f"search + refit: {seconds:.1f} s   model saved to {path}")
    result = {
        "dataset": data.name,
        "metric": metric,
        "test_score": test_score,
        "seconds": round(seconds, 2),
        "trials": int(len(summary)),
        "model_path": path,
    }
    if args.json:
        from automl.project.files import write_json

        write_json(args.json, result, indent=2)
    return result


def predict(args) -> None:
    import pandas as pd

    from automl.data import datasets
    from automl.export.keras_file import load_model, predict_with

    _check_output_file(args.output, "--output")
    model, preprocessor, target = load_model(args.model)
    files = None
    if preprocessor is not None and preprocessor.kind == "text":
        files, x = datasets.read_texts(args.data)
    elif args.data.endswith(".npz"):
        arrays = datasets.read_npz(args.data)
        if "x" not in arrays and "x_test" not in arrays:
            raise InputError(
                f"{args.data} must hold an array 'x' (or 'x_test'). Found: {sorted(arrays)}."
            )
        x = arrays["x"] if "x" in arrays else arrays["x_test"]
    else:
        x = datasets.read_csv(args.data)
        if preprocessor is not None and preprocessor.kind != "columns":
            x = x.to_numpy()
    if args.proba:
        if target is None or target.task != "classification":
            raise InputError(
                "--proba needs a classifier saved by `automl fit` (with its .automl.json "
                f"sidecar). {args.model} is not one."
            )
        probabilities = predict_with(model, preprocessor, None, x)
        frame = pd.DataFrame(probabilities, columns=[f"p_{c}" for c in target.classes])
    else:
        predictions = predict_with(model, preprocessor, target, x)
        frame = pd.DataFrame(predictions.reshape(len(predictions), -1))
        frame.columns = ["prediction"] if frame.shape[1] == 1 else [f"p{i}" for i in frame.columns]
    if files is not None:  # a folder of texts: which file each row is
        frame.insert(0, "file", files)
    if args.output:
        frame.to_csv(args.output, index=False)
        print(f"wrote {len(frame)} predictions to {args.output}")
    else:
        print(frame.to_csv(index=False), end="")


def export(args) -> str:
    from automl.export import formats as serving
    from automl.export.keras_file import (
        check_format,
        check_output,
        load_model,
        save_loaded,
    )

    fmt = check_format(args.format, args.output)
    check_output(args.output, fmt)
    model, preprocessor, target = load_model(args.model)
    if fmt == "keras":
        path = save_loaded(model, preprocessor, target, args.output)
    else:
        if preprocessor is None:
            raise InputError(
                f"{args.model} has no .automl.json sidecar, so its inputs are unknown. Export a "
                "model saved by `automl fit` or automl.export.keras_file.save_model."
            )
        path = serving.save_graph_format(model, preprocessor, fmt, args.output)
    print(f"wrote {fmt} model to {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the `automl` command on `argv` (default: `sys.argv[1:]`); returns the exit status.

    0 on success, 2 for an error automl reports (one line on stderr, no traceback),
    130 when interrupted. Bad arguments exit 2 through argparse.
    """
    parser = argparse.ArgumentParser(prog="automl", description="Keras AutoML from the shell.")
    sub = parser.add_subparsers(dest="command", required=True)
    _fit_parser(sub)
    _predict_parser(sub)
    _export_parser(sub)
    try:
        from automl.search.tabular import add_parser as add_benchmark
    except ImportError:
        add_benchmark = None
    if add_benchmark is not None:
        add_benchmark(sub)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if args.command == "fit":
            fit(args)
        elif args.command == "predict":
            predict(args)
        elif args.command == "export":
            export(args)
        else:
            args.func(args)
    except KeyboardInterrupt:
        print("automl: interrupted", file=sys.stderr)
        return 130
    except (AutoMLError, OSError) as err:
        print(f"automl: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        if os.environ.get("AUTOML_DEBUG"):
            raise
        print(
            f"automl: error: unexpected {type(err).__name__}: {err} (this is a bug in automl; "
            "set AUTOML_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
