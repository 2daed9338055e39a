"""The UI in a real pseudo-terminal: bytes written, CPU share, memory, ingest-to-screen latency.

    python bench/ui_cost.py [--seconds 20]

Runs `mass replay` (the Textual UI) in a 160x48 pty, streaming 5 k msg/s
(20 stations, one message at a time), and reads what it writes to the
terminal. Then a flat-out replay of 1 M messages shows whether memory stays
flat (the chart buffers are bounded rings).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOCK = os.sysconf("SC_CLK_TCK")


def write_recording(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"ts": 1_700_000_000 + 4 * i, "station": f"s{i % 20}", "temp_c": 10 + (i % 13) * 0.1,
                                 "pressure_hpa": 1010 + (i % 7) * 0.1, "wind_mps": 3 + (i % 5) * 0.3}) + "\n")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Terminal:
    """A process on a pty of a given size; counts the bytes it writes."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], cols: int = 160, rows: int = 48) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.master = master
        self.bytes = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.bytes += len(chunk)

    def count(self) -> int:
        with self._lock:
            return self.bytes

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def stop(self) -> None:
        self.type("q")
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def window(term: Terminal, seconds: float) -> tuple[float, float]:
    """(bytes/s, CPU share of one core) over `seconds`."""
    b0, c0, t0 = term.count(), cpu_seconds(term.proc.pid), time.monotonic()
    time.sleep(seconds)
    b1, c1, t1 = term.count(), cpu_seconds(term.proc.pid), time.monotonic()
    return (b1 - b0) / (t1 - t0), (c1 - c0) / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLORTERM": "",
               "MASS_UI_STATS": str(tmp / "stats.json"), "HOME": str(tmp)}
        rec = tmp / "stream.jsonl"
        n = int(5000 * (args.seconds + 15))
        write_recording(rec, n)
        # 4 s of data per message at 20 000x: 5 000 messages a second, one at a time.
        term = Terminal([sys.executable, "-m", "mass_tui", "replay", str(rec), "--speed", "20000"], tmp, env)
        time.sleep(5)
        load_bytes, load_cpu = window(term, args.seconds)
        term.type(" ")  # pause: the same screen, idle
        time.sleep(1.5)
        idle_bytes, idle_cpu = window(term, 5)
        rss = rss_mib(term.proc.pid)
        term.type(" ")
        term.stop()
        stats = json.loads((tmp / "stats.json").read_text())
        print(f"UI at 5 k msg/s (160x48 pty, {args.seconds:g} s): {load_bytes / 1024:.1f} KB/s to the terminal, "
              f"CPU {load_cpu * 100:.0f}% of one core (UI and engine threads)")
        print(f"UI paused (idle): {idle_bytes / 1024:.2f} KB/s, CPU {idle_cpu * 100:.1f}%")
        print(f"ingest-to-screen latency: p50 {stats['p50'] * 1000:.0f} ms, p99 {stats['p99'] * 1000:.0f} ms "
              f"({stats['messages']} messages); RSS {rss:.0f} MiB")
        # Memory over 1 M messages flat out: sample RSS as it goes.
        big = tmp / "million.jsonl"
        write_recording(big, 1_000_000)
        term = Terminal([sys.executable, "-m", "mass_tui", "replay", str(big), "--max"], tmp, env)
        samples = []
        start = time.monotonic()
        while term.proc.poll() is None and time.monotonic() - start < 240:
            time.sleep(2)
            samples.append(rss_mib(term.proc.pid))
            if len(samples) > 3 and samples[-1] == samples[-2] == samples[-3]:
                break
        term.stop()
        third = max(1, len(samples) // 3)
        print(f"RSS over 1 M messages: {samples[third - 1]:.0f} MiB after a third of the run, "
              f"{max(samples):.0f} MiB peak, {samples[-1]:.0f} MiB at the end ({len(samples)} samples)")


if __name__ == "__main__":
    main()
