"""A project directory: where one search keeps its trials, and what it was run on.

The signature (`automl_task.json`) records the task, the strategy and the shape
of the data; a later `fit` on the same project with `overwrite=False` resumes
only when its signature is the same, so another search's trials are never reused
by mistake.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from automl.errors import InputError

SIGNATURE_FILE = "automl_task.json"


def write_json(path: str, value) -> None:
    """Write JSON atomically: a temporary file in the same folder, then a rename."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(value, f)
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
            f"The search file {path!r} is damaged ({err}). Delete it, or pass overwrite=True "
            "to start the search over."
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
        if stored is not None and stored != signature:
            raise InputError(
                f"The project {self.file(SIGNATURE_FILE)!r} holds a search for other data or "
                f"settings ({stored}); this fit has {signature}. Pass overwrite=True to start "
                "over, or choose another project_name or directory."
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
        """Create the folder (emptied first when `clear`) and record the signature."""
        if clear and os.path.isdir(self.path):
            shutil.rmtree(self.path)
        write_json(self.file(SIGNATURE_FILE), signature)
