"""Batch detector throughput on 1 M values, beside an older build and River in the same run.

    python bench/detector_throughput.py [--n 1000000] [--baseline-ref 50f2da0] [--rounds 3]

"full path" is what the engine runs per series: the ensemble's views, its daily profile, the
calibration and the episodes (`SeriesModel`) on 1-minute data with times; for a build before
calibration, the ensemble's anomaly_score. "ensemble views" is the raw ensemble alone, as the
older build's figure was measured. Each worker is a fresh process; with --baseline-ref the two
builds take turns and the table gives medians and their ratio. Times are CPU time of the worker
process (time.process_time), which a shared, loaded machine disturbs less than wall time; still,
compare ratios, not absolute figures, across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, os.environ.get("MASS_BENCH_ROOT") or str(HERE.parents[1]))


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def river_rate(x: np.ndarray, limit: int = 200_000) -> float | None:
    try:
        from river import anomaly, stats, utils
    except ImportError:
        return None
    import inspect

    if "window_size" in inspect.signature(anomaly.GaussianScorer).parameters:
        scorer = anomaly.GaussianScorer(window_size=48, grace_period=12)
    else:
        scorer = anomaly.GaussianScorer(utils.Rolling(stats.Var(), 48), grace_period=12)
    values = x[:limit].tolist()
    start = time.process_time()
    for v in values:
        scorer.score_one(None, v)
        scorer.learn_one(None, v)
    return len(values) / (time.process_time() - start)


def worker(n: int) -> dict:
    from detectors.cusum import Cusum
    from detectors.ensemble import Ensemble
    from detectors.ewma import EwmaChart
    from detectors.rules import PressureTendency
    from detectors.zscore import RollingZScore

    rng = np.random.default_rng(0)
    x = 1013 + np.cumsum(rng.normal(0, 0.05, n)) * 0.1 + rng.normal(0, 0.3, n)
    t = 1.7e9 + np.arange(n) * 60.0
    try:
        from detectors.series import SeriesModel

        def full() -> None:
            SeriesModel(Ensemble()).step(x, t)
    except ImportError:  # a build before calibration

        def full() -> None:
            Ensemble().anomaly_score(x, t)

    cases = {
        "zscore": lambda: RollingZScore(window=48).step(x),
        "ewma": lambda: EwmaChart(window=48).step(x),
        "cusum": lambda: Cusum(window=48).step(x),
        "pressure_tendency (1-min data, 3 h)": lambda: PressureTendency().step(x, t),
        "ensemble views": lambda: Ensemble().step(x),
        "full path (calibrated, with times)": full,
    }
    return {name: n / best_of(fn) for name, fn in cases.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--baseline-ref", help="also measure this git commit, taking turns with this tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.n)))
        return
    from _baseline import alternate, median_of

    runs = alternate(HERE, ["--n", str(args.n)], args.baseline_ref, args.rounds)
    rng = np.random.default_rng(0)
    river = river_rate(1013 + rng.normal(0, 0.3, 200_000))
    names = list(runs["now"][0])
    print(f"values per run: {args.n:,}; medians of {args.rounds} fresh processes per build")
    head = f"{'detector':38s} {'now (M/s)':>10s}"
    if args.baseline_ref:
        head += f" {args.baseline_ref + ' (M/s)':>16s} {'cost ratio':>10s}"
    print(head + f" {'x River':>8s}")
    for name in names:
        now = median_of(runs["now"], name)
        line = f"{name:38s} {now / 1e6:10.2f}"
        if args.baseline_ref:
            old = median_of(runs[args.baseline_ref], name)
            line += f" {old / 1e6:16.2f} {old / now:10.2f}"
        line += f" {now / river:8.0f}" if river else "      n/a"
        print(line)
    if river:
        print(f"{'River GaussianScorer (score+learn)':38s} {river / 1e6:10.2f}")
    print("cost ratio: the older build's samples/s over this one's (2.0 = this build costs twice as much)")


if __name__ == "__main__":
    main()
