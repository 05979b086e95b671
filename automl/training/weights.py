"""Writing a trial's weights file without filling the disk or crashing the process.

The file is made in memory first (`keras_api.weights_bytes`), so h5py never writes to
disk: on a full disk h5py's cleanup of a half-written file crashes the process
(a segmentation fault, in plain Keras too). Then the free space beside the file is
checked against the file's size with a margin (`room`: half again, and 1 MB for the
state files written after it), the bytes go to a temporary file in
the same folder, and that file is renamed over the target, so a weights file is
always whole. A disk that cannot take the file raises `DiskFullError` ("disk full
at PATH (needs about N MB)") and leaves no partial file behind; the search records
the trial as failed and stops, saying how to resume.
"""

from __future__ import annotations

import errno
import os
import shutil

from automl.errors import DiskFullError, SearchError
from automl.project.files import create_temp
from automl.training import keras_api

MARGIN = 1.5  # free space wanted per byte of the file
HEADROOM = 1 << 20  # and more, for the state files written after it
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def expected_bytes(model) -> int:
    """About the size of `model`'s weights file: 4 bytes per parameter and per optimizer
    variable (the file keeps the optimizer's state), plus 64 KB of HDF5 headers."""
    import numpy as np

    count = model.count_params()
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.built:
        count += sum(int(np.prod(v.shape)) for v in optimizer.variables)
    return 4 * count + (64 << 10)


def disk_full(path: str, needed: int, free: int | None = None) -> DiskFullError:
    """The error for `path` on a disk without room for `needed` bytes."""
    mb = f"{needed / 2**20:.1f}".rstrip("0").rstrip(".")
    left = "" if free is None else f", {free / 2**20:.1f} MB free"
    return DiskFullError(f"disk full at {path} (needs about {mb} MB{left})")


def room(size: int) -> int:
    """The free bytes a file of `size` bytes needs: the size with a margin, and headroom."""
    return int(size * MARGIN) + HEADROOM


def check_space(path: str, size: int) -> None:
    """Raise `DiskFullError` unless the disk of `path` has `room(size)` bytes free."""
    free = shutil.disk_usage(os.path.dirname(path) or ".").free
    if free < room(size):
        raise disk_full(path, room(size), free)


def is_no_space(err: BaseException) -> bool:
    """Whether `err` says a disk (or a quota) is full."""
    return isinstance(err, DiskFullError) or (
        isinstance(err, OSError)
        and (err.errno in _NO_SPACE or "no space left" in str(err).lower()[:2000])
    )


def search_stopped(err: OSError, project_dir: str) -> SearchError:
    """The error that stops a search whose disk is full, saying how to resume it."""
    reason = str(err) if isinstance(err, DiskFullError) else f"disk full ({err})"
    return SearchError(
        f"The search stopped: {reason}. Free space on the disk of {project_dir}, then run "
        "the same fit again with overwrite=False (the default): the finished trials are "
        "kept and the search goes on from where it stopped."
    )


def save_weights(model, path: str) -> None:
    """Write `model`'s weights to `path` (a `.weights.h5` file) whole, or not at all.

    Raises:
        DiskFullError: too little free space, or the disk filled while writing (the
            partial file is removed; a file already at `path` is left as it was).
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    data = keras_api.weights_bytes(model)

    def write(fd: int, tmp: str) -> None:
        if data is None:  # a Keras without the in-memory writer: h5py writes the file
            os.close(fd)
            model.save_weights(tmp)
        else:
            _write(fd, data)

    size = len(data) if data is not None else expected_bytes(model)
    write_whole(path, size, ".weights.h5", write)  # Keras takes only this suffix


def write_whole(path: str, size: int, suffix: str, write) -> None:
    """Write a file of about `size` bytes to `path` whole, or not at all: after a
    free-space check, `write(fd, tmp)` fills a temporary file (suffix `suffix`) in the
    same folder, which then replaces `path`.

    Raises:
        DiskFullError: too little free space, or the disk filled while writing (the
            partial file is removed; a file already at `path` is left as it was).
    """
    check_space(path, size)
    fd, tmp = create_temp(os.path.dirname(path) or ".", suffix)
    try:
        write(fd, tmp)
        os.replace(tmp, path)
    except BaseException as err:
        _remove(tmp)
        if is_no_space(err):
            raise disk_full(path, room(size)) from None
        raise


def write_bytes(path: str, data: bytes, suffix: str = "") -> None:
    """Write `data` to `path` whole, or not at all (`write_whole`)."""
    write_whole(path, len(data), suffix, lambda fd, tmp: _write(fd, data))


def _write(fd: int, data: bytes) -> None:
    """Write `data` to the open file `fd`, flush it to the disk, and close it."""
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
