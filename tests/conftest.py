from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A copy of ../shared/data and ../shared/cases (public-domain and MIT data, see tests/data/README.md),
# kept in the repository so that a clean clone runs every test.
SHARED = ROOT / "tests" / "data"
SANDY = ROOT / "mass_tui" / "demo" / "ndbc44005_gulf_of_maine_2012-10_sandy.csv"


class LoopbackHTTP:
    """A test HTTP server on a free 127.0.0.1 port, served from a daemon thread: subclasses build their
    handler and call `serve(handler)`; `base` is its URL; `close()` stops it."""

    def serve(self, handler, *, daemon_threads: bool = False) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = daemon_threads
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def complete_lines(path: Path) -> list[bytes]:
    """The lines of a file another process may be appending to, up to its last newline: a line being
    written is not yet a record (reading it whole would fail on a half-written line)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return [line for line in data[: data.rfind(b"\n") + 1].splitlines() if line.strip()]


def wait_for(predicate, seconds: float = 30.0) -> bool:
    """Poll `predicate` every 50 ms until it holds or `seconds` pass; whether it held (a bounded wait)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def sigkill_when(proc, ready, seconds: float = 30.0) -> bool:
    """SIGKILL `proc` by PID as soon as `ready()` holds (or after `seconds`), and reap it.

    Returns whether `ready()` held before the kill."""
    import os
    import signal
    import time

    try:
        deadline = time.monotonic() + seconds
        while not (held := ready()) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return held
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def sigterm_when(proc, ready, seconds: float = 60.0, timeout: float = 60.0) -> tuple[bool, str, str]:
    """SIGTERM `proc` by PID as soon as `ready()` holds (or after `seconds`, or when it has exited by
    itself), then wait for its clean stop: (whether `ready()` held, its stdout, its stderr).

    For a run whose `--max-seconds` was only a window long enough to read everything: stopping it once
    the condition holds asserts the same end state without waiting out the window."""
    import signal
    import time

    try:
        deadline = time.monotonic() + seconds
        while not (held := bool(ready())) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=timeout)
        return held or bool(ready()), out or "", err or ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture
def shared() -> Path:
    # The data is part of the repository: a missing copy is a broken checkout, not a reason to skip.
    assert SHARED.is_dir(), f"test data not found at {SHARED}"
    return SHARED


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd); yields (port, received messages)."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            msg = message_from_bytes(envelope.content, policy=policy.default)
            received.append((envelope.rcpt_tos, msg))
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


@pytest.fixture
def http_sink():
    """A real HTTP server on loopback that records POSTs and answers with the scripted statuses.

    statuses: list of int (or "hang" to stall longer than the client's timeout); the last one repeats.
    """
    import json
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"statuses": [200], "posts": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"null")
            script = state["statuses"]
            status = script.pop(0) if len(script) > 1 else script[0]
            state["posts"].append((status, body))
            if status == "hang":
                time.sleep(1.5)
                status = 200
            try:
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): that is what the test provokes

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", state
    finally:
        server.shutdown()
        server.server_close()


from tests.kafka_broker import Broker  # noqa: E402


def _a_broker():
    broker = Broker(free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()  # the test is over: nothing to shut down gracefully


@pytest.fixture(scope="session")
def kafka_broker():
    """One Tansu broker for the whole session, for tests that leave it running: each test uses its own
    topic and group (or a name no other test uses), so they do not see each other's messages. A broker per
    test cost a start and, once clients had connected, a stop of about 5 s (Tansu's graceful shutdown)."""
    yield from _a_broker()


@pytest.fixture
def own_kafka_broker():
    """A broker of this test's own, for a test that stops (and perhaps restarts) it."""
    yield from _a_broker()
