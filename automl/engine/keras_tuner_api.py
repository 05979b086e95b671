"""keras-tuner, as automl uses it: the one module that touches its private names.

automl's oracle and tuner subclass keras-tuner's `Oracle` and `BaseTuner`, and its
distributed search serves keras-tuner's gRPC service. Part of what that needs is
not public in keras-tuner: the oracle's retry queue, project and trial folders and
state file, the hooks it calls when it saves a trial and when a trial fails
(`_save_trial`, `_check_consecutive_failures`), the tuner's state file, and the
service's protocol buffers (`keras_tuner.src.protos`, `OracleServicer`), and the oracle
locks of its `synchronized` (`LOCKS`, `THREADS`): its decorator keeps an oracle's lock when
the method raises, so a served chief hung on its next call; `synchronized` here releases
it. This module
gives each of them a public name; every other module uses these instead, so a
keras-tuner release that renames one breaks here, and `tests/test_adapters.py` says
which name went missing.

A subclass of `Oracle` overrides `save_trial` and `check_consecutive_failures`,
never keras-tuner's private hooks.
"""

from __future__ import annotations

import functools
import threading

import keras_tuner
from keras_tuner.engine import base_tuner
from keras_tuner.engine.hyperparameters import HyperParameters
from keras_tuner.engine.trial import Trial, TrialStatus
from keras_tuner.errors import FailedTrialError

Objective = keras_tuner.Objective

# how a FailedTrialError's line reads in a trial's message (a formatted traceback)
FAILED_TRIAL_PREFIX = f"{FailedTrialError.__module__}.{FailedTrialError.__qualname__}: "

# the private names of keras-tuner this module relies on, by owner (see tests/test_adapters.py)
PRIVATE_NAMES = {
    "keras_tuner.Oracle": (
        "_retry_queue",
        "_project_dir",
        "_set_project_dir",
        "_get_trial_dir",
        "_get_oracle_fname",
        "_save_trial",
        "_check_consecutive_failures",
    ),
    "keras_tuner.engine.base_tuner.BaseTuner": ("_get_tuner_fname",),
    "keras_tuner.src.protos": ("get_service", "get_service_grpc"),
    "keras_tuner.src.distribute.oracle_chief": ("OracleServicer",),
    "keras_tuner.src.errors": ("FailedTrialError",),
    "keras_tuner.src.engine.oracle": ("LOCKS", "THREADS"),
}

__all__ = [
    "FAILED_TRIAL_PREFIX",
    "FailedTrialError",
    "HyperParameters",
    "Objective",
    "Oracle",
    "Trial",
    "TrialStatus",
    "Tuner",
    "oracle_stub",
    "serve_oracle",
    "service_messages",
    "synchronized",
]


def synchronized(func):
    """keras-tuner's `synchronized` (one call at a time per oracle, re-entrant in a
    thread, sharing keras-tuner's locks) that releases the lock when `func` raises."""

    @functools.wraps(func)
    def wrapped(oracle, *args, **kwargs):
        from keras_tuner.src.engine import oracle as kt_oracle

        thread = threading.current_thread().name
        if kt_oracle.THREADS[oracle] == thread:  # called from a synchronized method
            return func(oracle, *args, **kwargs)
        with kt_oracle.LOCKS[oracle]:
            kt_oracle.THREADS[oracle] = thread
            try:
                return func(oracle, *args, **kwargs)
            finally:
                kt_oracle.THREADS[oracle] = None

    return wrapped


class Oracle(keras_tuner.Oracle):
    """keras-tuner's `Oracle`, with the private state and hooks automl uses made public,
    and its synchronized methods releasing the oracle's lock when they raise."""

    create_trial = synchronized(keras_tuner.Oracle.create_trial)
    update_trial = synchronized(keras_tuner.Oracle.update_trial)
    end_trial = synchronized(keras_tuner.Oracle.end_trial)

    @property
    def retry_queue(self) -> list:
        """Ids of the trials to run again before any new one (the list itself: append,
        remove)."""
        return self._retry_queue

    @property
    def project_dir(self) -> str:
        """The project folder (created if missing)."""
        return self._project_dir

    def set_project_dir(self, directory: str, project_name: str) -> None:
        """Put the oracle's files in `directory/project_name` (the tuner does this)."""
        self._set_project_dir(directory, project_name)

    def trial_dir(self, trial_id: str) -> str:
        """A trial's folder (created if missing)."""
        return self._get_trial_dir(trial_id)

    def oracle_file(self) -> str:
        """The oracle's state file."""
        return self._get_oracle_fname()

    def save_trial(self, trial) -> None:
        """Write a trial's file (keras-tuner calls this whenever a trial changes)."""
        keras_tuner.Oracle._save_trial(self, trial)

    def check_consecutive_failures(self) -> None:
        """Called by `end_trial` after a trial is recorded: keras-tuner raises once
        `max_consecutive_failed_trials` trials in a row failed."""
        keras_tuner.Oracle._check_consecutive_failures(self)

    # keras-tuner's private hooks, forwarded to the public names above
    def _save_trial(self, trial) -> None:
        self.save_trial(trial)

    def _check_consecutive_failures(self) -> None:
        self.check_consecutive_failures()


class Tuner(base_tuner.BaseTuner):
    """keras-tuner's `BaseTuner`, with its state file's path made public."""

    def tuner_file(self) -> str:
        """The tuner's state file."""
        return self._get_tuner_fname()


# ---------------------------------------------------------------------- the gRPC service
def serve_oracle(oracle, server, wrap=None) -> None:
    """Add keras-tuner's oracle service, answering from `oracle`, to a `grpc.server`;
    `wrap(servicer)`, when given, returns the object that answers in its place."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    servicer = OracleServicer(oracle)
    servicer = servicer if wrap is None else wrap(servicer)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)


def oracle_stub(channel):
    """A client of keras-tuner's oracle service over a gRPC `channel`."""
    from keras_tuner.src import protos

    return protos.get_service_grpc().OracleStub(channel)


def service_messages():
    """The module of the service's request and reply messages (`CreateTrialRequest`, ...)."""
    from keras_tuner.src import protos

    return protos.get_service()
