"""A project directory: where one search keeps its trials, and what it was run on.

The signature (`automl_task.json`) records the task, the strategy, the shape of
the data and a fingerprint of the data itself; a later `fit` on the same project
with `overwrite=False` resumes only when its signature is the same, so another
search's trials are never reused by mistake. One process at a time writes a
project: `fit` holds its lock file (`automl.lock`, with the pid and host) from
start to end, and takes it over when the process that left it is dead.

Its files are written with `automl.project.files` (atomic, checksummed).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time

from automl.errors import InputError
from automl.project.files import read_json, write_json
from automl.project.layout import LOCK_FILE, SIGNATURE_FILE


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
        raise InputError(
            f"The project folder {self.path!r} holds a search for {_difference(stored, signature)}. "
            "Pass overwrite=True to start over there, or choose another project_name or directory."
        )

    def check_joined(self, signature: dict) -> None:
        """A worker's check: the chief's search is in this folder, for the same data and settings."""
        stored = read_json(self.file(SIGNATURE_FILE))
        if stored is None:
            raise InputError(
                f"The chief's search is not in {self.path!r} on this machine. Every machine "
                "needs the same directory and project_name, in a folder they all share (a "
                "network file system), and the chief must start first."
            )
        if stored != signature:
            raise InputError(
                f"The chief searches {self.path!r} for {_difference(stored, signature)} than "
                "this worker's. Run every worker with the same data, validation split, "
                "strategy and settings as the chief."
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
        """Take the project's lock file, or refuse if another live process holds it.

        The lock is an exclusive `flock` on `automl.lock` (the kernel drops it when its
        process dies, so a killed search's lock is taken over); the file also names the
        holder's pid and host for the message. A lock file written on another host is
        refused, since its process cannot be checked from here.

        Raises:
            InputError: another process is writing this project.
        """
        os.makedirs(self.path, exist_ok=True)
        path = self.file(LOCK_FILE)
        host = socket.gethostname()
        for _ in range(10):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            holder = _read_holder(fd)
            other_host = holder is not None and holder.get("host") not in (None, host)
            if other_host or not _try_lock(fd, holder):
                os.close(fd)
                raise self._busy(path, holder)
            if not _same_file(fd, path):  # its holder removed it meanwhile: use the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(
                fd, json.dumps({"pid": os.getpid(), "host": host, "since": time.time()}).encode()
            )
            os.fsync(fd)
            self._lock_fd = fd
            return
        raise InputError(f"Could not take the lock file {path!r}; other processes keep taking it.")

    def unlock(self) -> None:
        """Release the lock (and remove its file) if this project object holds it."""
        fd = getattr(self, "_lock_fd", None)
        if fd is None:
            return
        path = self.file(LOCK_FILE)
        if _same_file(fd, path):
            os.remove(path)
        os.close(fd)  # releases the flock
        self._lock_fd = None

    def _busy(self, path: str, holder: dict | None) -> InputError:
        if holder is None:
            who = "another process"
        else:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
            who = f"process {holder.get('pid')} on {holder.get('host')!r} (since {since})"
        return InputError(
            f"The project folder {self.path!r} is in use by {who}. Wait for that search to "
            f"end, or choose another project_name or directory. If that process is gone, "
            f"delete {path!r}."
        )


def _difference(stored: dict, signature: dict) -> str:
    """What differs between two signatures, in words."""
    if stored.get("data") != signature.get("data") and all(
        stored.get(k) == v for k, v in signature.items() if k != "data"
    ):
        return "other data (its fingerprint differs)"
    different = sorted(k for k in {**stored, **signature} if stored.get(k) != signature.get(k))
    return f"other data or settings (differing: {', '.join(different)})"


def _read_holder(fd: int) -> dict | None:
    """The lock file's content; None when empty or unreadable."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _try_lock(fd: int, holder: dict | None) -> bool:
    """Take an exclusive, non-blocking flock; without fcntl, judge the holder's pid."""
    try:
        import fcntl
    except ImportError:  # not POSIX: a lock whose process is alive is held
        return holder is None or not _alive(holder.get("pid"))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock (some network mounts): judge the pid
        return holder is None or not _alive(holder.get("pid"))
    return True


def _same_file(fd: int, path: str) -> bool:
    """Whether the open `fd` is still the file at `path`."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _alive(pid) -> bool:
    """Whether process `pid` of this host is running."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
