"""Reaching the cluster ``--ray ADDRESS`` names: a wrong address or a refused token is one line naming the address typed, before anything is written.

Most of it runs on the in-process fake of ``tests/fake_ray.py`` (its ``init``
replaced by what the real Ray does in each case, as seen against a real
``ray start --head`` cluster with Ray 2.60: see docs/scale.md) and real TCP
sockets on this machine, so no cluster is needed and nothing waits on Ray's
own retries.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fake_ray import FakeRay
from hypothesis import given
from hypothesis import strategies as st
from ray_support import needs_ray
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.errors import ConfigError
from xlingual.scale import connect
from xlingual.scale.connect import CONNECT_WINDOW, join_cluster, parse_address
from xlingual.testing.synthetic import write_images

runner = CliRunner()

REFUSED = "127.0.0.1:1"  # a privileged port where nothing listens
# what Ray 2.60 raises for a cluster with token authentication joined without RAY_AUTH_MODE=token (its cause quoted in part)
RAY_AUTH_CAUSE = ("Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n"
                  "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication token is missing or incorrect. "
                  "Note: RAY_AUTH_MODE is currently 'disabled' (not 'token').")
REWRITTEN = "192.0.2.2"  # Ray names the machine's own IP where 127.0.0.1 was typed


@pytest.fixture()
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> FakeRay:
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(connect, "PROBE_SECONDS", 0.2)  # a refused address is not retried for long in tests
    monkeypatch.setattr(connect, "ANSWER_SECONDS", 0.3)  # nor is a silent server waited for
    return fake


@pytest.fixture()
def listening() -> Iterator[str]:
    """HOST:PORT of a socket on this machine that accepts connections (and speaks no Ray)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


@contextmanager
def answering(reply: bytes | None) -> Iterator[str]:
    """HOST:PORT of a server on this machine that reads the client's first bytes, then sends ``reply`` (None: closes at once)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with client:
                if reply is not None:
                    client.settimeout(1)
                    try:
                        client.recv(64)
                        client.sendall(reply)
                        time.sleep(0.2)
                    except OSError:
                        pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        server.close()


# the first frame a Ray 2.60 head's GCS sent this client after the HTTP/2 preface (a SETTINGS frame, type 4), as recorded
GCS_SETTINGS = bytes.fromhex("000018040000000000000400400000000500400000000600004000fe0300000001")


def _never_called(**_: object) -> None:
    raise AssertionError("ray.init was called for an address nothing listens at")


def _auth_refused(**_: object) -> None:
    try:
        raise RuntimeError(RAY_AUTH_CAUSE)
    except RuntimeError as cause:
        raise ConnectionError(f"Failed to connect to Ray cluster at {REWRITTEN}:6379") from cause


def _command(kind: str, data: Path, output: Path, address: str) -> list[str]:
    if kind == "translate":
        return ["translate", "--src", "en", "--tgt", "zh", "--data-dir", str(data), "--translator", "xlingual.translate.glossary:sample_en_zh",
                "--output", str(output), "--ray", address]
    if kind == "experiment":
        return ["experiment", "--direction", "en-zh", "--models", "acn", "--configs", "tgt_only", "--seeds", "1", "--data-dir", str(data),
                "--output", str(output), "--ray", address]
    images = write_images(output.parent.parent / "images", ["a.jpg", "b.jpg"])
    return ["features", "extract", "--images", str(images), "--out", str(output), "--weights", "random", "--device", "cpu", "--ray", address]


def _one_line_naming(result, address: str) -> str:
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"--ray {address}:" in line
    return line


@pytest.mark.parametrize("kind", ["translate", "features", "experiment"])
def test_an_address_nothing_listens_at_is_refused_before_ray_and_before_any_folder(kind, fake_ray, sample_data_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(fake_ray, "init", _never_called)
    output = tmp_path / "out" / "run"
    line = _one_line_naming(runner.invoke(app, _command(kind, sample_data_dir, output, REFUSED)), REFUSED)
    assert "no Ray cluster reachable at the address typed (connection refused)" in line and "ray start --head" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["translate", "features", "experiment"])
def test_a_cluster_wanting_a_token_is_named_as_such_with_the_fix_before_any_folder(kind, fake_ray, listening, sample_data_dir, tmp_path,
                                                                                   monkeypatch) -> None:
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setattr(fake_ray, "init", _auth_refused)
    output = tmp_path / "out" / "run"
    line = _one_line_naming(runner.invoke(app, _command(kind, sample_data_dir, output, listening)), listening)
    assert "requires token authentication" in line and "export RAY_AUTH_MODE=token" in line and "docs/scale.md" in line
    assert REWRITTEN not in line and "no Ray cluster" not in line
    assert not (tmp_path / "out").exists()


def test_with_token_mode_on_the_fix_is_the_token_itself(fake_ray, listening, monkeypatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setattr(fake_ray, "init", _auth_refused)
    with pytest.raises(ConfigError, match="requires token authentication: RAY_AUTH_MODE=token is set, but the token is missing or not the cluster's"):
        join_cluster(fake_ray, listening)


@needs_ray
def test_rays_own_authentication_error_is_recognised(listening, monkeypatch) -> None:
    """Token mode on and no token here: Ray raises its AuthenticationError itself, before connecting."""
    import ray
    from ray.exceptions import AuthenticationError

    def no_token(**_: object) -> None:
        raise AuthenticationError("Token authentication is enabled but no authentication token was found")

    monkeypatch.setattr(ray, "init", no_token)
    with pytest.raises(ConfigError, match=f"--ray {listening}: the cluster requires token authentication"):
        join_cluster(ray, listening)


def test_something_else_listening_fails_naming_the_address_typed(fake_ray, listening, monkeypatch) -> None:
    def not_a_head(**_: object) -> None:
        raise ConnectionError(f"Failed to connect to Ray cluster at {REWRITTEN}:{listening.split(':')[1]}")

    monkeypatch.setattr(fake_ray, "init", not_a_head)
    with pytest.raises(ConfigError) as caught:
        join_cluster(fake_ray, listening)
    assert str(caught.value).startswith(f"--ray {listening}: something listens at the address typed, but no Ray cluster answered")


def test_rays_connect_window_is_bounded_only_where_the_environment_leaves_it(fake_ray, listening, monkeypatch) -> None:
    monkeypatch.setenv("RAY_py_gcs_connect_timeout_s", "60")  # the user's own setting wins
    for name in CONNECT_WINDOW:
        if name != "RAY_py_gcs_connect_timeout_s":
            monkeypatch.delenv(name, raising=False)
    seen: dict[str, str | None] = {}
    real_init = fake_ray.init

    def record(**options: object) -> None:
        seen.update({name: os.environ.get(name) for name in CONNECT_WINDOW})
        real_init(**options)

    monkeypatch.setattr(fake_ray, "init", record)
    join_cluster(fake_ray, listening)
    assert seen == {**CONNECT_WINDOW, "RAY_py_gcs_connect_timeout_s": "60"}
    assert [name for name in CONNECT_WINDOW if name in os.environ] == ["RAY_py_gcs_connect_timeout_s"]


def test_what_ray_prints_while_connecting_goes_to_the_debug_log(fake_ray, listening, monkeypatch, capfd, caplog) -> None:
    def noisy(**_: object) -> None:
        os.write(2, b"[W rpc_client.h:153] Failed to connect to GCS within 5 seconds.\n")
        raise ConnectionError("Failed to connect to Ray cluster")

    monkeypatch.setattr(fake_ray, "init", noisy)
    with caplog.at_level(logging.DEBUG, logger="xlingual.scale.connect"), pytest.raises(ConfigError):
        join_cluster(fake_ray, listening)
    assert not [line for line in capfd.readouterr().err.splitlines() if line.startswith("[W")]  # at most inside a debug record
    assert "    [W rpc_client.h:153] Failed to connect" in caplog.text


@needs_ray
def test_auto_names_what_it_resolved_to(monkeypatch) -> None:
    """``auto`` keeps Ray's resolution (here RAY_ADDRESS) and the message names both."""
    import ray

    monkeypatch.setenv("RAY_ADDRESS", REFUSED)
    monkeypatch.setattr(connect, "PROBE_SECONDS", 0.2)
    monkeypatch.setattr(ray, "init", _never_called)
    with pytest.raises(ConfigError) as caught:
        join_cluster(ray, "auto")
    assert str(caught.value).startswith("--ray auto (") and ":1): no Ray cluster reachable" in str(caught.value)


@given(st.text(alphabet="ray:/[]0123456789.abcdefx-", max_size=24))
def test_an_address_is_host_and_port_or_one_line_naming_the_option(typed: str) -> None:
    try:
        address = parse_address(typed)
    except ConfigError as err:
        assert str(err).startswith(f"--ray {typed}: not a cluster address") and "\n" not in str(err)
        return
    assert address.typed == typed and address.host and "[" not in address.host and 0 < address.port < 65536
    assert int(typed.rpartition(":")[2]) == address.port


@pytest.mark.parametrize("reply, said", [
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "it answered 'HTTP/1.1 400 Bad Request', an HTTP server (a dashboard's port?)"),
    (b"-ERR unknown command 'PRI'\r\n", "it answered \"-ERR unknown command 'PRI'\""),
    (None, "it closed the connection"),
], ids=["http1", "redis", "closes"])
def test_a_server_that_is_no_grpc_is_named_before_ray_is_asked(fake_ray, monkeypatch, reply, said) -> None:
    monkeypatch.setattr(fake_ray, "init", _never_called)
    with answering(reply) as address, pytest.raises(ConfigError) as caught:
        join_cluster(fake_ray, address)  # refused before ray.init (_never_called), so Ray's connect window is never waited for
    assert str(caught.value) == (f"--ray {address}: something listens at the address typed, but it does not speak gRPC as a Ray head does "
                                 f"({said}); {connect.START_HINT}")


@pytest.mark.parametrize("reply", [GCS_SETTINGS, b""], ids=["grpc", "silent"])
def test_a_grpc_server_or_a_silent_one_is_left_to_ray(fake_ray, monkeypatch, reply) -> None:
    called: list[dict] = []
    monkeypatch.setattr(fake_ray, "init", lambda **options: called.append(options))
    with answering(reply) as address:
        join_cluster(fake_ray, address)
    assert called and called[0]["address"] == address


def test_a_tls_cluster_is_not_asked_for_http2(monkeypatch) -> None:
    monkeypatch.setenv("RAY_USE_TLS", "1")
    with answering(b"HTTP/1.1 400 Bad Request\r\n\r\n") as address:
        host, port = address.split(":")
        assert connect.ask_http2(host, int(port), 0.5).http2 is None
    monkeypatch.delenv("RAY_USE_TLS")
    with answering(b"HTTP/1.1 400 Bad Request\r\n\r\n") as address:
        host, port = address.split(":")
        answer = connect.ask_http2(host, int(port), 0.5)
    assert answer.http2 is False and answer.said.startswith(b"HTTP/1.1 400 Bad Request\r\n")
