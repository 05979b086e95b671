"""A project directory: where one search keeps its trials, and what it was run on.

The signature (`automl_task.json`) records the task, the strategy, the shape of
the data and a fingerprint of the data itself; a later `fit` on the same project
with `overwrite=False` resumes only when its signature is the same, so another
search's trials are never reused by mistake. One process at a time writes a
project: `fit` holds its lock file (`automl.lock`, with the pid and host) from
start to end, and takes it over when the process that left it is dead.

Paths: a project name is one folder name (`NAME_RULE`), and the project folder is
`directory/name` itself, never a link to elsewhere. automl writes only in a folder it
created: it leaves its marker (`automl_project.json`) in every folder it creates (or
finds empty), and a folder with the signature (made by an older automl) counts as
its own. `overwrite=True` deletes only what automl wrote there (`layout.written_entries`);
other files in it stay. A folder that is neither is refused, saying what it holds.

Its files are written with `automl.project.files` (atomic, checksummed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time

from automl.errors import InputError
from automl.project.files import read_json, write_json
from automl.project.layout import (
    LOCK_FILE,
    MARKER_FILE,
    SIGNATURE_FILE,
    TEMP_PREFIX,
    written_entries,
)

NAME_RULE = (
    "one folder name of 1 to 100 characters: letters A-Z and a-z, digits, '.', '_' and "
    "'-', starting with a letter or a digit (so not '.', '..', a path or a hidden name)"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
DEFAULT_NAME = "automl_project"


def check_name(name, argument: str = "project_name") -> str:
    """`name` when it is a safe project name (`NAME_RULE`); InputError otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(f"{argument} must be {NAME_RULE}. Received: {argument}={name!r}.")
    return name


def name_from_path(path) -> str:
    """A safe project name from a data path: the name of the file (without its extension)
    or folder it points to, "." and ".." resolved, other characters replaced by "_";
    `DEFAULT_NAME` when nothing is left (the root folder, say)."""
    full = os.path.abspath(os.fspath(path))
    name = os.path.basename(full)
    if not os.path.isdir(full):
        name = os.path.splitext(name)[0]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-")[:100]
    return name or DEFAULT_NAME


class Project:
    """The folder `directory/name` of one search.

    Args:
        directory: parent folder of all projects.
        name: the project's folder name (`NAME_RULE`; InputError otherwise).
        overwrite: start over, deleting what automl wrote in the folder.
        break_lock: take the lock over even when its holder may still run (see `lock`).
    """

    def __init__(
        self, directory: str, name: str, overwrite: bool = False, break_lock: bool = False
    ):
        self.directory = os.fspath(directory)
        self.name = check_name(name)
        self.overwrite = overwrite
        self.break_lock = break_lock
        self.path = os.path.join(self.directory, self.name)

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
        """Refuse a project folder that is a link or a file, a `directory` that is a file,
        or a folder that cannot be created."""
        if os.path.lexists(self.path):
            inside = os.path.join(os.path.realpath(self.directory), self.name)
            if os.path.realpath(self.path) != inside:
                raise InputError(
                    f"The project folder {self.path!r} is a link to "
                    f"{os.path.realpath(self.path)!r}; automl writes only in a real folder "
                    "inside directory. Pass that folder's parent as directory, or choose "
                    "another project_name."
                )
            if not os.path.isdir(self.path):
                raise InputError(
                    f"{self.path!r} is a file, not a project folder. Choose another "
                    "project_name or directory."
                )
        existing = self.path
        while not os.path.exists(existing):
            existing = os.path.dirname(existing) or "."
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
            raise InputError(
                f"Cannot create the project folder {self.path!r}: {existing!r} is not a "
                "writable folder. Pass a directory you can write to."
            )

    def claim(self) -> None:
        """Create the folder with automl's marker, or check that an existing one is automl's.

        An existing folder is automl's when it has the marker or the signature (a
        project of an older automl, which gets the marker now); an empty one (or one
        with only a lock or temporary files) is taken, with the marker.

        Raises:
            InputError: the folder holds files automl did not write (names some), or is
                a link or a file.
        """
        self.check_writable()
        os.makedirs(self.path, exist_ok=True)
        if os.path.exists(self.file(MARKER_FILE)):
            return
        entries = sorted(os.listdir(self.path))
        ours = SIGNATURE_FILE in entries or all(
            e == LOCK_FILE or e.startswith(TEMP_PREFIX) for e in entries
        )
        if not ours:
            shown = ", ".join(entries[:5]) + (
                f" and {len(entries) - 5} more" if len(entries) > 5 else ""
            )
            raise InputError(
                f"The folder {self.path!r} was not made by automl (it has no {MARKER_FILE} "
                f"or {SIGNATURE_FILE}) and holds {len(entries)} entries ({shown}). automl "
                "writes, and with overwrite=True deletes, only in its own project folders. "
                "Choose another project_name or directory, or move those files out."
            )
        write_json(self.file(MARKER_FILE), {"created_by": "automl", "since": time.time()})

    def start(self, signature: dict, clear: bool = False) -> None:
        """Record the signature in automl's folder (`claim`), first deleting what automl
        wrote there when `clear` (`layout.written_entries`: never the marker, the lock,
        or files automl does not name)."""
        self.claim()
        if clear:
            for entry in written_entries(self.path):
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
        holder's pid and host for the message. A lock written on another host is taken
        over when its flock is free (a container restarted with a new hostname). Where
        the flock cannot tell (no flock on this file system), a holder on this host is
        judged by its pid, and one on another host is refused. `break_lock` takes any
        lock over: the old file is removed and a new one locked.

        Raises:
            InputError: another process holds the lock, or may (names `break_lock`), or
                the folder is not automl's (`claim`).
        """
        self.claim()
        path = self.file(LOCK_FILE)
        host = socket.gethostname()
        broken = False
        for _ in range(10):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            holder = _read_holder(fd)
            if not _try_lock(fd, holder):
                if not self.break_lock or broken:
                    os.close(fd)
                    raise self._busy(path, holder, host)
                if _same_file(fd, path):  # the holder's file goes; its flock stays on it
                    os.remove(path)
                os.close(fd)
                broken = True
                continue
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

    def _busy(self, path: str, holder: dict | None, host: str) -> InputError:
        take_over = (
            "pass break_lock=True (automl fit --break-lock) to take its lock over; two "
            "searches writing one project spoil it"
        )
        if holder is None:
            return InputError(
                f"The project folder {self.path!r} is in use by another process. Wait for "
                "that search to end, or choose another project_name or directory. If no "
                f"search runs there any more, {take_over}."
            )
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
        who = f"process {holder.get('pid')} on {holder.get('host')!r} (since {since})"
        if holder.get("host") not in (None, host):
            return InputError(
                f"The project folder {self.path!r} is in use by {who}, another host than "
                f"this one ({host!r}). If that search has ended (its machine or container "
                f"is gone), {take_over}. "
                "Otherwise wait for it to end, or choose another project_name or directory."
            )
        return InputError(
            f"The project folder {self.path!r} is in use by {who}. Wait for that search to "
            "end, or choose another project_name or directory. If you are sure it no "
            f"longer writes there, {take_over}."
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
    """Take an exclusive, non-blocking flock; without flock, judge the holder (`_free_by_pid`)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: a lock whose process is alive is held
        return _free_by_pid(holder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock (some network mounts): judge the pid
        return _free_by_pid(holder)
    return True


def _free_by_pid(holder: dict | None) -> bool:
    """Without flock: free when nobody holds it or its holder is a dead process of this
    host; a holder on another host cannot be checked, so it holds the lock."""
    if holder is None:
        return True
    if holder.get("host") not in (None, socket.gethostname()):
        return False
    return not _alive(holder.get("pid"))


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
