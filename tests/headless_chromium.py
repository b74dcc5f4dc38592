"""Open a local HTML file in headless Chromium and report what the page did: console messages, requests, dialogs.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON commands on file descriptor 3, answers and events on 4, each message ended by a
NUL byte), so the tests need only the browser (Debian's ``chromium``; ``make browser``
installs it), no driver package. A test that finds no browser is skipped with the reason.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
# the closed network of a test machine: no background connections, no component or sync downloads
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--remote-debugging-pipe")


def require_chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("no headless Chromium on this machine (make browser, or apt-get install chromium)")
    return CHROMIUM


@dataclass
class Visit:
    """What one page load showed: its messages (console, uncaught exceptions, the browser's log such as CSP
    refusals), the URLs it requested, the dialogs a script opened, and the value of the expression evaluated after load."""

    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    value: Any = None


class _Pipe:
    def __init__(self, process: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.process, self.write_fd, self.read_fd = process, write_fd, read_fd
        self.buffer = b""
        self.next_id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}, **({"sessionId": session} if session else {})}
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        return self.next_id

    def receive(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("headless Chromium did not answer in time")
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f"headless Chromium exited ({self.process.poll()})")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)


def visit(page: Path, expression: str = "null", timeout: float = 60.0) -> Visit:
    """Load ``page`` (a file) in a fresh headless Chromium, wait for its load event, evaluate ``expression`` there."""
    chromium = require_chromium()
    seen = Visit()
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    # above 2 and apart from 3 and 4, so the child can move them onto 3 and 4 without overwriting one with the other
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]

    def onto_3_and_4() -> None:
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        process = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=onto_3_and_4, close_fds=False)
        for fd in (to_browser_r, from_browser_w, *high):
            os.close(fd)
        pipe = _Pipe(process, to_browser_w, from_browser_r)
        deadline = time.monotonic() + timeout
        try:
            seen.value = _drive(pipe, page.resolve().as_uri(), expression, seen, deadline)
        finally:
            try:
                pipe.send("Browser.close")
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
            os.close(to_browser_w)
            os.close(from_browser_r)
    return seen


def _drive(pipe: _Pipe, url: str, expression: str, seen: Visit, deadline: float) -> Any:
    answers: dict[int, dict] = {}
    loaded = False

    def note(message: dict) -> None:
        nonlocal loaded
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            seen.console.append(f"console.{params['type']}: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            seen.console.append(f"exception: {details.get('exception', {}).get('description', details.get('text'))}")
        elif method == "Log.entryAdded":
            entry = params["entry"]
            seen.console.append(f"log {entry['level']} ({entry.get('source')}): {entry['text']}")
        elif method == "Network.requestWillBeSent":
            seen.requests.append(params["request"]["url"])
        elif method == "Page.javascriptDialogOpening":
            seen.dialogs.append(f"{params['type']}: {params['message']}")
            pipe.send("Page.handleJavaScriptDialog", {"accept": True}, message.get("sessionId"))
        elif method == "Page.loadEventFired":
            loaded = True
        elif "id" in message:
            answers[message["id"]] = message

    def call(method: str, params: dict | None = None, session: str | None = None) -> dict:
        number = pipe.send(method, params, session)
        while number not in answers:
            note(pipe.receive(deadline))
        answer = answers.pop(number)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        call(f"{domain}.enable", session=session)
    call("Page.navigate", {"url": url}, session)
    while not loaded:
        note(pipe.receive(deadline))
    result = call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
    if "exceptionDetails" in result:
        raise RuntimeError(f"the test's expression failed: {result['exceptionDetails']}")
    call("Runtime.evaluate", {"expression": "0"}, session)  # events the page sent before this answer have been seen
    return result["result"].get("value")


__all__ = ["CHROMIUM", "Visit", "require_chromium", "visit"]
