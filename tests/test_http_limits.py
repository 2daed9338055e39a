"""HTTP sources under hostile servers on loopback: a trickling body, a huge or endless body, a
200 response whose time cannot be read, and the `mass_source_up` gauge following every poll."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from mass_tui.pipeline import run_producer
from sources.base import Poll, SourceState
from sources.http_sources import Backoff, OpenMeteoSource

from .conftest import ROOT, LoopbackHTTP, free_port

STATIONS = [{"name": "twente", "lat": 52.27, "lon": 6.87}]


class Hostile(LoopbackHTTP):
    """A loopback HTTP server whose answer is chosen per test: `mode` is "ok", "trickle" (one byte every
    `every` s), "huge" (a Content-Length of `size`), "endless" (no length, 64 KB chunks until the
    client leaves), "badtime" (200 with an unusable current.time). Counts the bytes it sent."""

    def __init__(self, ok_body: bytes) -> None:
        self.mode = "ok"
        self.every = 2.0
        self.size = 50 * 2**20
        self.sent = 0
        self.requests = 0
        self.bad_time: object = 1e20
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server.requests += 1
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                    getattr(self, f"_{server.mode}")()

            def _send(self, data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()
                server.sent += len(data)

            def _ok(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(ok_body)))
                self.end_headers()
                self._send(ok_body)

            def _badtime(self):
                payload = json.loads(ok_body)
                payload["current"]["time"] = server.bad_time
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self._send(body)

            def _trickle(self):
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(30):  # bounded: 60 s at most
                    self._send(b" ")
                    time.sleep(server.every)

            def _huge(self):
                self.send_response(200)
                self.send_header("Content-Length", str(server.size))
                self.end_headers()
                chunk = b" " * 65536
                for _ in range(server.size // len(chunk)):
                    self._send(chunk)

            def _endless(self):
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = b"[" * 65536
                for _ in range(200 * 16):  # bounded: 200 MiB at most
                    self._send(chunk)

            def log_message(self, *args):
                pass

        self.serve(Handler, daemon_threads=True)


@pytest.fixture
def hostile(shared):
    server = Hostile((shared / "api-samples" / "open-meteo_forecast_current_hourly_daily_excerpt.json").read_bytes())
    yield server
    server.close()


def _source(hostile: Hostile, **limits) -> OpenMeteoSource:
    return OpenMeteoSource(httpx.Client(timeout=10.0), STATIONS, base=hostile.base + "/v1/forecast", air_base=None,
                           interval=60, backoff=Backoff(base=1.0, cap=60), **limits)


def _poll_within(src: OpenMeteoSource, seconds: float) -> Poll | None:
    """poll() in a thread; None if it had not returned after `seconds` (the test then fails)."""
    out: list[Poll] = []
    thread = threading.Thread(target=lambda: out.append(src.poll()), daemon=True)
    thread.start()
    thread.join(seconds)
    return out[0] if out else None


def test_a_trickling_body_fails_at_the_deadline(hostile):
    """One byte every 2 s: each read is quick, so httpx's per-read timeout never fires; the total
    deadline does, and the source is down with the reason."""
    hostile.mode, hostile.every = "trickle", 2.0
    src = _source(hostile, deadline=3.0)
    poll = _poll_within(src, 30)
    assert poll is not None, "the fetch did not end at its deadline"
    assert poll.messages == [] and src.state.up is False
    assert "no complete answer within 3 s" in src.state.last_error and src.state.next_retry is not None


@pytest.mark.parametrize("mode", ["huge", "endless"])
def test_a_huge_or_endless_body_is_cut_at_the_cap_unread(hostile, mode):
    """A 50 MB body (announced) and an endless one (no length): the fetch fails at the 1 MiB cap and
    the server has sent a small part of it: the body was never read whole into memory."""
    hostile.mode = mode
    src = _source(hostile, max_body=2**20)
    poll = _poll_within(src, 60)
    assert poll is not None
    assert poll.messages == [] and src.state.up is False
    assert "limit (source.max_body_mb)" in src.state.last_error
    time.sleep(0.5)
    assert hostile.sent < 16 * 2**20, hostile.sent  # socket buffers at most, not the 50 MB / endless body
    hostile.mode = "ok"
    src.poll()
    assert src.state.up is True  # recovers by itself


@pytest.mark.parametrize("bad_time", [1e20, "0001-01-01T00:00", "9999-99-99", None, [1]])
def test_an_unusable_time_in_a_200_response_is_quarantined_not_fatal(hostile, bad_time):
    """Before: `current.time = 1e20` raised OverflowError out of poll() and killed the producer thread."""
    hostile.mode, hostile.bad_time = "badtime", bad_time
    src = _source(hostile)
    poll = src.poll()
    assert poll.messages == [] and len(poll.rejected) == 1
    assert poll.rejected[0].reason.startswith("open-meteo: ")
    hostile.mode = "ok"
    src._seen.clear()
    assert len(src.poll().messages) == 1


class _Flaky:
    """A source whose polls raise in turn: the producer must mark it down and retry, never die."""

    name = "flaky"

    def __init__(self) -> None:
        self.state = SourceState(self.name)
        self.calls = 0

    def poll(self) -> Poll:
        self.calls += 1
        if self.calls <= 2:
            raise OverflowError("timestamp out of range for platform time_t")
        out = Poll()
        out.add(b'{"ts": 1700000000, "station": "f", "temp_c": 1.0}', "f")
        self.state.mark_up()
        return out

    def next_delay(self) -> float:
        return 0.0


def test_every_producer_exception_marks_the_source_down_and_is_retried():
    class Sink:
        def __init__(self) -> None:
            self.got: list[bytes] = []

        def append(self, messages, keys=None):
            self.got.extend(messages)

        def flush(self, timeout=0.0):
            return 0

    src, sink, stop = _Flaky(), Sink(), threading.Event()
    states: list[tuple[bool | None, str, int]] = []
    sent = run_producer(src, sink, stop, max_messages=1,
                        on_poll=lambda s, n: states.append((s.state.up, s.state.last_error, s.state.failures)))
    assert sent == 1 and len(sink.got) == 1
    assert states[0][0] is False and "OverflowError" in states[0][1] and states[1][2] == 2
    assert states[-1][0] is True


def test_source_up_gauge_is_there_from_the_start_and_follows_every_poll(tmp_path, hostile):
    """`mass_source_up` exists before the first poll, is 1 while polls work and 0 as soon as one fails,
    with no observation needed to update it (before: set only with a stored batch)."""
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "WEATHER_API_BASE": hostile.base + "/v1/forecast",
           "AIR_QUALITY_API_BASE": "", "LOCATION_LAT": "52.27", "LOCATION_LON": "6.87", "LOCATION_NAME": "twente",
           "POLL_SECONDS": "1", "MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs")}
    hostile.mode = "trickle"  # the first poll hangs until its deadline: the gauge must already be there
    (tmp_path / "mass.toml").write_text("[source]\nfetch_deadline_seconds = 4\n")
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "run", "--headless", "-q", "--source", "open-meteo",
                             "--metrics-port", str(port), "--max-seconds", "40"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def gauge() -> str | None:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        lines = [x for x in text.splitlines() if x.startswith('mass_source_up{source="open-meteo"}')]
        return lines[0].split()[-1] if lines else None

    def wait_for(value: str, seconds: float = 30) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if gauge() == value:
                return True
            time.sleep(0.1)
        return False

    try:
        assert wait_for("0.0", 20)  # present from the start, down until a poll works
        hostile.mode = "ok"
        assert wait_for("1.0")
        hostile.mode = "endless"  # a failing poll, which stores nothing
        assert wait_for("0.0")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
