"""A project directory: where one search keeps its trials, and what it was run on.

The signature (`automl_task.json`) records the task, the strategy, the shape of
the data and a fingerprint of the data itself; a later `fit` on the same project
with `overwrite=False` resumes only when its signature is the same, so another
search's trials are never reused by mistake. One process at a time writes a
project: `fit` holds its lock file (`automl.lock`, with the pid and host) from
start to end, and takes it over when the process that left it is dead.

Every state file is written atomically (a temporary file, fsync, rename), and
every weights file's SHA-256 is recorded with its trial, so a damaged file is
found before it is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time

import numpy as np

from automl.errors import InputError

SIGNATURE_FILE = "automl_task.json"
LOCK_FILE = "automl.lock"


class DamagedFileError(Exception):
    """A trial's file is missing or does not match its recorded checksum."""


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


def fingerprint(*arrays) -> str:
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


def write_json(path: str, value, indent: int | None = None) -> None:
    """Write JSON atomically: a temporary file in the same folder, then a rename."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
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
        InputError: the file is damaged (names the file and how to start over).
    """
    if not os.path.exists(path):
        return default
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(
            f"The search file {path!r} is damaged ({err}). Pass overwrite=True to start the "
            "search over, or choose another project_name."
        ) from None


class Project:
    """The folder `directory/name` of one search.

    Args:
        directory: parent folder of all projects.
        name: the project's folder name.
        overwrite: start over, deleting what the folder holds.
    """

    def __init__(self, directory: str, name: str, overwrite: bool = False):
        self.directory = str(directory)
        self.name = name
        self.overwrite = overwrite
        self.path = os.path.join(self.directory, name)

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def check(self, signature: dict) -> None:
        """Refuse a project that holds a search for other data or settings, or no folder."""
        self.check_writable()
        if self.overwrite:
            return
        stored = read_json(self.file(SIGNATURE_FILE))
        if stored is None or stored == signature:
            return
        if stored.get("data") != signature.get("data") and all(
            stored.get(k) == v for k, v in signature.items() if k != "data"
        ):
            what = "other data (its fingerprint differs)"
        else:
            different = sorted(
                k for k in {**stored, **signature} if stored.get(k) != signature.get(k)
            )
            what = f"other data or settings (differing: {', '.join(different)})"
        raise InputError(
            f"The project folder {self.path!r} holds a search for {what}. Pass overwrite=True "
            "to start over there, or choose another project_name or directory."
        )

    def check_writable(self) -> None:
        """Refuse a `directory` that is a file, or a folder that cannot be created."""
        existing = self.path
        while not os.path.exists(existing):
            existing = os.path.dirname(existing) or "."
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
            raise InputError(
                f"Cannot create the project folder {self.path!r}: {existing!r} is not a "
                "writable folder. Pass a directory you can write to."
            )

    def start(self, signature: dict, clear: bool = False) -> None:
        """Create the folder (emptied first when `clear`, keeping the lock) and record the signature."""
        if clear and os.path.isdir(self.path):
            for entry in os.listdir(self.path):
                if entry == LOCK_FILE:
                    continue
                path = self.file(entry)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
        write_json(self.file(SIGNATURE_FILE), signature)

    # ------------------------------------------------------------------ the lock
    def lock(self) -> None:
        """Take the project's lock file, or refuse if a live process holds it.

        A lock left by a dead process on this host is taken over. A lock from another
        host cannot be checked and is refused (delete it if that process is gone).

        Raises:
            InputError: another process is writing this project.
        """
        os.makedirs(self.path, exist_ok=True)
        path = self.file(LOCK_FILE)
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(5):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder(path)
                if holder is not None and _alive(holder):
                    since = time.strftime("%Y-%m-%d %H:%M:%S",
                                          time.localtime(holder.get("since", 0)))  # fmt: skip
                    raise InputError(
                        f"The project folder {self.path!r} is in use by process "
                        f"{holder.get('pid')} on {holder.get('host')!r} (since {since}). Wait "
                        "for that search to end, or choose another project_name or directory. "
                        f"If that process is gone, delete {path!r}."
                    ) from None
                try:  # stale: move it aside, then try again
                    os.replace(path, f"{path}.stale-{os.getpid()}")
                    os.remove(f"{path}.stale-{os.getpid()}")
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(mine, f)
                f.flush()
                os.fsync(f.fileno())
            return
        raise InputError(f"Could not take the lock file {path!r}; another process keeps taking it.")

    def unlock(self) -> None:
        """Release the lock file if this process holds it."""
        path = self.file(LOCK_FILE)
        holder = self._holder(path)
        mine = (os.getpid(), socket.gethostname())
        if holder is not None and (holder.get("pid"), holder.get("host")) == mine:
            os.remove(path)

    @staticmethod
    def _holder(path: str) -> dict | None:
        """The lock's content; None when absent or unreadable (an interrupted write)."""
        try:
            with open(path) as f:
                holder = json.load(f)
            return holder if isinstance(holder, dict) else None
        except (OSError, ValueError):
            if os.path.exists(path) and time.time() - os.path.getmtime(path) < 10:
                return {"pid": -1, "host": "", "since": time.time()}  # being written now
            return None


def _alive(holder: dict) -> bool:
    """Whether the lock holder may still be running (always True for another host)."""
    if holder.get("pid") == -1:
        return True
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False  # our own leftover (a fit in this process that ended) is stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    """False for a process that has exited but not been reaped (Linux); True otherwise."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
