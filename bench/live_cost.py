"""Live cost: microseconds to push one 6-variable observation through the engine and its bank.

    python bench/live_cost.py [--n 3000] [--baseline-ref 50f2da0] [--rounds 3]

One station, one message per batch (the live path, plain floats), built-in default configuration.
With --baseline-ref the older build runs in turns with this one (fresh processes each), and the
table gives medians and their ratio. Times are the worker's CPU time (time.process_time, coarse
for one observation but less disturbed by a loaded machine than wall time): compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, os.environ.get("MASS_BENCH_ROOT") or str(HERE.parents[1]))


def worker(n: int) -> dict:
    from mass_tui.config import load_config
    from mass_tui.engine import Engine
    from sources.schema import Observation

    empty = Path(tempfile.mkdtemp()) / "mass.toml"
    empty.write_text("")
    engine = Engine(load_config(empty, env={}, dotenv_file=None))
    obs = [
        Observation(1.7e9 + i * 60.0, "bench", "bench", {
            "temp_c": 10 + (i % 17) * 0.1, "humidity_pct": 60 + (i % 5), "pressure_hpa": 1010 - (i % 11) * 0.05,
            "wind_mps": 3 + (i % 3), "gust_mps": 6 + (i % 4), "pm25_ugm3": 8 + (i % 6),
        })
        for i in range(n)
    ]
    for o in obs[:300]:  # warm the baselines
        engine.process([o])
    costs = []
    for o in obs[300:]:
        start = time.process_time()
        engine.process([o])
        costs.append((time.process_time() - start) * 1e6)
    costs.sort()
    return {"p50": statistics.median(costs), "p99": costs[int(len(costs) * 0.99)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--baseline-ref", help="also measure this git commit, taking turns with this tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.n)))
        return
    from _baseline import alternate, median_of

    runs = alternate(HERE, ["--n", str(args.n)], args.baseline_ref, args.rounds)
    print(f"one 6-variable observation through the engine (ensemble, calibration, relation view, rules), "
          f"{args.n - 300} samples, medians of {args.rounds} processes per build:")
    for build, results in runs.items():
        print(f"  {build:10s} p50 {median_of(results, 'p50'):6.0f} µs   p99 {median_of(results, 'p99'):6.0f} µs")
    if args.baseline_ref:
        old = runs[args.baseline_ref]
        print(f"  cost ratio (now / {args.baseline_ref}): p50 "
              f"{median_of(runs['now'], 'p50') / median_of(old, 'p50'):.2f}x, "
              f"p99 {median_of(runs['now'], 'p99') / median_of(old, 'p99'):.2f}x")


if __name__ == "__main__":
    main()
