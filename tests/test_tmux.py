"""The real `mass` in a real terminal (tmux): what a person sees at 80×24 and 160×48, keys, and the
tui-injection case. Each test runs its own tmux server on a private socket and kills it, and the
process in it by its PID, at teardown. Skipped when tmux is not installed."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import ROOT, SANDY, SHARED

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

INJECTION = SHARED / "cases" / "reliability" / "tui-injection.jsonl"


class Tmux:
    """One detached tmux server and session running a command at a fixed size."""

    def __init__(self, cwd: Path, cols: int, rows: int, *args: str, term: str = "xterm-256color") -> None:
        self.socket = f"mass-test-{uuid.uuid4().hex[:10]}"
        self.env = env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
                          "TERM": term, "TZ": "UTC", "HOME": str(cwd), "LANG": "C.UTF-8",
                          "LC_ALL": "C.UTF-8"}
        self.status_file = cwd / f"exit-status-{self.socket}"
        # The exit status, written by the shell: tmux 3.3 does not always report it for the pane.
        # TERM on the command line: tmux gives a pane its own default-terminal whatever -e says.
        command = " ".join([f"TERM={shlex.quote(term)}", sys.executable, "-m", "mass_tui",
                            *(shlex.quote(a) for a in args)]) + \
            f"; echo $? > {shlex.quote(str(self.status_file))}"
        # One server start: its size, Esc not waiting for alt+key, the pane kept when the program ends
        # (so its exit status can be read), then the session. A detached window takes the server's
        # default size, whatever new-session's -x/-y say, so that is set first.
        self._tmux("-f", "/dev/null", "start-server", ";", "set-option", "-g", "default-size", f"{cols}x{rows}",
                   ";", "set-option", "-s", "escape-time", "0", ";", "set-option", "-g", "remain-on-exit", "on",
                   ";", "new-session", "-d", "-s", "t", "-x", str(cols), "-y", str(rows), "-c", str(cwd),
                   *[x for k, v in env.items() for x in ("-e", f"{k}={v}")], command)
        self.pid = int(self._tmux("display-message", "-p", "-t", "t", "#{pane_pid}").strip())

    def _tmux(self, *args: str) -> str:
        # The server gets this environment only: COLUMNS and LINES from pytest would size the app.
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20,
                              check=True, env=self.env).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def lines(self) -> list[str]:
        return self.screen().splitlines()

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def show(self, fmt: str) -> str:
        return self._tmux("display-message", "-p", "-t", "t", fmt).strip()

    def wait_for(self, text: str, seconds: float = 90.0) -> bool:
        return self.wait_until(lambda: text in self.screen(), seconds)

    def wait_until(self, condition, seconds: float = 30.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.3)
        return False

    def exited(self, seconds: float = 30.0) -> bool:
        return self.wait_until(lambda: self.status_file.exists() and self.status_file.read_text().strip() != "",
                               seconds)

    def status(self) -> int:
        return int(self.status_file.read_text())

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(self.pid, 0)
                time.sleep(0.1)
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


@pytest.fixture
def tmux(tmp_path):
    started: list[Tmux] = []

    def start(cols: int, rows: int, *args: str, term: str = "xterm-256color") -> Tmux:
        t = Tmux(tmp_path, cols, rows, *args, term=term)
        started.append(t)
        return t

    yield start
    for t in started:
        t.close()


def _sandy(tmux, cols, rows):
    t = tmux(cols, rows, "replay", str(SANDY), "--station", "ndbc-44005", "--max")
    assert t.wait_for("data 2012-11-15 23:50 UTC"), t.screen()  # the last reading is in
    assert t.wait_until(lambda: " quit" in t.lines()[-1]), t.screen()  # the whole frame is drawn
    return t


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
def test_the_real_app_shows_the_essentials_and_answers_keys(tmux, size):
    t = _sandy(tmux, *size)
    lines = t.lines()
    assert len(lines) == size[1] and lines[0].startswith(" ≈ mass │ ndbc-44005")
    assert "data 2012-11-15 23:50 UTC" in lines[0]
    assert "no active anomaly" in lines[1]
    keys = lines[-1]
    assert " ? " in keys and "help" in keys and " q " in keys and "quit" in keys, lines[-4:]
    def episodes() -> list[str]:
        return [line for line in t.lines() if line.startswith(("│ CRIT", "│ WARN"))]

    # the table may be drawn a refresh after the key bar (a clean-clone CI on a busy machine read it empty)
    assert t.wait_until(lambda: bool(episodes())), t.screen()
    assert "episodes · worst first" in t.screen()
    if size == (160, 48):
        ok = t.wait_until(lambda: "1 Sea-level pressure" in t.screen() and "┤" in t.screen())
        assert ok, t.screen()  # a chart with its axis
        assert any("gust over limit" in r for r in episodes())
    t.keys("?")
    assert t.wait_for("[Events]", 10), t.screen()
    t.keys("Escape")
    assert t.wait_until(lambda: "[Events]" not in t.screen(), 10)
    t.keys("/")
    assert t.wait_for("filter: words", 10)  # the box has the focus before anything is typed
    t.keys("-l", "var:gust")
    t.keys("Enter")
    assert t.wait_for(" · var gust", 10)  # "N of M · var gust": the filter applies (M follows the detectors)
    t.keys("Enter")  # the detail of the worst gust episode
    assert t.wait_for("Why: gust", 10)
    t.keys("Escape")
    assert t.wait_for(" · var gust", 10)  # "N of M · var gust": the filter applies (M follows the detectors)
    time.sleep(0.5)  # Textual, too, waits a moment after Esc for the rest of a sequence
    t.keys("q")
    assert t.exited(), t.screen()
    assert t.status() == 0


def test_tui_injection_case_is_inert_in_a_real_terminal(tmux):
    """tests/data/cases/reliability/tui-injection.jsonl: no title change, no clear, no colour from data."""
    t = tmux(160, 48, "replay", str(INJECTION), "--max")
    assert t.wait_for("replay ended"), t.screen()
    assert len(t.lines()[0]) <= 160
    for _ in range(10):  # every station once: each name reaches the header
        t.keys("s")
        time.sleep(0.3)
    screen = t.screen()
    assert "PWNED" not in t.show("#{pane_title}")  # an OSC 0 from data would have set it
    assert screen.splitlines()[0].startswith(" ≈ mass")  # not cleared, layout intact
    assert "[bold red]BOLD[/]" in screen or "␛[31mANSI-RED␛[0m" in screen or "a\\u202eRTL" in screen
    coloured = t._tmux("capture-pane", "-p", "-e", "-t", "t")
    assert "\x1b]" not in coloured and "\x1b[2J" not in coloured
    assert "\u202e" not in coloured
    t.keys("q")
    assert t.exited()


def test_wide_names_keep_the_borders_in_place_in_a_real_terminal(tmux, tmp_path):
    """CJK and emoji (🌪️ with its variation selector is 2 cells for Rich, 1 for tmux) in station names:
    every row still ends on the box's right border, never with a doubled "││"."""
    from rich.cells import cell_len

    names = ["émile😀🌪️", "日本語", "plain-station"]
    path = tmp_path / "wide.jsonl"
    with path.open("w") as fh:
        for i in range(600):
            gust = 20.0 if (i // 3) % 12 == 0 else 5.0 + (i % 3)
            fh.write(f'{{"ts": {1_700_000_000 + 600 * (i // 3)}, "station": "{names[i % 3]}", '
                     f'"gust_mps": {gust}, "wind_mps": {gust / 2}}}\n')
    t = tmux(160, 48, "replay", str(path), "--max")
    assert t.wait_for("replay ended"), t.screen()
    assert t.wait_until(lambda: "日本語" in t.screen() and " quit" in t.lines()[-1]), t.screen()
    rows = [line for line in t.lines() if any(n[:3] in line for n in ("日本語", "émile", "plain"))]
    assert rows
    for line in rows:
        assert cell_len(line.rstrip()) <= 160 and not line.rstrip().endswith("││"), line
    t.keys("q")
    assert t.exited()


def test_vt100_draws_ascii_in_a_real_terminal(tmux):
    t = tmux(80, 24, "replay", str(SANDY), "--station", "ndbc-44005", "--max", term="vt100")
    assert t.wait_for("data 2012-11-15 23:50 UTC"), t.screen()
    assert t.wait_until(lambda: " quit" in t.lines()[-1]), t.screen()
    screen = t.screen()
    assert not set("≈│…±σ╭╮╰╯─") & set(screen), set("≈│…±σ╭╮╰╯─") & set(screen)
    t.keys("q")
    assert t.exited()
