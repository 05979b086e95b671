"""The chief trusts only its workers: the token on every call, TLS, the bind address, checked
requests, the oracle's lock released on errors, and 1,000 forged calls against a live chief
that then ends its search normally."""

import os
import socket
import threading
import time

import grpc
import keras_tuner
import numpy as np
import pytest

import automl
from automl.engine import keras_tuner_api as kt
from automl.engine.distributed import ChiefServer, WorkerClient, resolve_role
from automl.engine.oracle import ARCH, StrategyOracle
from automl.engine.rpc_checks import MAX_MESSAGE, safe_trial_id
from automl.engine.security import join_lines
from automl.errors import InputError, SearchError
from automl.search.base import get_strategy
from automl.search.spaces import MorphismSpace

TOKEN = "a-token-for-these-tests-only"
ENV = (
    "KERASTUNER_TUNER_ID",
    "KERASTUNER_ORACLE_IP",
    "KERASTUNER_ORACLE_PORT",
    "AUTOML_TOKEN",
    "AUTOML_TLS_CERT",
    "AUTOML_TLS_KEY",
    "AUTOML_TLS_CA",
)
C = grpc.StatusCode


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_oracle(tmp_path, max_trials=3) -> StrategyOracle:
    oracle = StrategyOracle(
        get_strategy("random"),
        MorphismSpace((8, 8, 1), 10),
        keras_tuner.Objective("val_accuracy", "max"),
        max_trials=max_trials,
        seed=7,
    )
    oracle.set_project_dir(str(tmp_path), "project")
    return oracle


class Quiet:
    verbose = 0

    def write(self, line):
        pass


@pytest.fixture
def served(tmp_path, clean_env):
    """(oracle, its ChiefServer on loopback, the address): a chief that trains nothing."""
    oracle = make_oracle(tmp_path)
    role = resolve_role(chief=f"127.0.0.1:{free_port()}", token=TOKEN)
    server = ChiefServer(oracle, role, Quiet())
    server.start()
    yield oracle, server, role.address
    server.stop()


def call(channel, method: str, token=TOKEN, **fields):
    """The status code of one call (OK or the error's)."""
    return send(
        channel, method, getattr(kt.service_messages(), f"{method}Request")(**fields), token
    )


# ---------------------------------------------------------------------- arguments
def test_a_chief_without_a_token_makes_one_and_a_worker_without_one_is_refused(clean_env):
    chief = resolve_role(chief="127.0.0.1:8470")
    assert chief.token_made and len(chief.token) >= 40 and chief.token not in repr(chief)
    assert resolve_role(chief="127.0.0.1:8470").token != chief.token
    assert (resolve_role(chief=":8470").host, resolve_role(chief=8470).address) == (
        "127.0.0.1",
        "127.0.0.1:8470",
    )  # no host: loopback only
    with pytest.raises(InputError, match="A worker needs the chief's token"):
        resolve_role(worker="10.0.0.5:8470")
    clean_env.setenv("AUTOML_TOKEN", TOKEN)
    worker = resolve_role(worker="10.0.0.5:8470")
    assert (worker.token, worker.token_made) == (TOKEN, False)
    assert resolve_role(worker="10.0.0.5:8470", token="x" * 16).token == "x" * 16
    with pytest.raises(InputError, match="16 to 1024 visible ASCII.*Received: 5 characters"):
        resolve_role(chief="127.0.0.1:1", token="short")
    with pytest.raises(InputError, match="Received: 20 characters"):
        resolve_role(chief="127.0.0.1:1", token="with a space inside!")


def test_a_chief_prints_the_worker_command_with_a_token_it_made_and_never_a_given_one(
    clean_env, tmp_path, caplog
):
    made = resolve_role(chief=":8470")
    lines = "\n".join(join_lines(made))
    assert f"AUTOML_TOKEN={made.token} automl fit ... --worker 127.0.0.1:8470" in lines
    given = "\n".join(join_lines(resolve_role(chief="127.0.0.1:8470", token=TOKEN)))
    assert TOKEN not in given and "this search's token (AUTOML_TOKEN or token=)" in given
    every = "\n".join(join_lines(resolve_role(chief="0.0.0.0:8470", token=TOKEN)))
    assert f"worker='{socket.gethostname()}:8470'" in every
    role = resolve_role(chief=f"127.0.0.1:{free_port()}")
    server = ChiefServer(make_oracle(tmp_path), role, Quiet())  # verbose=0: to the log
    server.start()
    server.stop()
    assert f"AUTOML_TOKEN={role.token}" in caplog.text


@pytest.mark.parametrize("address", ["0.0.0.0:8470", "[::]:8470", "*:8470"])
def test_serving_every_interface_needs_a_given_token(clean_env, address):
    with pytest.raises(InputError, match="serves every network interface, so it needs a token"):
        resolve_role(chief=address)
    clean_env.setenv("AUTOML_TOKEN", TOKEN)
    role = resolve_role(chief=address)
    assert (role.token, role.token_made) == (TOKEN, False)


def test_an_estimator_serving_every_interface_without_a_token_is_refused_before_training(
    clean_env, tmp_path
):
    x, y = np.zeros((8, 8, 8)), np.arange(8) % 2
    clf = automl.ImageClassifier(chief="0.0.0.0:8470", directory=str(tmp_path / "runs"))
    with pytest.raises(InputError, match="every network interface"):
        clf.fit(x, y)
    assert not (tmp_path / "runs").exists()
    assert "token='***'" in repr(automl.ImageClassifier(token=TOKEN))


def test_tls_arguments_are_checked(clean_env, tmp_path):
    pem, other = tmp_path / "c.pem", tmp_path / "notes.txt"
    pem.write_text("-----BEGIN CERTIFICATE-----\n...\n")
    other.write_text("hello")
    chief, worker = "127.0.0.1:1", "127.0.0.1:1"
    with pytest.raises(InputError, match=r"tls\['cert'\] is set, tls\['key'\] is not"):
        resolve_role(chief=chief, tls={"cert": str(pem)})
    with pytest.raises(InputError, match=r"Cannot read tls\['key'\]=.*missing\.key"):
        resolve_role(chief=chief, tls={"cert": str(pem), "key": str(tmp_path / "missing.key")})
    with pytest.raises(InputError, match=r"notes\.txt' is not a PEM file"):
        resolve_role(chief=chief, tls={"cert": str(pem), "key": str(other)})
    with pytest.raises(InputError, match=r"A worker's tls must be a dict \{'ca': 'FILE'\}"):
        resolve_role(worker=worker, token=TOKEN, tls={"cert": str(pem)})
    assert resolve_role(chief=chief, tls={"cert": str(pem), "key": str(pem)}).tls.key == str(pem)
    clean_env.setenv("AUTOML_TLS_KEY", str(pem))
    with pytest.raises(InputError, match="AUTOML_TLS_KEY is set, AUTOML_TLS_CERT is not"):
        resolve_role(chief=chief)
    clean_env.setenv("AUTOML_TLS_CA", str(pem))
    assert resolve_role(worker=worker, token=TOKEN).tls.ca == str(pem)


def test_the_command_passes_its_tls_files_and_refuses_every_interface_without_a_token(
    clean_env, tmp_path, monkeypatch, capsys
):
    import types

    from automl.cli import commands as cli

    data = types.SimpleNamespace(
        name="digits", kind="image", task="classification", x_train=None, y_train=None
    )
    monkeypatch.setattr(cli, "_load", lambda args: data)
    monkeypatch.chdir(tmp_path)
    seen, original = {}, automl.ImageClassifier.fit

    def fit(self, *args, **kwargs):
        seen.update(self.get_params())
        raise InputError("stopped before the search")

    monkeypatch.setattr(automl.ImageClassifier, "fit", fit)
    argv = ["fit", "digits", "--chief", ":8470", "--tls-cert", "c.pem", "--tls-key", "c.key"]
    assert cli.main(argv) == 2
    assert seen["tls"] == {"cert": "c.pem", "key": "c.key"} and seen["token"] is None
    monkeypatch.setattr(automl.ImageClassifier, "fit", original)
    x, y = np.zeros((8, 8, 8)), np.arange(8) % 2
    data.x_train, data.y_train = x, y
    assert cli.main(["fit", "digits", "--chief", "0.0.0.0:8470", "--quiet"]) == 2
    assert "needs a token you choose" in capsys.readouterr().err
    assert not (tmp_path / "automl_runs").exists()


# ---------------------------------------------------------------------- the lock
def test_an_oracle_method_that_raises_releases_the_oracles_lock(tmp_path):
    oracle = make_oracle(tmp_path)
    errors = []

    def unknown():
        try:
            oracle.update_trial("99", {"val_accuracy": 1.0})
        except KeyError as err:
            errors.append(err)

    thread = threading.Thread(target=unknown)
    thread.start()
    thread.join()
    assert errors  # it raised in its own thread; before, the lock stayed held there
    done = []
    other = threading.Thread(target=lambda: done.append(oracle.create_trial("w")))
    other.start()
    other.join(timeout=10)
    assert done and done[0].status == kt.TrialStatus.RUNNING


# ---------------------------------------------------------------------- a served chief
def test_a_client_without_the_token_is_refused_and_the_chief_answers_after_bad_calls(served):
    oracle, server, address = served
    with grpc.insecure_channel(address) as channel:
        assert call(channel, "CreateTrial", token=None, tuner_id="w") == C.UNAUTHENTICATED
        assert call(channel, "CreateTrial", token=TOKEN[:-1] + "X", tuner_id="w") == (
            C.UNAUTHENTICATED
        )
        assert not oracle.trials  # nothing reached the oracle
        # the call that hung the chief forever: an update of an unknown trial
        assert call(channel, "UpdateTrial", trial_id="7", metrics={"val_accuracy": 1.0}) == (
            C.NOT_FOUND
        )
        assert call(channel, "UpdateTrial", trial_id="../../x", metrics={}) == C.INVALID_ARGUMENT
        start = time.time()
        assert call(channel, "CreateTrial", tuner_id="w") == C.OK
        assert time.time() - start < 5
        assert call(channel, "UpdateTrial", trial_id="0", metrics={"loss": 0.0}) == (
            C.INVALID_ARGUMENT
        )
        assert call(channel, "UpdateTrial", trial_id="0", metrics={"val_accuracy": 0.5}) == C.OK
        oracle.populate_space = lambda trial_id: 1 / 0  # a failure inside the oracle's lock
        assert call(channel, "CreateTrial", tuner_id="v") == C.INTERNAL
        del oracle.populate_space
        start = time.time()
        assert call(channel, "CreateTrial", tuner_id="v") == C.OK  # the lock was released
        assert time.time() - start < 5
    assert server.refused == {"token": 2, "request": 3, "error": 1}


def test_a_worker_with_the_wrong_token_stops_with_a_clear_error(served, clean_env):
    oracle, _, address = served
    clean_env.setenv("AUTOML_CHIEF_TIMEOUT", "5")
    client = WorkerClient(oracle, resolve_role(worker=address, token="not-" + TOKEN))
    try:
        with pytest.raises(SearchError, match="refused this worker's token"):
            client.create_trial("w")
    finally:
        client.close()


def test_a_worker_uses_no_trial_id_from_the_chief_that_is_not_a_trial_number(
    served, clean_env, tmp_path
):
    oracle, _, address = served
    assert safe_trial_id("0") and safe_trial_id("0042")
    for bad in ["", "../x", "/etc", "1/2", "0x1", "١", "1" * 17, None, 3]:
        assert not safe_trial_id(bad)
    client = WorkerClient(oracle, resolve_role(worker=address, token=TOKEN))
    try:
        trial = kt.Trial(oracle.get_space(), trial_id="../../escaped", status="FAILED")
        trial.message = "boom"
        with pytest.raises(SearchError, match="not a trial number"):
            client.end_trial(trial)
        with pytest.raises(SearchError, match="not a trial number"):
            client.get_trial("../1")
    finally:
        client.close()
    assert not (tmp_path / "escaped").exists()


def _self_signed(folder):
    """A certificate and key for 127.0.0.1 (and localhost), written as PEM files."""
    import datetime
    import ipaddress

    crypto = pytest.importorskip("cryptography")  # noqa: F841
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "automl chief")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "chief.pem", folder / "chief.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_a_chief_with_tls_answers_only_workers_that_check_its_certificate(clean_env, tmp_path):
    cert, key = _self_signed(tmp_path)
    oracle = make_oracle(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    role = resolve_role(chief=address, token=TOKEN, tls={"cert": cert, "key": key})
    server = ChiefServer(oracle, role, Quiet())
    server.start()
    clean_env.setenv("AUTOML_CHIEF_TIMEOUT", "2")
    try:
        client = WorkerClient(oracle, resolve_role(worker=address, token=TOKEN, tls={"ca": cert}))
        try:
            assert client.create_trial("w").status == kt.TrialStatus.RUNNING
        finally:
            client.close()
        with pytest.raises(SearchError, match="agree on TLS"):  # a plain worker never connects
            WorkerClient(oracle, resolve_role(worker=address, token=TOKEN))
    finally:
        server.stop()


# ---------------------------------------------------------------------- fuzzing a live chief
def forged_calls(n: int, known, escape: str, seed: int = 0):
    """`n` forged calls: (method, request message or raw bytes, token, the codes that
    refuse it). `known` is the trial the worker runs; `escape` a path outside the project."""
    rng = np.random.default_rng(seed)
    messages = kt.service_messages()
    bad_ids = ["", "../x", "0/../../x", escape, "/etc/passwd", "1" * 17, "0x1", "\u0663", "0 "]
    unknown_ids = ["7", "00", "12", "999999"]
    wrong_tokens = [None, "", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "Bearer", "x" * 5000]
    metrics = [
        {"val_accuracy": 1.0, "loss": 0.0},
        {"accuracy": 1.0},
        {"val_accuracy": float("nan")},
        {"val_accuracy": float("inf")},
    ]
    invalid = (C.INVALID_ARGUMENT,)
    huge = messages.CreateTrialRequest(tuner_id="w" * (MAX_MESSAGE + 1))

    def tampered():
        trial = kt.Trial.from_proto(known.to_proto())
        trial.status = "COMPLETED"
        values, what = trial.hyperparameters.values, int(rng.integers(3))
        if what == 0:  # another architecture
            values[ARCH] = values[ARCH] + " "
        elif what == 1:
            values["parent_trial"] = "../0"
        else:
            values["injected"] = 1
        return trial.to_proto()

    def forged_request():
        kind = int(rng.integers(10))
        if kind == 0:  # an unknown trial (the call that hung the chief)
            ids = str(rng.choice(unknown_ids))
            message = messages.UpdateTrialRequest(trial_id=ids, metrics={"val_accuracy": 1.0})
            return "UpdateTrial", message, (C.NOT_FOUND,)
        if kind == 1:
            trial_id = str(rng.choice(bad_ids))
            return "GetTrial", messages.GetTrialRequest(trial_id=trial_id), invalid
        if kind == 2:  # forged metrics
            forged = metrics[rng.integers(len(metrics))]
            return "UpdateTrial", messages.UpdateTrialRequest(trial_id="0", metrics=forged), invalid
        if kind == 3:
            step = int(rng.choice([-1, -(2**40), 2**40]))
            message = messages.UpdateTrialRequest(
                trial_id="0", metrics={"val_accuracy": 0.5}, step=step
            )
            return "UpdateTrial", message, invalid
        if kind == 4:
            return "EndTrial", messages.EndTrialRequest(trial=tampered()), invalid
        if kind == 5:
            proto = known.to_proto()
            proto.status = int(rng.choice([1, 2, 4, 99]))  # RUNNING, IDLE, STOPPED, no such
            return "EndTrial", messages.EndTrialRequest(trial=proto), invalid
        if kind == 6:
            proto = known.to_proto()
            proto.trial_id = str(rng.choice(bad_ids + unknown_ids))
            codes = (C.INVALID_ARGUMENT, C.NOT_FOUND)
            return "EndTrial", messages.EndTrialRequest(trial=proto), codes
        if kind == 7:
            tuner_id = str(rng.choice(["", "a b", "../w", "w\n", "w" * 201]))
            return "CreateTrial", messages.CreateTrialRequest(tuner_id=tuner_id), invalid
        if kind == 8:
            return "GetBestTrials", messages.GetBestTrialsRequest(num_trials=-1), invalid
        hps = kt.HyperParameters()
        hps.Fixed("injected", 1)
        return "UpdateSpace", messages.UpdateSpaceRequest(hyperparameters=hps.to_proto()), invalid

    methods = ["GetSpace", "CreateTrial", "UpdateTrial", "EndTrial", "GetTrial"]
    for i in range(n):
        draw = 0.351 if i == 0 else rng.random()  # (the first: oversized)
        if draw < 0.3:  # no token or a wrong one: refused before the request is read
            method, message, _ = forged_request()
            if rng.random() < 0.3:
                method, message = str(rng.choice(methods)), b"\x0f" + rng.bytes(20)
            token = wrong_tokens[rng.integers(len(wrong_tokens))]
            yield method, message, token, (C.UNAUTHENTICATED,)
        elif draw < 0.35:  # garbage bytes with the token (0x0f: a tag no message has)
            garbage = b"\x0f" + rng.bytes(int(rng.integers(0, 64)))
            yield str(rng.choice(methods[1:])), garbage, TOKEN, (C.INTERNAL,)
        elif draw < 0.355:  # over the size limit (gRPC answers those in about 0.1 s)
            yield "CreateTrial", huge, TOKEN, (C.RESOURCE_EXHAUSTED,)
        else:  # with the token, forged content
            method, message, codes = forged_request()
            yield method, message, TOKEN, codes


def send(channel, method: str, message, token) -> "grpc.StatusCode":
    """Send one call (a message, or raw bytes); its status code."""
    metadata = None if token is None else (("authorization", f"Bearer {token}"),)
    if isinstance(message, bytes):
        stub = channel.unary_unary(f"/keras_tuner.Oracle/{method}")
    else:
        stub = getattr(kt.oracle_stub(channel), method)
    try:
        stub(message, metadata=metadata, timeout=10)
    except grpc.RpcError as err:
        return err.code()
    return C.OK


def test_a_live_chief_refuses_1000_forged_calls_and_ends_its_search(clean_env, tmp_path, capsys):
    """A chief (a thread here) serves a 1-trial search; this thread is its worker and, once
    the trial runs, sends 1,000 forged calls (from a callback of the trial's fit): each is
    refused, the chief counts them, and it ends its search as usual, in time. About 6 s,
    the calls 2 of them."""
    import keras
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = x[:200].reshape(-1, 8, 8), y[:200]
    settings = {
        "strategy": "random",
        "max_trials": 1,
        "epochs": 1,
        "ensemble_size": 1,
        "max_model_size": 20_000,
        "project_name": "p",
        "time_limit": 120,
        "directory": str(tmp_path / "runs"),
        "token": TOKEN,
    }
    escape, address = str(tmp_path / "escaped"), f"127.0.0.1:{free_port()}"
    chief = automl.ImageClassifier(chief=address, verbose=1, **settings)
    ended, n_calls = [], 1000

    def serve():
        start = time.time()
        try:
            chief.fit(x, y)
        except Exception as err:  # (shown by the assertion below)
            ended.append(err)
        ended.append(time.time() - start)

    outcomes = []

    class Fuzz(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if outcomes:
                return
            with grpc.insecure_channel(address) as channel:
                reply = kt.oracle_stub(channel).GetTrial(
                    kt.service_messages().GetTrialRequest(trial_id="0"),
                    metadata=(("authorization", f"Bearer {TOKEN}"),),
                )
                known = kt.Trial.from_proto(reply.trial)
                start = time.time()
                for method, message, token, codes in forged_calls(n_calls, known, escape):
                    outcomes.append((method, token, send(channel, method, message, token), codes))
                outcomes.append(time.time() - start)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    clean_env.setenv("AUTOML_CHIEF_TIMEOUT", "120")
    worker = automl.ImageClassifier(worker=address, verbose=0, **settings)
    worker.fit(x, y, callbacks=[Fuzz()])
    thread.join(timeout=300)
    assert len(ended) == 1 and ended[0] < settings["time_limit"], ended
    assert hasattr(chief, "model_") and worker.trials_run_ == 1  # the search ended as usual
    outcomes.pop()  # (the seconds the calls took)
    wrong = [(m, t and t[:30], code) for m, t, code, codes in outcomes if code not in codes]
    assert not wrong, wrong[:5]
    assert len(outcomes) == n_calls
    counted = sum(code in COUNTED for _, _, code, _ in outcomes)
    assert f"chief: refused {counted} call(s)" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["runs"] and os.listdir(tmp_path / "runs") == ["p"]
    names = [name for _, dirs, files in os.walk(tmp_path) for name in dirs + files]
    assert not any("escape" in name for name in names)


COUNTED = (C.UNAUTHENTICATED, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION)
