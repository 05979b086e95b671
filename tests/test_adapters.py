"""The adapters over other libraries' private APIs: every private name they rely on exists.

`automl.engine.keras_tuner_api` (keras-tuner) and `automl.training.keras_api` (Keras)
are the only modules that touch those libraries' private names. An upgrade that
renames or moves one fails here, with a message naming the adapter and the name.
"""

from __future__ import annotations

import importlib
import os
import traceback

import pytest

KT_ADAPTER = "automl/engine/keras_tuner_api.py"
KERAS_ADAPTER = "automl/training/keras_api.py"
INSTANCE_ONLY = {"_retry_queue"}  # set in `__init__`: checked on an oracle (below)


def _resolve(path: str):
    """The module, or the attribute of a module, named by a dotted `path`."""
    try:
        return importlib.import_module(path)
    except ImportError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def _missing(names: dict) -> list[str]:
    missing = []
    for owner_path, attributes in names.items():
        try:
            owner = _resolve(owner_path)
        except (ImportError, AttributeError):
            missing.append(owner_path)
            continue
        missing += [
            f"{owner_path}.{name}"
            for name in attributes
            if name not in INSTANCE_ONLY and not hasattr(owner, name)
        ]
    return missing


def _needs(library: str, adapter: str, missing) -> str:
    return f"{library} changed: {adapter} needs {', '.join(missing)}"


# ---------------------------------------------------------------------- keras-tuner
def test_keras_tuner_has_every_private_name_the_adapter_uses():
    from automl.engine import keras_tuner_api

    missing = _missing(keras_tuner_api.PRIVATE_NAMES)
    assert not missing, _needs("keras-tuner", KT_ADAPTER, missing)


def _probe_oracle():
    """An oracle that counts the calls of the adapter's hooks (keras-tuner calls its own)."""
    from automl.engine import keras_tuner_api as kt

    class ProbeOracle(kt.Oracle):
        def populate_space(self, trial_id):
            return {"status": kt.TrialStatus.RUNNING, "values": {}}

        def save_trial(self, trial):
            self.saved.append(str(trial.status))
            super().save_trial(trial)

        def check_consecutive_failures(self):
            self.checked += 1
            super().check_consecutive_failures()

    oracle = ProbeOracle(objective=kt.Objective("score", "max"), max_trials=2)
    oracle.saved, oracle.checked, oracle.verbose = [], 0, 0
    return oracle


def test_keras_tuner_calls_the_oracle_hooks_and_names_its_files_as_the_layout_says(tmp_path):
    from automl.engine import keras_tuner_api as kt
    from automl.project import layout

    oracle = _probe_oracle()
    try:
        assert oracle.retry_queue == []
    except AttributeError:
        pytest.fail(_needs("keras-tuner", KT_ADAPTER, ["keras_tuner.Oracle()._retry_queue"]))
    oracle.set_project_dir(str(tmp_path), "p")
    assert oracle.project_dir == os.path.join(str(tmp_path), "p")
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    trial.status = kt.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    hooks = {
        "keras_tuner.Oracle._save_trial (as Oracle.save_trial)": "COMPLETED" in oracle.saved,
        "keras_tuner.Oracle._check_consecutive_failures (as Oracle.check_consecutive_failures)": (
            oracle.checked == 1
        ),
    }
    missing = [name for name, called in hooks.items() if not called]
    assert not missing, _needs("keras-tuner", KT_ADAPTER, missing)
    trial_dir = oracle.trial_dir(trial.trial_id)
    assert trial_dir == layout.trial_path(oracle.project_dir, trial.trial_id)
    assert os.path.exists(os.path.join(trial_dir, layout.TRIAL_FILE))
    assert oracle.oracle_file() == os.path.join(oracle.project_dir, layout.ORACLE_FILE)
    assert layout.trial_files(oracle.project_dir, layout.TRIAL_FILE) == [
        os.path.join(trial_dir, layout.TRIAL_FILE)
    ]

    class ProbeTuner(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            return {"score": 1.0}

    tuner = ProbeTuner(oracle, directory=str(tmp_path), project_name="p")
    assert tuner.tuner_file() == os.path.join(oracle.project_dir, layout.tuner_file(tuner.tuner_id))


def test_a_failed_trials_message_starts_with_the_prefix_the_adapter_names():
    from automl.engine.keras_tuner_api import FAILED_TRIAL_PREFIX, FailedTrialError
    from automl.engine.summaries import last_line

    try:
        raise FailedTrialError("training diverged")
    except FailedTrialError:
        message = traceback.format_exc()  # what keras-tuner records as the trial's message
    assert message.splitlines()[-1].startswith(FAILED_TRIAL_PREFIX), _needs(
        "keras-tuner", KT_ADAPTER, [f"FAILED_TRIAL_PREFIX to read {message.splitlines()[-1]!r}"]
    )
    assert last_line(message) == "training diverged"


def test_keras_tuners_oracle_service_has_the_calls_a_worker_makes():
    from concurrent import futures

    import grpc

    from automl.engine import keras_tuner_api as kt

    messages = kt.service_messages()
    calls = ["GetSpace", "UpdateSpace", "CreateTrial", "UpdateTrial", "EndTrial", "GetTrial"]
    missing = [
        f"protos.get_service().{c}Request" for c in calls if not hasattr(messages, f"{c}Request")
    ]
    channel = grpc.insecure_channel("localhost:1")  # not connected: only the stub is made
    try:
        stub = kt.oracle_stub(channel)
        missing += [f"OracleStub.{c}" for c in calls if not hasattr(stub, c)]
    finally:
        channel.close()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    try:
        kt.serve_oracle(_probe_oracle(), server)  # not started
    finally:
        server.stop(None)
    assert not missing, _needs("keras-tuner", KT_ADAPTER, missing)


# ---------------------------------------------------------------------- Keras
def test_keras_has_every_private_name_the_adapter_uses():
    from automl.training import keras_api

    missing = _missing(keras_api.PRIVATE_NAMES)
    assert not missing, _needs("Keras", KERAS_ADAPTER, missing)


def test_the_stateless_scope_maps_variables_to_values_and_collects_assignments():
    import keras
    import numpy as np

    from automl.training.keras_api import stateless_scope

    variable = keras.Variable(np.zeros(2, "float32"))
    with stateless_scope([(variable, np.ones(2, "float32"))]) as scope:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), [1.0, 1.0])
        variable.assign(np.full(2, 3.0, "float32"))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(scope.get_current_value(variable)), [3, 3]
    )
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), [0.0, 0.0])
