"""Built-in datasets (from scikit-learn, no download) and file loaders for the command line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from automl.errors import InputError

BUILTIN = {
    "digits": ("load_digits", "image", "classification"),
    "iris": ("load_iris", "table", "classification"),
    "wine": ("load_wine", "table", "classification"),
    "breast_cancer": ("load_breast_cancer", "table", "classification"),
    "diabetes": ("load_diabetes", "table", "regression"),
}
TEST_SIZE = 0.2
STREAM_CSV_BYTES = 256 * 2**20  # larger CSV files are read in chunks, never whole
TEST_SEED = 7919  # the held-out test part of a stream (distinct from the estimators' seeds)


@dataclass
class Split:
    """A dataset split into train and a fixed held-out test part."""

    name: str
    kind: str  # "image", "table" or "text"
    task: str  # "classification" or "regression"
    x_train: object
    y_train: np.ndarray
    x_test: object
    y_test: np.ndarray


def split(name: str, kind: str, task: str, x, y) -> Split:
    """20% held out, stratified for classification when every class allows it, random_state 0.

    Raises:
        InputError: there are too few samples to hold any out.
    """
    from sklearn.model_selection import train_test_split

    if len(y) < 5:
        raise InputError(
            f"{name} has {len(y)} samples; automl needs at least 5 (20% are held out for the "
            "test score). Add samples."
        )
    _, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
    n_test = int(np.ceil(TEST_SIZE * len(y)))
    stratify = task == "classification" and counts.min() >= 2 and len(counts) <= n_test
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=0, stratify=y if stratify else None
    )
    return Split(name, kind, task, x_tr, y_tr, x_te, y_te)


def load_builtin(name: str) -> Split:
    """One of `BUILTIN` with its fixed test split; digits come as 8x8 images."""
    if name not in BUILTIN:
        raise InputError(f"Unknown dataset {name!r}. Built-in datasets: {sorted(BUILTIN)}.")
    import sklearn.datasets

    loader, kind, task = BUILTIN[name]
    x, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    if kind == "image":
        x = x.reshape(-1, 8, 8)
    return split(name, kind, task, x, y)


def infer_task(y) -> str:
    """Classification for non-numeric or few distinct integer targets, else regression."""
    y = np.asarray(y)
    if y.dtype.kind in "OUSb":
        return "classification"
    if y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
        return "classification" if np.unique(y).size <= 20 else "regression"
    return "regression"


def load_csv(path: str, target: str, task: str = "auto") -> Split:
    """A CSV file with a target column; the other columns are features.

    Rows without a target are dropped. When the only other column is free text
    (`automl.data.columns.is_free_text`) the dataset is of kind "text": one string
    per sample, "" where missing. A file larger than `STREAM_CSV_BYTES` is streamed
    (see `stream_split`) as a table; the task is then inferred from its first rows.

    Raises:
        InputError: the file cannot be read, or has no such target column, no values in
            it, or no features.
    """
    import os

    if os.path.isfile(path) and os.path.getsize(path) > STREAM_CSV_BYTES:
        from automl.data.streaming import CsvFile

        stream = CsvFile(path, target=target)
        if task == "auto":
            first = next(stream.batches(), None)
            task = infer_task(first[1]) if first is not None else "classification"
        return stream_split(path, "table", task, stream)
    frame = read_csv(path)
    if target not in frame.columns:
        raise InputError(
            f"Column {target!r} is not in {path}. Columns: {list(frame.columns)}. "
            "Pass the target with --target."
        )
    if frame.shape[1] < 2:
        raise InputError(f"{path} has only the target column {target!r}; it needs features too.")
    if len(frame) and frame[target].isna().all():
        from automl.data.streaming.sources import empty_target

        raise InputError(empty_target(target, path, len(frame)))
    frame = frame[frame[target].notna()]
    y = frame.pop(target).to_numpy()
    task = infer_task(y) if task == "auto" else task
    from automl.data.columns import is_free_text

    if frame.shape[1] == 1 and is_free_text(frame.iloc[:, 0]):
        col = frame.iloc[:, 0]
        texts = col.astype(str).where(col.notna(), "").to_numpy(object)
        return split(path, "text", task, texts, y)
    return split(path, "table", task, frame, y)


def stream_split(name: str, kind: str, task: str, stream) -> Split:
    """A stream split into train and a held-out test part (`TEST_SIZE` of it, by a hash of
    each element's position and `TEST_SEED`); neither is read here, and `y_train` and
    `y_test` are None (the streams hold the targets)."""
    train, test = stream.split(TEST_SIZE, TEST_SEED)
    return Split(name, kind, task, train, None, test, None)


def load_image_dir(path: str, task: str = "auto") -> Split:
    """A folder of images, one subfolder per class, streamed (see `stream_split`).

    Raises:
        InputError: the folder is missing, has no class subfolders or images, or a
            regression task is asked for.
    """
    from automl.data.streaming import ImageDirectory

    if task == "regression":
        raise InputError(
            "An image folder's labels are its subfolder names: --image-dir trains a "
            "classifier. Received: --task regression."
        )
    return stream_split(path, "image", "classification", ImageDirectory(path))


def load_text_dir(path: str, task: str = "auto") -> Split:
    """A folder of `.txt` files, one subfolder per class, read whole; 20% held out.

    Raises:
        InputError: the folder is missing or has no class subfolders of .txt files,
            or a regression task is asked for.
    """
    from automl.data.text_folder import read_text_folder

    if task == "regression":
        raise InputError(
            "A text folder's labels are its subfolder names: --text-dir trains a "
            "classifier. Received: --task regression. For a numeric target, use --csv "
            "with a text column and the target column."
        )
    texts, labels = read_text_folder(path)
    return split(path, "text", "classification", texts, labels)


def read_texts(path: str) -> tuple[list, object]:
    """(file names or None, texts) to predict on: every `.txt` file under a folder
    (sorted, read as UTF-8), or a CSV file with one column of texts ("" where missing).

    Raises:
        InputError: no .txt file in the folder, or a CSV without exactly one column.
    """
    import os

    if os.path.isdir(path):
        files = sorted(
            os.path.relpath(os.path.join(root, name), path)
            for root, _, names in os.walk(path)
            for name in names
            if name.lower().endswith(".txt")
        )
        if not files:
            raise InputError(f"The folder {path!r} has no .txt files to predict on.")
        texts = []
        for name in files:
            with open(os.path.join(path, name), encoding="utf-8", errors="replace") as f:
                texts.append(f.read())
        return files, np.asarray(texts, dtype=object)
    frame = read_csv(path)
    if frame.shape[1] != 1:
        raise InputError(
            f"A text model takes one text per row: a CSV with one column, or a folder of "
            f".txt files. {path} has {frame.shape[1]} columns {list(frame.columns)[:5]}; keep "
            "only the text column."
        )
    col = frame.iloc[:, 0]
    return None, col.astype(str).where(col.notna(), "").to_numpy(object)


def read_csv(path: str):
    """A CSV file as a pandas DataFrame.

    Raises:
        InputError: the file is missing or is not a CSV file.
    """
    import pandas as pd

    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"No such CSV file: {path!r}. Check the path.") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"Cannot read {path!r} as a CSV file: {err}") from None


def load_npz(path: str, task: str = "auto") -> Split:
    """An .npz file with arrays x and y, or x_train, y_train, x_test, y_test.

    Raises:
        InputError: the file cannot be read, or does not hold those arrays.
    """
    arrays = read_npz(path)
    if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
        x_tr, y_tr, x_te, y_te = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        kind = "image" if x_tr.ndim >= 3 else "table"
        task = infer_task(y_tr) if task == "auto" else task
        return Split(path, kind, task, x_tr, y_tr, x_te, y_te)
    if not {"x", "y"} <= set(arrays):
        raise InputError(
            f"{path} must hold arrays 'x' and 'y' (or x_train, y_train, x_test, y_test). "
            f"Found: {sorted(arrays)}."
        )
    x, y = arrays["x"], arrays["y"]
    task = infer_task(y) if task == "auto" else task
    return split(path, "image" if x.ndim >= 3 else "table", task, x, y)


def read_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (object arrays are refused: they would run pickled code).

    Raises:
        InputError: the file is missing, is not an .npz file, or holds object arrays.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"No such .npz file: {path!r}. Check the path.") from None
    except (OSError, ValueError, EOFError) as err:
        raise InputError(
            f"Cannot read {path!r} as an .npz file of numeric or string arrays ({err}). "
            "Write it with numpy.savez, without object arrays."
        ) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise InputError(
            f"{path!r} holds a single array, not an .npz archive. Save the arrays with "
            "numpy.savez(path, x=x, y=y)."
        )
    try:
        with loaded:
            return dict(loaded)
    except ValueError as err:  # an object array inside the archive
        raise InputError(
            f"Cannot read the arrays of {path!r} ({err}). Save numeric or string arrays, "
            "not object arrays."
        ) from None
