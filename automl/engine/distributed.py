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

The chief trusts only its workers: every call carries the search's token, requests are
checked before the oracle sees them, and TLS is optional (`automl.engine.security` for
the arguments, `automl.engine.rpc_checks` for the gRPC side).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from automl.engine import security
from automl.engine.security import Tls
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
    token: str = field(default="", repr=False)  # every call to the chief carries it
    token_made: bool = False  # the chief made the token (it prints it for the workers)
    tls: Tls | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(value, name: str, default_host: str = "") -> tuple[str, int]:
    """("host", port) from "HOST:PORT" (with a `default_host`, also from ":PORT", "PORT"
    or a port number); InputError saying what is wrong otherwise."""
    if default_host and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    host, _, port = str(value).rpartition(":") if isinstance(value, str) else ("", "", "")
    host = host.strip("[]") or default_host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(
            f"{name} must be 'HOST:PORT' (for example '10.0.0.5:8470'; a chief's ':8470' "
            f"serves this machine only). Received: {name}={value!r}."
        )
    return host, int(port)


def resolve_role(chief=None, worker=None, token=None, tls=None) -> Role:
    """This process's role, from the arguments or keras-tuner's environment variables,
    with the search's token and TLS files (`automl.engine.security`)."""
    role = _role(chief, worker)
    if role.kind == "single":
        return role
    secret, made = security.resolve_token(token, role.kind, role.host)
    return dataclasses.replace(
        role, token=secret, token_made=made, tls=security.resolve_tls(tls, role.kind)
    )


def _role(chief, worker) -> Role:
    if chief is not None and worker is not None:
        raise InputError(
            f"A process is the chief or a worker, not both. Received: chief={chief!r}, "
            f"worker={worker!r}."
        )
    if chief is not None:
        host, port = parse_address(chief, "chief", default_host=security.LOOPBACK)
        return Role("chief", host, port, tuner_id="chief")
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
        self.refused = Counter()  # the calls it refused, by reason (rpc_checks.Refusals)

    def start(self) -> None:
        from concurrent import futures

        import grpc

        from automl.engine import rpc_checks
        from automl.engine.keras_tuner_api import serve_oracle

        role, self.refused = self.role, rpc_checks.Refusals()
        self.oracle.worker_timeout = worker_timeout()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8),
            interceptors=[rpc_checks.TokenCheck(role.token, self.refused)],
            options=rpc_checks.server_options(),
            maximum_concurrent_rpcs=rpc_checks.MAX_CONCURRENT,
        )
        serve_oracle(
            self.oracle,
            self.server,
            wrap=lambda inner: rpc_checks.CheckedService(inner, self.oracle, self.refused),
        )
        try:
            if role.tls is None:
                bound = self.server.add_insecure_port(role.address)
            else:
                credentials = rpc_checks.server_credentials(role.tls)
                bound = self.server.add_secure_port(role.address, credentials)
        except RuntimeError:
            bound = 0
        if not bound:
            raise SearchError(
                f"The chief cannot serve on {role.address}: the port is in use, the host is "
                "not an address of this machine"
                + (", or its TLS certificate and key do not match" if role.tls else "")
                + ". Choose another port or host."
            )
        self.server.start()
        self._announce()

    def _announce(self) -> None:
        """Say where the chief serves and how a worker joins (with a made token, which one)."""
        for line in security.join_lines(self.role):
            if self.progress.verbose:
                self.progress.write(line)
            elif self.role.token_made:  # silent progress: the workers still need the token
                logging.getLogger(__name__).warning(line)

    def wait(self, poll: float = 0.5) -> None:
        """Show trials as workers end them; return once the search has ended.

        Raises:
            SearchError: too many trials in a row failed (as in a one-process search).
        """
        reported = set(self.oracle.end_order)
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
        if self.refused:
            self.progress.write(
                f"chief: refused {sum(self.refused.values())} call(s): "
                f"{self.refused['token']} without the search's token, "
                f"{self.refused['request']} malformed or about unknown trials"
                + (f", {self.refused['error']} that failed" if self.refused["error"] else "")
            )
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
    own copy of the oracle, and sends a heartbeat while a trial runs. Every call carries
    the search's token; a trial id from the chief must be a trial number before it is
    used in a path.

    Raises:
        SearchError: the chief cannot be reached within `chief_timeout()` seconds, or
            refuses this worker's token.
    """

    def __init__(self, oracle, role: Role):
        import grpc

        from automl.engine import rpc_checks
        from automl.engine.keras_tuner_api import oracle_stub, service_messages

        self._oracle, self.role, self.tuner_id = oracle, role, role.tuner_id
        self.timeout = chief_timeout()
        self._metadata = rpc_checks.call_metadata(role.token)
        self._channel = rpc_checks.client_channel(role.address, role.tls)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.timeout)
        except grpc.FutureTimeoutError:
            self._channel.close()
            raise SearchError(
                f"Cannot reach the chief at {role.address} (waited {self.timeout:.0f} s). Start "
                "the chief first (fit with chief='HOST:PORT', or `automl fit ... --chief "
                "HOST:PORT`), check the host and port, that the port is open between the "
                "machines, and that chief and worker agree on TLS (a worker of a TLS chief "
                "needs AUTOML_TLS_CA). AUTOML_CHIEF_TIMEOUT sets how long a worker waits."
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
            return getattr(self.stub, method)(
                message, metadata=self._metadata, wait_for_ready=True, timeout=self.timeout
            )
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise SearchError(
                    f"The chief at {self.role.address} refused this worker's token. Give the "
                    "worker the chief's token: AUTOML_TOKEN (or token=) set to the one the "
                    "chief printed when it started, or the one it was given."
                ) from None
            if err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise SearchError(
                    f"The chief at {self.role.address} refused {method} "
                    f"({err.code().name}: {err.details()})."
                ) from None
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
        from automl.engine.oracle import PARENT

        trial = Trial.from_proto(self._call("CreateTrial", tuner_id=tuner_id).trial)
        if trial.status == TrialStatus.RUNNING:  # its id names folders: a trial number only
            self._check_id(trial.trial_id)
            self._check_id(trial.hyperparameters.values.get(PARENT) or "0")
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

    def _check_id(self, trial_id) -> None:
        from automl.engine.rpc_checks import safe_trial_id

        if not safe_trial_id(trial_id):
            raise SearchError(
                f"The chief at {self.role.address} sent the trial id {str(trial_id)[:40]!r}, "
                "which is not a trial number; this worker uses trial ids in file paths, so "
                "it stops."
            )

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
        self._check_id(trial.trial_id)
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

        self._check_id(trial_id)
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
