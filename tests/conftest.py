import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

if os.environ.get("AUTOML_TEST_WITHOUT_TENSORFLOW") == "1":  # CI's JAX step: as if not installed
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    import no_tensorflow

    no_tensorflow.install()

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def digits_ensemble(tmp_path_factory):
    """An ImageClassifier fitted once on the first 200 of scikit-learn's 8x8 digits: 3
    trials of 2 epochs, ensemble_size=2 (the members greedy selection chose, refit on all 200).

    Shared by the tests that only read it (summary, plots, exports): do not fit it
    again or change its folder; copy the folder to resume or damage a search.
    """
    from sklearn.datasets import load_digits

    import automl

    x, y = load_digits(return_X_y=True)
    clf = automl.ImageClassifier(
        max_trials=3,
        epochs=2,
        ensemble_size=2,
        verbose=0,
        directory=tmp_path_factory.mktemp("digits_ensemble"),
    )
    return clf.fit(x[:200].reshape(-1, 8, 8), y[:200])


@pytest.fixture(scope="session")
def digits_weighted(digits_ensemble):
    """A shallow copy of `digits_ensemble` whose model is an ensemble of its best two
    trials as trained, weighted 3:1 behind a temperature of 1.5, as the final-model step
    builds a calibrated ensemble (`digits_ensemble` itself is unchanged)."""
    import copy

    from automl.engine.final import calibrated, ensemble

    clf = copy.copy(digits_ensemble)
    backend = clf.backend_
    members = backend.candidates()[:2]
    models = [backend.load_model(c) for c in members]
    scaled = [calibrated(c, 1.5) for c in members]
    clf.model_ = ensemble(backend.context, scaled, models, [0.75, 0.25])
    clf.ensemble_trial_ids_ = [c.trial_id for c in members]
    return clf


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
        code = (
            "import time; from automl.project.folder import Project; "
            f"Project({str(directory)!r}, {name!r}).lock(); print('locked', flush=True); "
            "time.sleep(60)"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for proc in started:
        proc.kill()
        proc.wait()
