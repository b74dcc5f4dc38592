"""Joining the Ray cluster ``--ray ADDRESS`` names: quickly, or one line that names the address typed and the cause.

Left to itself, Ray retries a wrong address for minutes (every try waits for a
gRPC channel, a pubsub channel and the cluster id, and prints a warning per
wait), and reports a cluster that wants a token it was not given as
unreachable, under the address it rewrote (``127.0.0.1`` becomes the
machine's own IP). So before and around ``ray.init``:

* the address typed is probed with a plain TCP connect, a few seconds at
  most: where nothing listens, the command stops at once, before Ray is even
  asked (and, called early, before anything is written);
* what answers there is asked to speak HTTP/2, as every gRPC server (a Ray
  head's GCS, a Ray Client server) does at once: a server that answers
  otherwise (the dashboard's HTTP port typed by mistake, Redis, SSH) or
  closes the connection is named as no Ray head in well under a second; a
  server that says nothing is left to Ray (a head too busy to answer yet);
* Ray's own connect window is bounded (:data:`CONNECT_WINDOW`: two tries of a
  few seconds each) unless those settings are in the environment already, so
  a port where a silent server listens also fails in seconds;
* what Ray prints to stderr while it connects is kept out of the terminal and
  logged at debug level (``xl -v`` shows it);
* a failure is told by its cause: token authentication (with how to fix it,
  docs/scale.md) or no Ray cluster at the address typed.

``auto`` keeps Ray's own resolution (``RAY_ADDRESS``, else the cluster this
machine joined with ``ray start``); messages name ``auto`` and what it
resolved to.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from xlingual.errors import ConfigError

logger = logging.getLogger(__name__)

AUTO = "auto"

PROBE_SECONDS = 4.0
"""How long the TCP probe keeps trying an address that refuses (a head still starting gets this long)."""

CONNECT_WINDOW = {
    "RAY_gcs_server_port_wait_time_s": "2",  # tries (about one a second) before Ray gives up; its default is 20
    "RAY_gcs_rpc_server_connect_timeout_s": "2",  # per try, for the GCS channel and again for the pubsub channel; default 5
    "RAY_py_gcs_connect_timeout_s": "3",  # per try, for the cluster id once connected; default 30
}
"""Ray's connect settings while joining a cluster; a value already in the environment is kept (a slow network can raise them)."""

ADDRESS = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+)):(?P<port>[0-9]{1,5})")
"""``HOST:PORT`` (a host name or IPv4 address, or an IPv6 address in brackets), without the ``ray://`` of a Ray Client address."""

AUTH_MARKERS = ("AuthenticationError", "InvalidAuthToken", "Unauthenticated")
"""How Ray's failure names a refused or missing token: it wraps Ray's ``AuthenticationError`` in a ``ConnectionError``."""

START_HINT = "start one with 'ray start --head' or check the address (the head's GCS port, 6379 unless 'ray start --port' said otherwise)"


@dataclass(frozen=True)
class ClusterAddress:
    """An address as typed, and the host and port it names (for ``auto``, where Ray's resolution led; unknown: None)."""

    typed: str
    host: str | None = None
    port: int | None = None

    @property
    def named(self) -> str:
        """How messages name it: as typed, and for ``auto`` also what it resolved to."""
        if self.typed == AUTO and self.host is not None:
            return f"{AUTO} ({_join(self.host, self.port)})"
        return self.typed


def _join(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(typed: str) -> ClusterAddress:
    """``HOST:PORT`` (``ray://HOST:PORT`` for Ray Client, ``[IPv6]:PORT``); anything else is one line naming the option."""
    rest = typed[len("ray://"):] if typed.startswith("ray://") else typed
    match = ADDRESS.fullmatch(rest)
    port = int(match["port"]) if match else -1
    if not match or not 0 < port < 65536:
        raise ConfigError(f"--ray {typed}: not a cluster address; give HOST:PORT (e.g. 10.0.0.5:6379, what 'ray start --head' prints), "
                          "'auto' (the cluster this machine joined) or nothing (a runtime on this machine)")
    host = match["name"] or match["ipv6"]
    return ClusterAddress(typed, host, port)


def resolve(typed: str) -> ClusterAddress:
    """The address ``--ray`` names: parsed, or for ``auto`` where Ray would go (unknown where Ray's resolver is not there to ask)."""
    if typed != AUTO:
        return parse_address(typed)
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # another Ray version: let ray.init resolve it
        return ClusterAddress(typed)
    try:
        found = canonicalize_bootstrap_address(AUTO)
    except ConnectionError:
        raise ConfigError(f"--ray {AUTO}: no Ray cluster found for this machine (RAY_ADDRESS is not set and no 'ray start' cluster is "
                          "running here); start one with 'ray start --head', or give its address") from None
    except Exception as err:  # noqa: BLE001 - Ray's resolver failing for any other reason: ray.init will say why
        logger.debug("resolving --ray auto: %s", err)
        return ClusterAddress(typed)
    if not found:
        return ClusterAddress(typed)
    resolved = parse_address(found)
    return ClusterAddress(typed, resolved.host, resolved.port)


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""A client's HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113 §3.4): a gRPC server answers with its own SETTINGS frame."""

SETTINGS_FRAME_TYPE = 4

ANSWER_SECONDS = 2.0
"""How long a server that accepted the connection gets to answer the preface before Ray is left to decide."""


@dataclass(frozen=True)
class Answer:
    """What a server said to the HTTP/2 preface: whether it speaks HTTP/2, and its first bytes otherwise."""

    http2: bool | None
    """True: a SETTINGS frame came back; False: something else did, or the connection was closed; None: no answer in time."""
    said: bytes = b""


def ask_http2(host: str, port: int, seconds: float | None = None) -> Answer:
    """Send the HTTP/2 preface to ``host:port`` and read the first frame header the server sends back (waiting :data:`ANSWER_SECONDS`)."""
    seconds = ANSWER_SECONDS if seconds is None else seconds
    if os.environ.get("RAY_USE_TLS", "").lower() in ("1", "true"):  # a TLS cluster answers TLS first: nothing to learn here
        return Answer(None)
    try:
        with socket.create_connection((host, port), timeout=seconds) as connection:
            connection.sendall(HTTP2_PREFACE)
            received = b""
            deadline = time.monotonic() + seconds
            while len(received) < 9:
                connection.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = connection.recv(9 - len(received))
                if not chunk:
                    return Answer(False, received)
                received += chunk
            if received[3] == SETTINGS_FRAME_TYPE:
                return Answer(True, received)
            return Answer(False, received + _rest_of_line(connection))
    except TimeoutError:
        return Answer(None)
    except (ConnectionResetError, BrokenPipeError):
        return Answer(False)
    except OSError:  # refused or unreachable since the probe: Ray will say so
        return Answer(None)


def _rest_of_line(connection: socket.socket, limit: int = 120) -> bytes:
    """What else the server sent at once, up to its first line's end: enough to name what answered."""
    said = b""
    connection.settimeout(0.2)
    try:
        while len(said) < limit and b"\n" not in said:
            chunk = connection.recv(limit - len(said))
            if not chunk:
                break
            said += chunk
    except OSError:
        pass
    return said


def _not_grpc(address: ClusterAddress, answer: Answer) -> ConfigError:
    if not answer.said:
        what = "it closed the connection"
    else:
        first = answer.said.split(b"\r")[0].split(b"\n")[0].decode("ascii", errors="replace")
        printable = "".join(c if c.isprintable() else "?" for c in first)
        what = f"it answered {printable!r}" + (", an HTTP server (a dashboard's port?)" if first.startswith(("HTTP/", "<")) else "")
    return ConfigError(f"--ray {address.named}: something listens at the address typed, but it does not speak gRPC as a Ray head does "
                       f"({what}); {START_HINT}")


def probe(address: ClusterAddress, seconds: float | None = None) -> None:
    """Fail unless something accepts a TCP connection at ``address`` (trying for at most ``seconds``, default :data:`PROBE_SECONDS`) and may be gRPC."""
    if address.host is None or address.port is None:
        return
    seconds = PROBE_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((address.host, address.port), timeout=max(0.5, min(3.0, left))):
                pass
            answer = ask_http2(address.host, address.port)
            if answer.http2 is False:
                raise _not_grpc(address, answer)
            return
        except socket.gaierror as err:
            reason = f"unknown host {address.host!r}: {err.strerror or err}"
            break
        except ConnectionRefusedError:
            reason = "connection refused"
        except TimeoutError:
            reason = f"no answer within {seconds:g} s"
        except OSError as err:
            reason = err.strerror or str(err)
        if time.monotonic() + 0.5 >= deadline:
            break
        time.sleep(0.5)
    raise ConfigError(f"--ray {address.named}: no Ray cluster reachable at the address typed ({reason}); {START_HINT}")


def is_auth_failure(err: BaseException) -> bool:
    """Whether Ray's connect failed on token authentication: its ``AuthenticationError``, itself or anywhere in the chain."""
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if type(link).__name__ == "AuthenticationError" or any(marker in str(link) for marker in AUTH_MARKERS):
            return True
        link = link.__cause__ or link.__context__
    return False


def auth_message(address: ClusterAddress) -> str:
    """What to do when the cluster wants a token: the mode to export where it is not set, else the token to fix."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        fix = "export RAY_AUTH_MODE=token (and the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN)"
    else:
        fix = "RAY_AUTH_MODE=token is set, but the token is missing or not the cluster's: copy it from the head's ~/.ray/auth_token to this machine's, or set RAY_AUTH_TOKEN"
    return f"--ray {address.named}: the cluster requires token authentication: {fix}; see docs/scale.md"


def failure(address: ClusterAddress, err: BaseException) -> ConfigError:
    """The one-line error of a failed ``ray.init`` at ``address``."""
    if is_auth_failure(err):
        return ConfigError(auth_message(address))
    cause = " ".join(str(err).split())[:200]
    return ConfigError(f"--ray {address.named}: something listens at the address typed, but no Ray cluster answered there (Ray: {cause}); {START_HINT}")


@contextmanager
def bounded_connect_window(ray: Any) -> Iterator[None]:
    """Ray's connect settings of :data:`CONNECT_WINDOW` for the block (those the environment does not set).

    Ray caches its settings when imported, so they are read again (as Ray's
    own token set-up does) on the way in, and on the way out when the connect
    failed. A driver that joined keeps them: they bound only the waits for a
    GCS connection, and its reconnects after a head restart have a window of
    their own (``gcs_rpc_server_reconnect_timeout_s``), left as it is.
    """
    added = [name for name in CONNECT_WINDOW if name not in os.environ]
    os.environ.update({name: CONNECT_WINDOW[name] for name in added})
    _reread_ray_settings()
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
        if added and not ray.is_initialized():
            _reread_ray_settings()


def _reread_ray_settings() -> None:
    try:
        from ray._raylet import Config

        Config.initialize("")
    except Exception as err:  # noqa: BLE001 - another Ray version: its own defaults apply
        logger.debug("Ray settings not re-read: %s", err)


@contextmanager
def stderr_to_debug_log() -> Iterator[None]:
    """Everything written to the process's stderr (file descriptor 2, where Ray's C++ core writes) goes to the debug log instead."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2: nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except ValueError:
                pass
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines = sink.read().decode("utf-8", errors="replace").splitlines()
            if lines:
                logger.debug("Ray, while connecting:\n%s", "\n".join(f"    {line}" for line in lines))


def join_cluster(ray: Any, typed: str, **options: Any) -> None:
    """``ray.init(address=typed, **options)``, fast and with one line on failure; see the module docstring."""
    address = resolve(typed)
    probe(address)
    try:
        with bounded_connect_window(ray), stderr_to_debug_log():
            ray.init(address=typed, **options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise failure(address, err) from None
    except Exception as err:
        if is_auth_failure(err):  # Ray's AuthenticationError itself (token mode on, no token here)
            raise ConfigError(auth_message(address)) from None
        raise
