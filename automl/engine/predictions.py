"""A trial's predictions on the validation data: written by the tuner, read by the final step.

The file (`layout.VAL_PREDICTIONS_FILE` in the trial's folder) is a float32 `.npy`
array, one row per validation sample, written whole or not at all (a temporary file
in the same folder, fsync, rename) after a free-space check, and its SHA-256 is
recorded in the trial's summary (`val_predictions_sha256`). A file that is missing,
fails its checksum or does not fit the validation data is not used.
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np

from automl.project.files import checksum
from automl.training.weights import write_bytes

SHA_KEY = "val_predictions_sha256"  # the summary's record of the file's SHA-256


def save_predictions(path: str, predictions) -> str:
    """Write `predictions` as float32 to `path`, whole or not at all; returns its SHA-256.

    Raises:
        DiskFullError: the disk has no room for the file (no partial file is left).
    """
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(predictions, dtype=np.float32), allow_pickle=False)
    data = buffer.getvalue()
    write_bytes(path, data, ".npy")
    return hashlib.sha256(data).hexdigest()  # the file's, without reading it back


def load_predictions(path: str, expected: str, shape: tuple) -> tuple[np.ndarray | None, str]:
    """(the predictions in `path`, "") or (None, why they cannot be used).

    Args:
        path: the file.
        expected: its recorded SHA-256.
        shape: the shape they must have: (validation samples, the model's outputs).
    """
    if not os.path.exists(path):
        return None, f"its validation predictions {path!r} are missing"
    if checksum(path) != expected:
        return None, f"its validation predictions {path!r} do not match their checksum"
    try:
        predictions = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        return None, f"its validation predictions {path!r} cannot be read ({err})"
    if predictions.shape != tuple(shape) or not np.isfinite(predictions).all():
        return None, (
            f"its validation predictions {path!r} do not fit the validation data "
            f"(shape {predictions.shape}, expected {tuple(shape)}, or not finite)"
        )
    return predictions, ""
