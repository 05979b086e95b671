"""Files that survive a kill: atomic JSON writes, checksums, data fingerprints.

Every state file is written atomically (a temporary file, fsync, rename), and
every weights file's SHA-256 is recorded with its trial, so a damaged file is
found before it is reused. Files are created as `open()` creates them: mode 0o666
less the process umask (`create_temp`), so another user reads what the umask lets
them read.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets

import numpy as np

from automl.errors import DamagedFileError, InputError
from automl.project.layout import TEMP_PREFIX


def checksum(path: str) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: str, expected: str | None) -> None:
    """Raise `DamagedFileError` when `path` is missing or its SHA-256 is not `expected`.

    A file recorded without a checksum (`expected` None) only has to exist.
    """
    if not os.path.exists(path):
        raise DamagedFileError(f"the weights file {path!r} is missing")
    if expected is not None and checksum(path) != expected:
        raise DamagedFileError(
            f"the weights file {path!r} does not match the checksum recorded when it was "
            "written (damaged or replaced)"
        )


def hash_arrays(*arrays) -> str:
    """A hash of the data (arrays, DataFrames or None), read in chunks of rows.

    Shapes, dtypes and column names count, so the same values in another form differ.
    """
    import pandas as pd

    digest = hashlib.sha256()
    for value in arrays:
        if value is None:
            digest.update(b"none")
            continue
        if isinstance(value, pd.DataFrame):
            digest.update(repr([str(c) for c in value.columns]).encode())
            for start in range(0, len(value), 65536):
                rows = pd.util.hash_pandas_object(value.iloc[start : start + 65536], index=False)
                digest.update(rows.to_numpy().tobytes())
            continue
        value = np.asarray(value)
        digest.update(f"{value.shape}{value.dtype.str}".encode())
        for start in range(0, len(value) if value.ndim else 1, 65536):
            chunk = value[start : start + 65536] if value.ndim else value
            if chunk.dtype.kind == "O":
                flat = pd.Series(chunk.reshape(-1).astype(str))
                digest.update(pd.util.hash_pandas_object(flat, index=False).to_numpy().tobytes())
            else:
                digest.update(np.ascontiguousarray(chunk).tobytes())
    return digest.hexdigest()[:32]


def create_temp(folder: str, suffix: str = "") -> tuple[int, str]:
    """(open file descriptor, path) of a new temporary file in `folder`, to be renamed
    once written. Created as `open()` creates a file (mode 0o666 less the umask, which
    the kernel applies), not 0o600 as `tempfile.mkstemp` would."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        path = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {folder!r}")


def write_json(path: str, value, indent: int | None = None) -> None:
    """Write JSON atomically: a temporary file in the same folder, then a rename."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = create_temp(folder, ".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(value, f, indent=indent)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_json(path: str, default=None):
    """Read a JSON file written by automl; `default` when it does not exist.

    Raises:
        InputError: the file cannot be read (names the file and the permission it
            lacks), or is damaged (names the file and how to start over).
    """
    if not os.path.exists(path):
        return default
    try:
        with open(path) as f:
            return json.load(f)
    except PermissionError:
        raise unreadable(path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(
            f"The search file {path!r} is damaged ({err}). Pass overwrite=True to start the "
            "search over, or choose another project_name."
        ) from None


def unreadable(path: str) -> InputError:
    """The error for a file this user may not read (not a damaged one)."""
    return InputError(
        f"Permission denied reading {path!r}: this user ({_user()}) may not read it. Ask "
        "its owner to make it readable (chmod a+r), or run as the user that wrote it."
    )


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name (a container without one): the uid
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
