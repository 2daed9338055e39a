"""What the alert path costs: a replay with alerts off, on, and on with a silence and a mute window;
and one observation at a time (the live case), off and on.

    python bench/alert_cost.py [--n 200000] [--live 5000]

Alerts "on" here have no channel (notices are journaled, not delivered):
the cost measured is the engine's side (episodes, no data, muting,
grouping, the SQLite state), which runs in the scoring thread. Ratios are
taken within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.replay_throughput import write_recording  # noqa: E402


def replay(rec: Path, tmp: Path, name: str, env: dict[str, str], config: str = "") -> float:
    work = tmp / name
    work.mkdir()
    if config:
        (work / "mass.toml").write_text(config)
    proc = subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(rec), "--headless", "--max", "-q"],
                          cwd=work, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                                          "PYTHONPATH": str(ROOT), **env})
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    summary = json.loads(proc.stdout.splitlines()[-1])
    return summary["obs_per_s"]


def live(n: int, alerts: bool, tmp: Path) -> list[float]:
    from mass_tui.alerts.service import AlertService
    from mass_tui.config import load_config
    from mass_tui.engine import Engine

    env = {"MASS_DATA_DIR": str(tmp / f"live-{alerts}"), "ALERTS_ENABLED": str(alerts).lower()}
    cfg = load_config(None, env=env, dotenv_file=None)
    service = AlertService.from_config(cfg, ticker=False) if alerts else None
    engine = Engine(cfg, None, service)
    out = []
    for i in range(n):
        raw = json.dumps({"ts": 1704067200 + i * 60, "station": f"st-{i % 10}", "temp_c": 10 + (i % 7) * 0.1,
                          "humidity_pct": 60.0 + (i % 5), "pressure_hpa": 1010.0, "wind_mps": 4.0,
                          "gust_mps": 7.0 + (i % 3), "pm25_ugm3": 9.0}).encode()
        t = time.perf_counter()
        engine.ingest([raw])
        out.append(time.perf_counter() - t)
    if service is not None:
        service.close(0.1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--live", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rec = tmp / "rec.jsonl"
        write_recording(rec, args.n)
        mute = ('[[alerts.mute_times]]\nname = "nights"\nmatchers = ["station=~st-[0-4]"]\n'
                'times = [{start_time = "22:00", end_time = "24:00"}]\n')
        runs: dict[str, list[float]] = {"off": [], "on": [], "muted": []}
        for k in range(3):  # interleaved, best of three: the machine is shared
            runs["off"].append(replay(rec, tmp, f"off{k}", {}))
            runs["on"].append(replay(rec, tmp, f"on{k}", {"ALERTS_ENABLED": "true"}))
            runs["muted"].append(replay(rec, tmp, f"muted{k}", {"ALERTS_ENABLED": "true"}, mute))
        off, on, muted = (max(runs[k]) for k in ("off", "on", "muted"))
        print(f"replay {args.n} observations, 10 stations: alerts off {off:,.0f} obs/s, on {on:,.0f} obs/s "
              f"({on / off:.2f}x), on with a mute window {muted:,.0f} obs/s ({muted / off:.2f}x)")
        a_off = live(args.live, False, tmp)[100:]
        a_on = live(args.live, True, tmp)[100:]

        def q(xs: list[float], p: float) -> float:
            return statistics.quantiles(xs, n=100)[int(p) - 1] * 1e6

        print(f"one observation at a time ({args.live}): alerts off p50 {q(a_off, 50):.0f} us, p99 {q(a_off, 99):.0f} "
              f"us; on p50 {q(a_on, 50):.0f} us, p99 {q(a_on, 99):.0f} us")


if __name__ == "__main__":
    main()
