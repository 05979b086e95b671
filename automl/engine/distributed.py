"""A search on several processes or machines: one chief proposes, workers train.

This is keras-tuner's distributed mode: the chief holds the one oracle and serves it
over gRPC (keras-tuner's service and messages, unchanged); each worker asks it for a
trial, trains it, and reports back. Every machine runs the same `fit` on the same
data, with the same `directory`, a folder all of them share (weights, summaries and
trial files live there, so a child reads its parent's weights from it). On top of
keras-tuner, automl makes the search survive its workers:

- Each worker sends a heartbeat every `HEARTBEAT` seconds while it trains. A trial
  whose worker has been silent for `AUTOML_WORKER_TIMEOUT` seconds (default 60) goes
  back on the queue, and the next worker that asks runs it again; until then, workers
  with nothing left to start wait instead of stopping.
- A worker waits at most `AUTOML_CHIEF_TIMEOUT` seconds (default 60) for the chief, on
  first contact and on every call, then stops with an error naming the address.
- The chief serves until every trial has ended (not forever), builds the final model
  once, and reports a search that fails on a worker as it would in one process.

Roles come from the estimator's `chief="HOST:PORT"` / `worker="HOST:PORT"`, the
command's `--chief` / `--worker`, or keras-tuner's environment variables
(`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass

from automl.errors import InputError, SearchError
from automl.project.layout import MESSAGE_FILE  # a failed trial's message, written by its worker

HEARTBEAT = 2.0  # seconds between a worker's heartbeats
IDLE_WAIT = 1.0  # seconds a worker waits before asking again when nothing can start
ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        seconds = float(value) if value else default
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise InputError(f"{name} must be a positive number of seconds. Received: {value!r}.")
    return seconds


def worker_timeout() -> float:
    """Seconds of silence after which the chief gives a worker's trial to another worker."""
    return _seconds("AUTOML_WORKER_TIMEOUT", 60.0)


def chief_timeout() -> float:
    """Seconds a worker waits for the chief before it stops with an error."""
    return _seconds("AUTOML_CHIEF_TIMEOUT", 60.0)


@dataclass(frozen=True)
class Role:
    """What this process does in a search: "single", "chief" or "worker"."""

    kind: str = "single"
    host: str = ""
    port: int = 0
    tuner_id: str = "tuner0"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(value, name: str) -> tuple[str, int]:
    """("host", port) from "HOST:PORT"; InputError saying what is wrong otherwise."""
    host, _, port = str(value).rpartition(":") if isinstance(value, str) else ("", "", "")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(
            f"{name} must be 'HOST:PORT' (for example '10.0.0.5:8470', or '0.0.0.0:8470' "
            f"for a chief that every interface serves). Received: {name}={value!r}."
        )
    return host, int(port)


def resolve_role(chief=None, worker=None) -> Role:
    """This process's role, from the arguments or keras-tuner's environment variables."""
    if chief is not None and worker is not None:
        raise InputError(
            f"A process is the chief or a worker, not both. Received: chief={chief!r}, "
            f"worker={worker!r}."
        )
    if chief is not None:
        return Role("chief", *parse_address(chief, "chief"), tuner_id="chief")
    if worker is not None:
        default = f"worker-{socket.gethostname()}-{os.getpid()}"
        tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
        tuner_id = tuner_id if tuner_id and "chief" not in tuner_id else default
        return Role("worker", *parse_address(worker, "worker"), tuner_id=tuner_id)
    if not os.environ.get("KERASTUNER_ORACLE_IP"):
        return Role()
    missing = [name for name in ENV if not os.environ.get(name)]
    if missing:
        raise InputError(
            f"KERASTUNER_ORACLE_IP is set, so this is a distributed search, but "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not. Set all three "
            "(the tuner id is 'chief' on the chief and a unique name on each worker)."
        )
    ip, port, tuner_id = (os.environ[name] for name in ENV[1:] + ENV[:1])
    host, port = parse_address(f"{ip}:{port}", "KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT")
    return Role("chief" if "chief" in tuner_id else "worker", host, port, tuner_id)


@contextlib.contextmanager
def keras_tuner_env_hidden():
    """Hide keras-tuner's environment variables, so its tuner does not act on them itself
    (automl runs the chief's server and the workers' client)."""
    saved = {name: os.environ.pop(name) for name in ENV if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


# ---------------------------------------------------------------------- chief
class ChiefServer:
    """Serves an oracle to workers until its search has ended.

    Args:
        oracle: the `StrategyOracle` (its trials live in the shared project folder).
        role: the chief's role (the address to serve on).
        progress: the `SearchProgress` that shows finished trials.
    """

    def __init__(self, oracle, role: Role, progress):
        self.oracle, self.role, self.progress = oracle, role, progress
        self.server = None

    def start(self) -> None:
        from concurrent import futures

        import grpc

        from automl.engine.keras_tuner_api import serve_oracle

        self.oracle.worker_timeout = worker_timeout()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        serve_oracle(self.oracle, self.server)
        try:
            bound = self.server.add_insecure_port(self.role.address)
        except RuntimeError:
            bound = 0
        if not bound:
            raise SearchError(
                f"The chief cannot serve on {self.role.address}: the port is in use or the "
                "host is not an address of this machine. Choose another port, or 0.0.0.0."
            )
        self.server.start()

    def wait(self, poll: float = 0.5) -> None:
        """Show trials as workers end them; return once the search has ended.

        Raises:
            SearchError: too many trials in a row failed (as in a one-process search).
        """
        reported = set(self.oracle.end_order)
        self.progress.write(
            f"chief: serving the search on {self.role.address}; start workers "
            f"with worker={self.role.address!r}"
        )
        while not self.oracle.search_ended():
            time.sleep(poll)
            for tuner_id, trial_id in self.oracle.reap_lost():
                self.progress.write(
                    f"trial {trial_id}: worker {tuner_id} went silent; the trial "
                    "goes back on the queue"
                )
            for trial_id in [t for t in self.oracle.end_order if t not in reported]:
                reported.add(trial_id)
                self.progress.trial_ended(*self.oracle.describe_end(trial_id))
        if self.oracle.failure is not None:
            raise self.oracle.failure
        end = time.time() + 10  # let the workers still asking hear that the search is over
        while self.oracle.tuner_ids and time.time() < end:
            time.sleep(poll)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=1).wait()
            self.server = None


# ---------------------------------------------------------------------- worker
class WorkerClient:
    """A worker's stand-in for the oracle: asks the chief over gRPC, with bounded waits.

    It answers what the tuner reads locally (seed, objective, space) from the worker's
    own copy of the oracle, and sends a heartbeat while a trial runs.

    Raises:
        SearchError: the chief cannot be reached within `chief_timeout()` seconds.
    """

    def __init__(self, oracle, role: Role):
        import grpc

        from automl.engine.keras_tuner_api import oracle_stub, service_messages

        self._oracle, self.role, self.tuner_id = oracle, role, role.tuner_id
        self.timeout = chief_timeout()
        self._channel = grpc.insecure_channel(role.address)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.timeout)
        except grpc.FutureTimeoutError:
            self._channel.close()
            raise SearchError(
                f"Cannot reach the chief at {role.address} (waited {self.timeout:.0f} s). Start "
                "the chief first (fit with chief='HOST:PORT', or `automl fit ... --chief "
                "HOST:PORT`), check the host and port, and that the port is open between the "
                "machines. AUTOML_CHIEF_TIMEOUT sets how long a worker waits."
            ) from None
        self.stub = oracle_stub(self._channel)
        self._messages = service_messages()
        self._deadline: float | None = None
        self._budget: float | None = None
        self._beating: threading.Event | None = None
        self.trials_run = 0

    def __getattr__(self, name):  # seed, objective, space, ...: the worker's own copy
        return getattr(self._oracle, name)

    def _call(self, method: str, **request):
        import grpc

        message = getattr(self._messages, f"{method}Request")(**request)
        try:
            return getattr(self.stub, method)(message, wait_for_ready=True, timeout=self.timeout)
        except grpc.RpcError as err:
            raise SearchError(
                f"Lost the chief at {self.role.address} ({err.code().name}: {err.details()}). "
                "The trials that finished are kept in the shared folder; start the worker again "
                "once the chief runs."
            ) from None

    def get_space(self):
        from automl.engine.keras_tuner_api import HyperParameters

        return HyperParameters.from_proto(self._call("GetSpace").hyperparameters)

    def update_space(self, hyperparameters) -> None:
        self._call("UpdateSpace", hyperparameters=hyperparameters.to_proto())

    def create_trial(self, tuner_id: str):
        from automl.engine.keras_tuner_api import Trial, TrialStatus

        trial = Trial.from_proto(self._call("CreateTrial", tuner_id=tuner_id).trial)
        if trial.status == TrialStatus.IDLE:
            time.sleep(IDLE_WAIT)  # another worker's trial may come back: ask again soon
        elif trial.status == TrialStatus.RUNNING:
            left = trial.hyperparameters.values.get("seconds_left")
            self._deadline = None if left is None else time.time() + float(left)
            self._budget = trial.hyperparameters.values.get("trial_budget")
            self._beating = threading.Event()
            threading.Thread(
                target=self._beat, args=(trial.trial_id, self._beating), daemon=True
            ).start()
        return trial

    def _beat(self, trial_id: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT):
            with contextlib.suppress(SearchError):
                self._call("UpdateTrial", trial_id=trial_id, metrics={}, step=0)

    def update_trial(self, trial_id: str, metrics: dict, step: int = 0):
        from automl.engine.keras_tuner_api import Trial

        reply = self._call("UpdateTrial", trial_id=trial_id, metrics=metrics, step=step)
        return Trial.from_proto(reply.trial)

    def end_trial(self, trial) -> None:
        if self._beating is not None:
            self._beating.set()
        if trial.message:  # keras-tuner's messages do not carry it: leave it beside the trial
            from automl.project.files import write_json

            write_json(
                os.path.join(self._oracle.trial_dir(trial.trial_id), MESSAGE_FILE),
                {"message": trial.message},
            )
        self._call("EndTrial", trial=trial.to_proto())
        self.trials_run += 1

    def get_trial(self, trial_id: str):
        from automl.engine.keras_tuner_api import Trial

        return Trial.from_proto(self._call("GetTrial", trial_id=trial_id).trial)

    def trial_deadline(self) -> float | None:
        """When the running trial must stop (the chief's time limit, in this clock)."""
        return self._deadline

    def trial_budget(self) -> float | None:
        """Seconds the running trial may train (the chief's share of its search time)."""
        return self._budget

    def finished_summaries(self) -> list[dict]:
        """The summaries of the trials finished so far, read from the shared folder (this
        worker's copy of the oracle knows only the trials it ran)."""
        from automl.engine.summaries import read_summaries

        return read_summaries(self._oracle.project_dir)

    def mark_failed(self, trial_id: str, message: str) -> None:
        """Nothing: the chief's copy of a trial is the one that counts."""

    def save(self) -> None:
        """Nothing: the chief saves the search."""

    def close(self) -> None:
        if self._beating is not None:
            self._beating.set()
        self._channel.close()
