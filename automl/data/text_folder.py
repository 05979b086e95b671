"""Texts on disk: a folder with one subfolder of `.txt` files per class.

The layout `keras.utils.text_dataset_from_directory` reads: `reviews/pos/1.txt`,
`reviews/neg/2.txt`, ... The class of a text is the name of its subfolder. Texts
are read whole, as UTF-8 (undecodable bytes replaced), in sorted order.
"""

from __future__ import annotations

import os

import numpy as np

from automl.errors import InputError


def read_text_folder(path) -> tuple[np.ndarray, np.ndarray]:
    """(texts, labels) of a folder of class subfolders holding `.txt` files.

    Raises:
        InputError: the path is not a folder, or no subfolder holds a `.txt` file,
            or a file cannot be read.
    """
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        raise InputError(
            f"{folder!r} is not a folder. Text estimators read a folder with one subfolder "
            "of .txt files per class, or a list of strings."
        )
    texts, labels = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_dir(follow_symlinks=False):
            continue
        for name in sorted(os.listdir(entry.path)):
            file = os.path.join(entry.path, name)
            if not name.lower().endswith(".txt") or not os.path.isfile(file):
                continue
            try:
                with open(file, encoding="utf-8", errors="replace") as f:
                    texts.append(f.read())
            except OSError as err:
                raise InputError(f"Cannot read the text file {file!r}: {err}.") from None
            labels.append(entry.name)
    if not texts:
        raise InputError(
            f"The folder {folder!r} has no .txt files in class subfolders. Put each class's "
            "texts in a subfolder named after the class, e.g. reviews/pos/1.txt."
        )
    return np.asarray(texts, dtype=object), np.asarray(labels)
