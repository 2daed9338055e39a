"""The UI in a real pseudo-terminal: bytes written, CPU share, key-to-screen latency under load, memory.

    python bench/ui_cost.py [--seconds 20] [--keys 40] [--skip-memory]

Every figure comes from `mass` running in a 160x48 pty, as a person would
run it; this script only reads what the process writes and its /proc
counters:

1. Idle: a replay that has ended (nothing changes): bytes/s and CPU.
2. Paced: 5 k msg/s, 20 stations, one message at a time: bytes/s, CPU,
   ingest-to-screen latency; then paused.
3. Keys while ingesting flat out (a 1 M-line replay at --max, and `mass
   simulate --max`): `Z`/`z` sent through the pty, and the time the new z
   reached the terminal (logged by the app after the refresh that drew it,
   same monotonic clock): p50, p99. Each load is measured with the engine's
   time slices bounded (MASS_UI_SLICES=1: 1 ms interpreter switch interval,
   256 KB replay batches; the default for replays) and without
   (MASS_UI_SLICES=0: 5 ms, 1 MB; the default for live sources), in the
   same run, alternating.
4. RSS over a flat-out replay of 1 M messages (the chart buffers are bounded).

The machine may be shared: compare figures of one run, not across runs.
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


def write_recording(path: Path, n: int, stations: int = 20) -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"ts": 1_700_000_000 + 4 * i, "station": f"s{i % stations}",
                                 "temp_c": 10 + (i % 13) * 0.1, "pressure_hpa": 1010 + (i % 7) * 0.1,
                                 "wind_mps": 3 + (i % 5) * 0.3}) + "\n")


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
        self.tail = b""
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
                self.tail = (self.tail + chunk)[-65536:]

    def count(self) -> int:
        with self._lock:
            return self.bytes

    def saw(self, text: str) -> bool:
        with self._lock:
            return text.encode() in self.tail

    def type(self, keys: str) -> float:
        sent = time.monotonic()
        os.write(self.master, keys.encode())
        return sent

    def stop(self) -> None:
        self.type("q")
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # by its PID (Popen keeps it)
            self.proc.wait(10)


def window(term: Terminal, seconds: float) -> tuple[float, float]:
    """(bytes/s, CPU share of one core) over `seconds`."""
    b0, c0, t0 = term.count(), cpu_seconds(term.proc.pid), time.monotonic()
    time.sleep(seconds)
    b1, c1, t1 = term.count(), cpu_seconds(term.proc.pid), time.monotonic()
    return (b1 - b0) / (t1 - t0), (c1 - c0) / (t1 - t0)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def run(args: list[str], tmp: Path, env: dict[str, str], name: str) -> tuple[Terminal, Path]:
    stats = tmp / f"stats-{name}.json"
    data = tmp / f"data-{name}"
    term = Terminal([sys.executable, "-m", "mass_tui", *args, "--data-dir", str(data)], tmp,
                    {**env, "MASS_UI_STATS": str(stats)})
    return term, stats


def key_latency(args: list[str], tmp: Path, env: dict[str, str], name: str, keys: int) -> dict[str, float]:
    """Send Z and z alternately while the app ingests; (p50, p99) ms of key to terminal, CPU share."""
    term, stats = run(args, tmp, env, name)
    time.sleep(6)  # started, and ingesting
    c0, t0 = cpu_seconds(term.proc.pid), time.monotonic()
    sent = []
    for i in range(keys):
        sent.append(term.type("Z" if i % 2 == 0 else "z"))
        time.sleep(0.25)
    time.sleep(1.0)
    cpu = (cpu_seconds(term.proc.pid) - c0) / (time.monotonic() - t0)
    term.stop()
    shown = json.loads(stats.read_text())["key_shown"]
    n = min(len(sent), len(shown))
    lat = [(shown[i] - sent[i]) * 1000 for i in range(n)]
    return {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat) if lat else float("nan"),
            "keys": n, "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2, help="alternations of bounded/unbounded slices per load")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLORTERM": "",
               "HOME": str(tmp), "LANG": "C.UTF-8"}
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

        # 1. Idle: a replay that has ended.
        small = tmp / "small.jsonl"
        write_recording(small, 20_000)
        term, _ = run(["replay", str(small), "--max"], tmp, env, "idle")
        deadline = time.monotonic() + 60
        while not term.saw("replay ended") and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)
        idle_bytes, idle_cpu = window(term, 10)
        term.stop()
        print(f"idle (replay ended, 160x48): {idle_bytes:.0f} B/s to the terminal, CPU {idle_cpu * 100:.2f}% "
              "of one core")

        # 2. 5 k msg/s, one message at a time; then paused.
        rec = tmp / "stream.jsonl"
        write_recording(rec, int(5000 * (args.seconds + 25)))
        term, stats = run(["replay", str(rec), "--speed", "20000"], tmp, env, "paced")
        time.sleep(6)
        load_bytes, load_cpu = window(term, args.seconds)
        term.type(" ")
        time.sleep(1.5)
        paused_bytes, paused_cpu = window(term, 5)
        term.type(" ")
        term.stop()
        st = json.loads(stats.read_text())
        print(f"5 k msg/s (160x48, {args.seconds:g} s): {load_bytes / 1024:.1f} KB/s to the terminal, CPU "
              f"{load_cpu * 100:.0f}% of one core (UI and engine threads)")
        print(f"  paused: {paused_bytes / 1024:.2f} KB/s, CPU {paused_cpu * 100:.1f}%")
        print(f"  ingest-to-screen latency: p50 {st['p50'] * 1000:.0f} ms, p99 {st['p99'] * 1000:.0f} ms "
              f"({st['messages']} messages)")

        # 3. Keys while ingesting flat out, time slices bounded (default) or not, alternating.
        big = tmp / "million.jsonl"
        write_recording(big, 1_000_000)
        loads = {"1 M-line replay --max": ["replay", str(big), "--max"], "simulate --max": ["simulate", "--max"]}
        for load, cmd in loads.items():
            results: dict[str, list[dict[str, float]]] = {"bounded": [], "unbounded": []}
            for r in range(args.rounds):
                for mode in ("bounded", "unbounded"):
                    mode_env = {**env, "MASS_UI_SLICES": "1" if mode == "bounded" else "0"}
                    results[mode].append(key_latency(cmd, tmp, mode_env, f"{load[:6]}-{mode}-{r}", args.keys))
            for mode, runs in results.items():
                p50 = sorted(x["p50"] for x in runs)[len(runs) // 2]
                p99 = max(x["p99"] for x in runs)
                cpu = sum(x["cpu"] for x in runs) / len(runs)
                print(f"keys during {load}, slices {mode}: key-to-screen p50 {p50:.0f} ms, p99 {p99:.0f} ms "
                      f"({sum(x['keys'] for x in runs)} keys, process CPU {cpu * 100:.0f}%)")

        if args.skip_memory:
            return
        # 4. Memory over 1 M messages flat out: sample RSS as it goes.
        term, _ = run(["replay", str(big), "--max"], tmp, env, "memory")
        samples = []
        start = time.monotonic()
        while term.proc.poll() is None and time.monotonic() - start < 300:
            time.sleep(2)
            samples.append(rss_mib(term.proc.pid))
            if term.saw("replay ended") or (len(samples) > 3 and samples[-1] == samples[-2] == samples[-3]):
                break
        term.stop()
        third = max(1, len(samples) // 3)
        print(f"RSS over 1 M messages: {samples[third - 1]:.0f} MiB after a third of the run, "
              f"{max(samples):.0f} MiB peak, {samples[-1]:.0f} MiB at the end ({len(samples)} samples)")


if __name__ == "__main__":
    main()
