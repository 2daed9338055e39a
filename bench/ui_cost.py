"""The UI in a real pseudo-terminal: bytes written, CPU share, key-to-screen latency under load, memory.

    python bench/ui_cost.py [--seconds 20] [--keys 40] [--rounds 2] [--skip-memory]
                            [--parts idle,paced,keys,memory] [--loads replay,simulate] [--modes process,...]
                            [--warmup 6]

Every figure comes from `mass` running in a 160x48 pty, as a person would
run it; this script only reads what the processes write and their /proc
counters (CPU and RSS are those of the UI's process plus its engine
process, when it has one):

1. Idle: a replay that has ended (nothing changes): bytes/s and CPU.
2. Paced: 5 k msg/s, 20 stations, one message at a time: bytes/s, CPU,
   ingest-to-screen latency; then paused.
3. Keys while ingesting flat out (a 1 M-line replay at --max, and `mass
   simulate --max`): `Z`/`z` sent through the pty, and the time the new z
   reached the terminal (logged by the app after the refresh that drew it,
   same monotonic clock): p50, p99; with them the bytes/s to the terminal,
   CPU, peak RSS, messages/s and ingest-to-screen latency of the same runs.
   Four ways to run the engine, in the same run, alternating:
   `process` (MASS_UI_ENGINE=process: the engine in its own process at nice
   +10, the default), `process nice 0` (MASS_ENGINE_NICE=0: the same at the
   UI's priority), `thread bounded` (MASS_UI_ENGINE=thread MASS_UI_SLICES=1: the
   engine in a thread of the UI's process, 1 ms interpreter switch interval,
   256 KB replay batches) and `thread plain` (MASS_UI_SLICES=0: 5 ms, 1 MB).
   Only keys sent while the replay still ran count.
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


MODES = {
    "process": {"MASS_UI_ENGINE": "process"},
    "process nice 0": {"MASS_UI_ENGINE": "process", "MASS_ENGINE_NICE": "0"},
    "thread bounded": {"MASS_UI_ENGINE": "thread", "MASS_UI_SLICES": "1"},
    "thread plain": {"MASS_UI_ENGINE": "thread", "MASS_UI_SLICES": "0"},
}


def tree(pid: int) -> list[int]:
    """The process and its descendants (the UI, its engine process, multiprocessing's resource tracker)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """CPU seconds of the process and its descendants (each counted while it lives)."""
    total = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK
    return total


def rss_mib(pid: int, children: bool = True) -> float:
    """Resident memory of the process and (unless `children` is False) its descendants."""
    total = 0.0
    for p in tree(pid) if children else [pid]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


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
        self.ended_at: float | None = None  # when "replay ended" first reached the terminal
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
                if self.ended_at is None and b"replay ended" in self.tail[-len(chunk) - 16:]:
                    self.ended_at = time.monotonic()

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


def key_latency(args: list[str], tmp: Path, env: dict[str, str], name: str, keys: int,
                warmup: float = 6.0) -> dict[str, float]:
    """Send Z and z alternately while the app ingests: key-to-screen latencies (ms) of the keys sent
    before the ingest ended, and over the same window bytes/s, CPU share, peak RSS, messages shown."""
    term, stats = run(args, tmp, env, name)
    time.sleep(warmup)  # started, and ingesting (longer: more episodes and stations on screen)
    b0, c0, t0 = term.count(), cpu_seconds(term.proc.pid), time.monotonic()
    sent, rss = [], []
    for i in range(keys):
        sent.append(term.type("Z" if i % 2 == 0 else "z"))
        time.sleep(0.25)
        rss.append(rss_mib(term.proc.pid))
    time.sleep(1.0)
    b1, c1, t1 = term.count(), cpu_seconds(term.proc.pid), time.monotonic()
    term.stop()
    st = json.loads(stats.read_text())
    shown = st["key_shown"]
    ended = term.ended_at if term.ended_at is not None else float("inf")
    n = min(len(sent), len(shown))
    lat = [(shown[i] - sent[i]) * 1000 for i in range(n) if sent[i] < ended]
    return {"lat": lat, "keys": len(lat), "cpu": (c1 - c0) / (t1 - t0), "bytes": (b1 - b0) / (t1 - t0),
            "rss": max(rss), "messages": st["messages"], "episodes": st.get("episodes", 0),
            "ingest_p50": st["p50"], "ingest_p99": st["p99"]}


def report(load: str, mode: str, runs: list[dict]) -> None:
    lat = [x for r in runs for x in r["lat"]]
    cpu = sum(r["cpu"] for r in runs) / len(runs)
    kb = sum(r["bytes"] for r in runs) / len(runs) / 1024
    p50s = sorted(r["ingest_p50"] for r in runs if r["ingest_p50"] is not None)
    p99s = [r["ingest_p99"] for r in runs if r["ingest_p99"] is not None]
    ingest = f"p50 {p50s[len(p50s) // 2] * 1000:.0f} ms, p99 {max(p99s) * 1000:.0f} ms" if p50s else "n/a"
    print(f"keys during {load}, {mode}: key-to-screen p50 {pct(lat, 0.5):.0f} ms, p99 {pct(lat, 0.99):.0f} ms, "
          f"max {max(lat, default=float('nan')):.0f} ms ({len(lat)} keys while ingesting); "
          f"{kb:.1f} KB/s to the terminal; CPU {cpu * 100:.0f}% of one core (UI + engine); "
          f"RSS peak {max(r['rss'] for r in runs):.0f} MiB; ingest-to-screen {ingest}; "
          f"{sum(r['messages'] for r in runs) // len(runs):,} messages shown per run, "
          f"{max(r.get('episodes', 0) for r in runs):,} episodes listed at most")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the engine modes per load")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--warmup", type=float, default=6.0,
                    help="seconds of ingest before the first key (the UI has more to draw later)")
    ap.add_argument("--parts", default="idle,paced,keys,memory",
                    help="which measurements, comma-separated: idle, paced, keys, memory")
    ap.add_argument("--loads", default="replay,simulate", help="loads for the key part: replay, simulate")
    ap.add_argument("--modes", default=",".join(MODES),
                    help=f"engine modes for the key part, comma-separated: {', '.join(MODES)}")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if args.skip_memory:
        parts.discard("memory")
    modes = {m: MODES[m] for m in args.modes.split(",")}  # a KeyError names a mode that does not exist
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLORTERM": "",
               "HOME": str(tmp), "LANG": "C.UTF-8", "MASS_UI_ENGINE": "process"}
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

        if "idle" in parts:
            idle(tmp, env)
        if "paced" in parts:
            paced(tmp, env, args.seconds)
        big = tmp / "million.jsonl"
        loads = {"1 M-line replay --max": ["replay", str(big), "--max"], "simulate --max": ["simulate", "--max"]}
        chosen = {name: cmd for name, cmd in loads.items() if any(w in name for w in args.loads.split(","))}
        if "memory" in parts or ("keys" in parts and any("replay" in name for name in chosen)):
            write_recording(big, 1_000_000)
        if "keys" in parts:
            keys(tmp, env, chosen, modes, args.rounds, args.keys, args.warmup)
        if "memory" in parts:
            memory(tmp, env, big)


def idle(tmp: Path, env: dict[str, str]) -> None:
    """1. Idle: a replay that has ended (nothing changes): bytes/s and CPU."""
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


def paced(tmp: Path, env: dict[str, str], seconds: float) -> None:
    """2. 5 k msg/s, one message at a time; then paused."""
    rec = tmp / "stream.jsonl"
    write_recording(rec, int(5000 * (seconds + 25)))
    term, stats = run(["replay", str(rec), "--speed", "20000"], tmp, env, "paced")
    time.sleep(6)
    load_bytes, load_cpu = window(term, seconds)
    term.type(" ")
    time.sleep(1.5)
    paused_bytes, paused_cpu = window(term, 5)
    term.type(" ")
    term.stop()
    st = json.loads(stats.read_text())
    print(f"5 k msg/s (160x48, {seconds:g} s): {load_bytes / 1024:.1f} KB/s to the terminal, CPU "
          f"{load_cpu * 100:.0f}% of one core (UI and engine processes)")
    print(f"  paused: {paused_bytes / 1024:.2f} KB/s, CPU {paused_cpu * 100:.1f}%")
    print(f"  ingest-to-screen latency: p50 {st['p50'] * 1000:.0f} ms, p99 {st['p99'] * 1000:.0f} ms "
          f"({st['messages']} messages)")


def keys(tmp: Path, env: dict[str, str], loads: dict[str, list[str]], modes: dict[str, dict[str, str]],
         rounds: int, count: int, warmup: float = 6.0) -> None:
    """3. Keys while ingesting flat out: the engine in a process, or in a thread with bounded slices or not."""
    for load, cmd in loads.items():
        results: dict[str, list[dict]] = {mode: [] for mode in modes}
        for r in range(rounds):
            for mode, mode_env in modes.items():
                tag = f"{load[:6]}-{mode.replace(' ', '-')}-{r}"
                results[mode].append(key_latency(cmd, tmp, {**env, **mode_env}, tag, count, warmup))
        for mode, runs in results.items():
            report(load, mode, runs)


def memory(tmp: Path, env: dict[str, str], big: Path) -> None:
    """4. Memory over 1 M messages flat out: sample RSS as it goes (the UI's process, and with its engine)."""
    term, _ = run(["replay", str(big), "--max"], tmp, env, "memory")
    samples, ui_only = [], []
    start = time.monotonic()
    while term.proc.poll() is None and time.monotonic() - start < 300:
        time.sleep(2)
        if term.saw("replay ended"):
            break
        samples.append(rss_mib(term.proc.pid))
        ui_only.append(rss_mib(term.proc.pid, children=False))
        if len(samples) > 3 and samples[-1] == samples[-2] == samples[-3]:
            break
    term.stop()
    third = max(1, len(samples) // 3)
    print(f"RSS over 1 M messages (UI + engine): {samples[third - 1]:.0f} MiB after a third of the run, "
          f"{max(samples):.0f} MiB peak, {samples[-1]:.0f} MiB at the end ({len(samples)} samples); "
          f"the UI's process alone {max(ui_only):.0f} MiB peak")


if __name__ == "__main__":
    main()
