"""The UI's engine in its worker process (mass_tui.engine_process): it starts, data arrives, keys and pause
reach it, `q` stops it cleanly, its death shows on screen, and a killed UI leaves no process behind.

Real processes throughout: the engine spawned as in `mass`, and for the kill test `mass` itself in a pty."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import orjson
import pytest

from mass_tui.config import load_config
from mass_tui.data_lock import DataDirLock
from mass_tui.ui.launch import live_app, replay_app
from mass_tui.ui.lines import LineView

from .conftest import ROOT, SANDY

SIZE = (160, 48)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("MASS_UI_ENGINE", raising=False)
    time.tzset()


def _config(tmp_path: Path, **env: str):
    return load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), **env}, dotenv_file=None)


async def _until(pilot, condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await pilot.pause(0.1)
    return bool(condition())


def _text(app, selector: str) -> str:
    return "\n".join(app.query_one(selector, LineView).plain_lines())


def _gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie no one has reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out.update(int(p) for p in (task / "children").read_text().split())
    return out


def _stream_lines(data_dir: Path) -> list[dict]:
    """Every stored observation; a torn line would fail to parse."""
    return [orjson.loads(line) for path in sorted((data_dir / "db").glob("consumer_stream*.jsonl"))
            for line in path.read_bytes().splitlines()]


def _recording(path: Path, n: int, stations: int = 5) -> Path:
    path.write_text("\n".join(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": f"s{i % stations}",
                                          "temp_c": 10 + (i % 13) * 0.1, "pressure_hpa": 1010 + (i % 7) * 0.1})
                              for i in range(n)) + "\n")
    return path


async def test_engine_process_runs_the_pipeline_keys_and_pause_reach_it_and_q_stops_it(tmp_path):
    """simulate --max in the engine process: data arrives, thresholds and pause are taken there, and `q`
    stops it cleanly (exit code 0, the store whole), leaving no process behind."""
    app, cleanup = live_app(_config(tmp_path), source="simulator:smoke", transport="file", max_speed=True,
                            host="process")
    link = app.engine
    pid = link.pid
    try:
        assert pid is not None and pid != os.getpid()
        async with app.run_test(size=SIZE) as pilot:
            assert await _until(pilot, lambda: app.state.status.get("observations", 0) > 0, 60)
            engine = app.state.status["engine"]
            assert engine["pid"] == pid and engine["textual_loaded"] is False  # the engine never loads Textual
            # Below the UI's priority, so that on a busy machine a key runs before the engine's next slice.
            assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
            await pilot.press("Z", "c")
            # Fewer alarms (1 in 31,623 readings), critical ten times commoner (1 in 10^7).
            assert await _until(pilot, lambda: app.state.status.get("thresholds") == {
                "alarm_rarity": pytest.approx(10**4.5), "critical_rarity": pytest.approx(1e7)})
            await pilot.press("space")
            assert await _until(pilot, lambda: app.state.status.get("engine_paused") is True)
            await pilot.pause(0.5)
            seen = app.state.status["observations"]
            await pilot.pause(1.5)
            assert app.state.status["observations"] <= seen + 4096  # at most the consumer's batch in hand
            await pilot.press("space")
            assert await _until(pilot, lambda: app.state.status["observations"] > seen + 4096, 60)
            await pilot.press("q")
        cleanup()
        assert _gone(pid) and link.process.exitcode == 0 and link.error is None
        shown = app.state.status["observations"]
        stored = _stream_lines(tmp_path / "data")
        assert len(stored) >= shown  # everything shown was stored (and fsynced) before the engine left
        with DataDirLock(tmp_path / "data"):  # and the data dir is free
            pass
    finally:
        cleanup()
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


async def test_a_killed_engine_shows_as_an_error_instead_of_a_hang(tmp_path):
    rec = _recording(tmp_path / "long.jsonl", 20_000)
    app, cleanup = replay_app(_config(tmp_path), rec, speed=600.0, station=None, host="process")
    pid = app.engine.pid
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert await _until(pilot, lambda: app.state.status.get("observations", 0) > 0, 60)
            os.kill(pid, signal.SIGKILL)
            assert await _until(pilot, lambda: "Engine stopped" in _text(app, "#problem"))
            problem = _text(app, "#problem")
            assert f"engine process {pid} was killed by SIGKILL" in problem
            assert "FAILED" in _text(app, "#status")
            assert await _until(pilot, lambda: app.engine_done)  # the engine's worker ended: nothing waits on it
            await pilot.press("q")
    finally:
        cleanup()
    assert _gone(pid)


async def test_an_engine_that_fails_says_why_and_leaves(tmp_path):
    rec = _recording(tmp_path / "gone.jsonl", 10)
    app, cleanup = replay_app(_config(tmp_path), rec, speed=None, station=None, host="process")
    rec.unlink()  # the engine process opens it after this
    pid = app.engine.pid
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert await _until(pilot, lambda: app.engine_done)
            assert app.engine_error is not None and "FileNotFoundError" in app.engine_error
            assert await _until(pilot, lambda: "Engine stopped: FileNotFoundError" in _text(app, "#problem"))
            await pilot.press("q")
    finally:
        cleanup()
    assert _gone(pid) and app.engine.process.exitcode == 0  # it failed, said so, closed its store and left


async def test_the_thread_host_runs_the_same_engine_side_in_this_process(tmp_path):
    app, cleanup = replay_app(_config(tmp_path), SANDY, speed=None, station="ndbc-44005", host="thread")
    try:
        assert app.engine.pid is None
        async with app.run_test(size=SIZE) as pilot:
            assert await _until(pilot, lambda: app.engine_done, 60)
            await pilot.pause(0.5)
            assert app.state.status["engine"]["pid"] == os.getpid()
            assert app.state.status["observations"] > 500 and app.snapshot.episodes
            assert "replay ended" in _text(app, "#header")
            await pilot.press("q")
    finally:
        cleanup()
    assert not app.engine.thread.is_alive()


def test_a_second_ui_is_refused_while_the_engine_holds_the_data_dir(tmp_path):
    """The UI hands its lock to the engine process: the data dir stays taken while either lives."""
    from mass_tui.data_lock import DataDirBusy

    rec = _recording(tmp_path / "r.jsonl", 50)
    app, cleanup = replay_app(_config(tmp_path), rec, speed=1.0, station=None, host="process")
    try:
        with pytest.raises(DataDirBusy):
            replay_app(_config(tmp_path), rec, speed=1.0, station=None, host="process")
    finally:
        cleanup()
    with DataDirLock(tmp_path / "data"):
        pass


class _Pty:
    """`mass` on a pseudo-terminal, as a person runs it; its output drained so it never blocks."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "TERM": "xterm-256color",
               "HOME": str(cwd), "LANG": "C.UTF-8", "TZ": "UTC"}
        self.proc = subprocess.Popen([sys.executable, "-m", "mass_tui", *args], cwd=cwd, env=env, stdin=slave,
                                     stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.master = master
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.master, 65536):
                pass

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.master)


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return bool(condition())


def test_sigkill_of_the_ui_leaves_no_process_behind_and_the_store_whole(tmp_path):
    """The UI is killed mid-replay: the engine sees it gone, stores what it scored (no torn line), releases
    the data dir and exits; multiprocessing's resource tracker follows. Nothing is left running."""
    rec = _recording(tmp_path / "long.jsonl", 50_000)
    data = tmp_path / "data"
    ui = _Pty(["replay", str(rec), "--speed", "3000", "--data-dir", str(data)], tmp_path)
    children: set[int] = set()
    try:
        assert _wait(lambda: (data / "db" / "consumer_stream.jsonl").is_file()
                     and (data / "db" / "consumer_stream.jsonl").stat().st_size > 0, 60), "the engine stores"
        children = _children(ui.proc.pid)
        assert children, "the UI has its engine process"
        os.kill(ui.proc.pid, signal.SIGKILL)
        ui.proc.wait(10)
        assert _wait(lambda: all(_gone(pid) for pid in children), 60), [p for p in children if not _gone(p)]
        stored = _stream_lines(data)  # every line whole
        assert 0 < len(stored) < 50_000
        with DataDirLock(data):
            pass
        log = (tmp_path / "logs" / "engine.log").read_text()
        assert "engine stopped" not in log  # it stopped cleanly, not on an error
    finally:
        ui.close()
        for pid in children:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
