"""Who may talk to a chief: the search's token, optional TLS, and where a chief listens.

These are the argument checks, run when `fit` starts (before any data is read); the gRPC
side (the chief's interceptor and request checks, the worker's credentials) is in
`automl.engine.rpc_checks`.

- Every call to a chief carries the search's token. It comes from the estimator's
  `token=` or the environment variable `AUTOML_TOKEN` (on the chief and on every
  worker). A chief given none makes one (`secrets.token_urlsafe`) and prints the
  worker command that carries it, as Jupyter prints its URL; a worker given none is
  refused, since no chief would answer it.
- A chief address without a host ("8470" or ":8470") serves loopback (127.0.0.1)
  only. A chief that serves every interface (0.0.0.0, ::) needs a token that was
  given to it, never a made one, and is refused otherwise.
- TLS is optional: the chief's certificate and key (`tls={"cert": FILE, "key": FILE}`,
  or `AUTOML_TLS_CERT` and `AUTOML_TLS_KEY`) make it serve TLS only; a worker given
  the certificate that signed the chief's (`tls={"ca": FILE}`, or `AUTOML_TLS_CA`; for
  a self-signed certificate, the certificate itself) checks the chief with it and
  sends the token encrypted. Without TLS the token travels in clear text.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
from dataclasses import dataclass

from automl.errors import InputError

TOKEN_ENV = "AUTOML_TOKEN"
TLS_ENV = {"cert": "AUTOML_TLS_CERT", "key": "AUTOML_TLS_KEY", "ca": "AUTOML_TLS_CA"}
LOOPBACK = "127.0.0.1"  # where a chief address without a host listens
_TOKEN = re.compile(r"[\x21-\x7e]{16,1024}")  # visible ASCII: what a gRPC header carries
_MAKE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True)
class Tls:
    """The TLS files of a chief (`cert`, `key`) or a worker (`ca`), checked readable."""

    cert: str = ""
    key: str = ""
    ca: str = ""


def is_wildcard(host: str) -> bool:
    """Whether `host` means every interface of the machine (0.0.0.0, ::, "*")."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return host in ("", "*")


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.0/8, ::1, localhost)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def resolve_token(value, kind: str, host: str) -> tuple[str, bool]:
    """(the token, whether it was made here) for a "chief" or "worker" at `host`.

    Raises:
        InputError: a token that is not 16 to 1024 visible ASCII characters; a worker
            without one; a chief serving every interface without a given one.
    """
    source = "token" if value is not None else TOKEN_ENV
    given = value if value is not None else (os.environ.get(TOKEN_ENV) or None)
    if given is not None:
        if not isinstance(given, str) or not _TOKEN.fullmatch(given):
            what = f"{len(given)} characters" if isinstance(given, str) else type(given).__name__
            raise InputError(
                f"{source} must be 16 to 1024 visible ASCII characters without spaces (make "
                f"one with {_MAKE}). Received: {what}."
            )
        return given, False
    if kind == "worker":
        raise InputError(
            "A worker needs the chief's token: set AUTOML_TOKEN (or pass token=) to the token "
            "the chief printed when it started, or the one it was given."
        )
    if is_wildcard(host):
        raise InputError(
            f"A chief on {host} serves every network interface, so it needs a token you "
            f"choose and give to each worker: set AUTOML_TOKEN (or pass token=) on the chief "
            f"and on the workers, for example to the output of {_MAKE}. To serve this "
            f"machine only, give no host (chief=':PORT' serves {LOOPBACK})."
        )
    return secrets.token_urlsafe(32), True


def _pem(path, source: str) -> str:
    """`path`, checked to be a readable PEM file."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{source} must be the path of a PEM file. Received: {path!r}.")
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as err:
        raise InputError(f"Cannot read {source}={path!r}: {err.strerror or err}.") from None
    if b"-----BEGIN " not in head:
        raise InputError(f"{source}={path!r} is not a PEM file (no '-----BEGIN' line).")
    return path


def resolve_tls(value, kind: str) -> Tls | None:
    """A chief's or worker's TLS files, from `tls=` or the environment; None: no TLS.

    Raises:
        InputError: `tls` is not a dict of "cert", "key" (chief) or "ca" (worker); a
            chief with a certificate but no key or the other way round; an unreadable
            or non-PEM file (named).
    """
    if kind not in ("chief", "worker"):
        return None
    if value is None:
        files = {k: os.environ.get(name, "") for k, name in TLS_ENV.items()}
        names = dict(TLS_ENV)
    else:
        wanted = ("cert", "key") if kind == "chief" else ("ca",)
        if not isinstance(value, dict) or not value or set(value) - set(wanted):
            shown = {k: "FILE" for k in wanted}
            raise InputError(
                f"A {kind}'s tls must be a dict {shown} (PEM files). Received: tls={value!r}."
            )
        files = {k: value.get(k) or "" for k in TLS_ENV}
        names = {k: f"tls[{k!r}]" for k in TLS_ENV}
    if kind == "worker":
        return Tls(ca=_pem(files["ca"], names["ca"])) if files["ca"] else None
    cert, key = files["cert"], files["key"]
    if not cert and not key:
        return None
    if not (cert and key):
        have, missing = ("cert", "key") if cert else ("key", "cert")
        raise InputError(
            f"TLS on the chief needs its certificate and its key: {names[have]} is set, "
            f"{names[missing]} is not."
        )
    return Tls(cert=_pem(cert, names["cert"]), key=_pem(key, names["key"]))


def join_lines(role) -> list[str]:
    """What a chief prints when it serves: where, and how a worker joins; with a token it
    made, the token and the worker command that carries it (as Jupyter prints its URL)."""
    host = socket.gethostname() if is_wildcard(role.host) else role.host
    joins = f"{host}:{role.port}"
    lines = [
        f"chief: serving the search on {role.address}{' over TLS' if role.tls else ''}; "
        f"start each worker with the same data, options and folder, and worker={joins!r}"
        + ("" if role.token_made else " and this search's token (AUTOML_TOKEN or token=)")
        + (" and the chief's certificate (AUTOML_TLS_CA or tls={'ca': FILE})" if role.tls else "")
    ]
    if role.token_made:
        lines += [
            f"chief: this search's token (made now; give it to each worker): {role.token}",
            f"chief:     AUTOML_TOKEN={role.token} automl fit ... --worker {joins}",
        ]
    return lines
