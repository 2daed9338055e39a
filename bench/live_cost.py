"""Live cost: microseconds to push one 6-variable observation through the whole bank.

    python bench/live_cost.py [--n 3000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mass_tui.config import load_config  # noqa: E402
from mass_tui.engine import Engine  # noqa: E402
from sources.schema import Observation  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    n = ap.parse_args().n
    engine = Engine(load_config(None, env={}, dotenv_file=None))
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
        start = time.perf_counter()
        engine.process([o])
        costs.append((time.perf_counter() - start) * 1e6)
    costs.sort()
    print(f"one 6-variable observation through the bank (ensemble + rules), {len(costs)} samples:")
    print(f"  p50 {statistics.median(costs):.0f} µs   p99 {costs[int(len(costs) * 0.99)]:.0f} µs")


if __name__ == "__main__":
    main()
