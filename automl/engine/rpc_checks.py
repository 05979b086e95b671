"""The chief's gRPC service behind checks: the token on every call, and every request.

A chief answers only calls that carry the search's token (`TokenCheck`, a server
interceptor: UNAUTHENTICATED otherwise, compared in constant time, before the request is
even read), reads no request over `MAX_MESSAGE` bytes (RESOURCE_EXHAUSTED), and checks
each request before its oracle sees it (`CheckedService`): trial ids that are trial
numbers the search knows (INVALID_ARGUMENT for a malformed one, NOT_FOUND for an unknown
one), the objective as the only metric, with finite values, an ended trial's status
(COMPLETED, FAILED or INVALID) and its hyperparameters as the chief gave them, tuner ids
of safe characters. A refused or failing call is answered with a gRPC error; the oracle's
lock is never left held (`automl.engine.keras_tuner_api.synchronized`).

A worker checks what the chief sends in the same way (`safe_trial_id`) before it uses a
trial id in a file path.
"""

from __future__ import annotations

import hmac
import math
import re
import threading
from collections import Counter

import grpc

from automl.engine.security import Tls

HEADER = "authorization"  # the metadata key of the token ("Bearer TOKEN")
MAX_MESSAGE = 1 << 20  # bytes a request may have (a trial is a few kB; 70x a deep graph's)
MAX_CONCURRENT = 256  # calls a chief holds at once (more: RESOURCE_EXHAUSTED)
MAX_STEP = 2**31 - 1
_TRIAL_ID = re.compile(r"[0-9]{1,16}")  # keras-tuner's trial ids: the trial number, zero-padded
_TUNER_ID = re.compile(r"[A-Za-z0-9._:@+-]{1,200}")
_ENDED = ("COMPLETED", "FAILED", "INVALID")
_CODES = grpc.StatusCode


def safe_trial_id(value) -> bool:
    """Whether `value` is a trial id safe in a file path (a trial number)."""
    return isinstance(value, str) and _TRIAL_ID.fullmatch(value) is not None


def call_metadata(token: str) -> tuple:
    """The metadata a worker sends with every call."""
    return ((HEADER, f"Bearer {token}"),)


def server_options() -> list:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def server_credentials(tls: Tls):
    """TLS credentials of a chief from its certificate and key files."""
    return grpc.ssl_server_credentials([(_read(tls.key), _read(tls.cert))])


def client_channel(address: str, tls: Tls | None):
    """A worker's channel to the chief: TLS checked against `tls.ca`, or plain."""
    options = server_options()
    if tls is None:
        return grpc.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=_read(tls.ca))
    return grpc.secure_channel(address, credentials, options=options)


class Refusals(Counter):
    """The calls a chief refused, by reason: "token", "request" (checks), "error" (the
    oracle failed); counted from the server's threads."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()

    def add(self, reason: str) -> None:
        with self._lock:
            self[reason] += 1


class TokenCheck(grpc.ServerInterceptor):
    """Lets through only the calls whose metadata carry `token`; UNAUTHENTICATED otherwise."""

    def __init__(self, token: str, refused: Refusals):
        if len(token) < 16:
            raise ValueError("a chief's token has 16 characters or more")
        self._expected = f"Bearer {token}".encode()
        self._refused = refused
        self._deny = grpc.unary_unary_rpc_method_handler(self._refuse)  # reads no request

    @staticmethod
    def _refuse(request, context):
        context.abort(
            _CODES.UNAUTHENTICATED,
            "this chief answers only calls with the search's token (AUTOML_TOKEN or token=)",
        )

    def intercept_service(self, continuation, handler_call_details):
        given = next(
            (v for k, v in handler_call_details.invocation_metadata or () if k == HEADER), ""
        )
        given = given if isinstance(given, bytes) else str(given).encode("utf-8", "replace")
        if hmac.compare_digest(given, self._expected):
            return continuation(handler_call_details)
        self._refused.add("token")
        return self._deny


class _Refused(Exception):
    def __init__(self, code, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


class CheckedService:
    """keras-tuner's oracle service (`inner`) behind checks of every request.

    Args:
        inner: keras-tuner's servicer of `oracle`.
        oracle: the served `StrategyOracle`.
        refused: counts the refused calls.
    """

    def __init__(self, inner, oracle, refused: Refusals):
        self.inner, self.oracle, self.refused = inner, oracle, refused

    # ------------------------------------------------------------------ the calls
    def GetSpace(self, request, context):
        return self._answer("GetSpace", request, context, None)

    def UpdateSpace(self, request, context):
        return self._answer("UpdateSpace", request, context, self._check_space)

    def CreateTrial(self, request, context):
        return self._answer("CreateTrial", request, context, self._check_tuner)

    def UpdateTrial(self, request, context):
        return self._answer("UpdateTrial", request, context, self._check_update)

    def EndTrial(self, request, context):
        return self._answer("EndTrial", request, context, self._check_end)

    def GetTrial(self, request, context):
        return self._answer("GetTrial", request, context, lambda r: self._known(r.trial_id))

    def GetBestTrials(self, request, context):
        return self._answer("GetBestTrials", request, context, self._check_best)

    def _answer(self, method: str, request, context, check):
        try:
            if check is not None:
                check(request)
        except _Refused as refused:
            error, reason = (refused.code, refused.detail), "request"
        else:
            try:
                return getattr(self.inner, method)(request, context)
            except Exception as err:  # the oracle failed: answer, never hang the caller
                error = (_CODES.INTERNAL, f"the chief could not answer: {type(err).__name__}")
                reason = "error"
        self.refused.add(reason)
        context.abort(*error)

    # ------------------------------------------------------------------ the checks
    def _known(self, trial_id):
        """The oracle's trial `trial_id`, which must be a known trial number."""
        if not safe_trial_id(trial_id):
            raise _Refused(_CODES.INVALID_ARGUMENT, f"not a trial id: {str(trial_id)[:40]!r}")
        trial = self.oracle.trials.get(trial_id)
        if trial is None:
            raise _Refused(_CODES.NOT_FOUND, f"no trial {trial_id} in this search")
        return trial

    def _check_tuner(self, request) -> None:
        if not _TUNER_ID.fullmatch(request.tuner_id):
            raise _Refused(
                _CODES.INVALID_ARGUMENT,
                "a tuner id is 1 to 200 letters, digits and ._:@+- characters",
            )

    def _check_space(self, request) -> None:
        from automl.engine.keras_tuner_api import HyperParameters

        try:
            names = {hp.name for hp in HyperParameters.from_proto(request.hyperparameters).space}
        except Exception:
            raise _Refused(_CODES.INVALID_ARGUMENT, "unreadable hyperparameters") from None
        if names - {hp.name for hp in self.oracle.get_space().space}:
            raise _Refused(_CODES.INVALID_ARGUMENT, "the chief's space has no such hyperparameter")

    def _check_update(self, request) -> None:
        self._known(request.trial_id)
        metrics = dict(request.metrics)
        objective = self.oracle.objective.name
        if metrics and set(metrics) != {objective}:
            raise _Refused(
                _CODES.INVALID_ARGUMENT, f"a trial reports its {objective!r} only (or nothing)"
            )
        if not all(math.isfinite(v) for v in metrics.values()):
            raise _Refused(_CODES.INVALID_ARGUMENT, "metric values must be finite")
        if not 0 <= request.step <= MAX_STEP:
            raise _Refused(_CODES.INVALID_ARGUMENT, f"step must be in [0, {MAX_STEP}]")

    def _check_end(self, request) -> None:
        from automl.engine.keras_tuner_api import Trial, TrialStatus

        try:
            trial = Trial.from_proto(request.trial)
        except Exception:
            raise _Refused(_CODES.INVALID_ARGUMENT, "unreadable trial") from None
        known = self._known(trial.trial_id)
        if trial.status not in _ENDED:
            raise _Refused(
                _CODES.INVALID_ARGUMENT,
                f"a trial ends COMPLETED, FAILED or INVALID, not {trial.status}",
            )
        if known.status not in (TrialStatus.RUNNING, TrialStatus.COMPLETED):
            raise _Refused(_CODES.FAILED_PRECONDITION, f"trial {known.trial_id} is {known.status}")
        if trial.hyperparameters.values != known.hyperparameters.values:
            raise _Refused(
                _CODES.INVALID_ARGUMENT,
                f"trial {known.trial_id}'s values differ from those the chief gave it",
            )
        objective = self.oracle.objective.name
        if trial.status == "COMPLETED" and not known.metrics.exists(objective):
            raise _Refused(
                _CODES.FAILED_PRECONDITION,
                f"trial {known.trial_id} reported no {objective!r} before it ended",
            )

    def _check_best(self, request) -> None:
        if not 0 <= request.num_trials <= 10_000:
            raise _Refused(_CODES.INVALID_ARGUMENT, "num_trials must be in [0, 10000]")
