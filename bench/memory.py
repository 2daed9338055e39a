"""Memory per live series, and the RSS of 2,000 stations x 6 variables, beside an older build.

    python bench/memory.py [--stations 2000] [--readings 400] [--baseline-ref 50f2da0]

Each station sends `readings` one-minute observations of six variables through the engine (in
batches of 100 rows across all stations, as a replay or a busy consumer would), enough to fill
every window, profile and calibration block. Reported: the process RSS growth, and the bytes
Python allocated per (station, variable) series measured with tracemalloc on a tenth of the
stations (everything the engine keeps for them: detectors, rules, labels, dedupe keys).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import orjson

HERE = Path(__file__).resolve()
sys.path.insert(0, os.environ.get("MASS_BENCH_ROOT") or str(HERE.parents[1]))

VARIABLES = ("temp_c", "humidity_pct", "pressure_hpa", "wind_mps", "gust_mps", "pm25_ugm3")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def feed(engine, stations: int, readings: int) -> None:
    rng = np.random.default_rng(0)
    for start in range(0, readings, 100):
        raws = []
        for i in range(start, min(readings, start + 100)):
            for s in range(stations):
                v = rng.normal(0, 1, len(VARIABLES)).tolist()
                raws.append(orjson.dumps({
                    "ts": 1.7e9 + i * 60.0, "station": f"st{s:05d}", "source": "bench",
                    "temp_c": 15 + v[0], "humidity_pct": 60 + 5 * v[1], "pressure_hpa": 1010 + 0.3 * v[2],
                    "wind_mps": 4 + abs(v[3]), "gust_mps": 8 + abs(v[4]), "pm25_ugm3": 9 + abs(v[5]),
                }))
        engine.ingest(raws)


def worker(stations: int, readings: int) -> dict:
    from mass_tui.config import load_config
    from mass_tui.engine import Engine

    empty = Path(tempfile.mkdtemp()) / "mass.toml"
    empty.write_text("")
    config = load_config(empty, env={}, dotenv_file=None)
    sample = max(1, stations // 10)
    tracemalloc.start()
    engine = Engine(config)
    before = tracemalloc.get_traced_memory()[0]
    feed(engine, sample, readings)
    per_series = (tracemalloc.get_traced_memory()[0] - before) / (sample * len(VARIABLES))
    tracemalloc.stop()
    del engine
    engine = Engine(config)
    rss0 = rss_bytes()
    feed(engine, stations, readings)
    rss1 = rss_bytes()
    return {"bytes_per_series": per_series, "rss_growth": rss1 - rss0, "rss": rss1,
            "series": len(engine.bank.series)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=2000)
    ap.add_argument("--readings", type=int, default=400)
    ap.add_argument("--baseline-ref", help="also measure this git commit")
    ap.add_argument("--baseline-stations", type=int, default=300,
                    help="stations for the older build (it took 5.2 GiB for 2,000: mind a shared machine)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.stations, args.readings)))
        return
    from _baseline import ROOT, checkout, run_worker

    runs = {"now": run_worker(HERE, ROOT, ["--stations", str(args.stations), "--readings", str(args.readings)])}
    if args.baseline_ref:
        with checkout(args.baseline_ref) as old:
            runs[args.baseline_ref] = run_worker(HERE, old, ["--stations", str(args.baseline_stations),
                                                             "--readings", str(args.readings)])
    print(f"{len(VARIABLES)} variables per station, {args.readings} one-minute readings each:")
    for build, r in runs.items():
        per = r["rss_growth"] / max(r["series"], 1)
        print(f"  {build:10s} {r['series'] // len(VARIABLES):5d} stations: {r['bytes_per_series'] / 1024:7.1f} KiB "
              f"per series (tracemalloc), RSS +{r['rss_growth'] / 2**20:7.1f} MiB ({per / 1024:.1f} KiB per series), "
              f"{r['rss'] / 2**20:7.1f} MiB in all")


if __name__ == "__main__":
    main()
