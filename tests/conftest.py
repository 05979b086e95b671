import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def lock_holder():
    """Start a live process that holds a project's lock, as a running search does.

    Call it with (directory, project_name); it returns once the lock is held. Every
    process it started is killed at the end of the test.
    """
    import subprocess
    import sys

    started = []

    def hold(directory, name) -> subprocess.Popen:
        code = ("import time; from automl.engine.project import Project; "
                f"Project({str(directory)!r}, {name!r}).lock(); print('locked', flush=True); "
                "time.sleep(60)")  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for proc in started:
        proc.kill()
        proc.wait()
