"""Batch detector throughput on 1 M values, beside River's GaussianScorer in the same run.

    python bench/detector_throughput.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.cusum import Cusum  # noqa: E402
from detectors.ensemble import Ensemble  # noqa: E402
from detectors.ewma import EwmaChart  # noqa: E402
from detectors.rules import PressureTendency  # noqa: E402
from detectors.zscore import RollingZScore  # noqa: E402


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def river_rate(x: np.ndarray, limit: int = 200_000) -> float | None:
    try:
        from river import anomaly, utils
    except ImportError:
        return None
    scorer = anomaly.GaussianScorer(window_size=48, grace_period=12) if _has_window(anomaly) else None
    scorer = scorer or anomaly.GaussianScorer(utils.Rolling(__import__("river").stats.Var(), 48), grace_period=12)
    values = x[:limit].tolist()
    start = time.perf_counter()
    for v in values:
        scorer.score_one(None, v)
        scorer.learn_one(None, v)
    return len(values) / (time.perf_counter() - start)


def _has_window(anomaly) -> bool:
    import inspect

    return "window_size" in inspect.signature(anomaly.GaussianScorer).parameters


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    n = ap.parse_args().n
    rng = np.random.default_rng(0)
    x = 1013 + np.cumsum(rng.normal(0, 0.05, n)) * 0.1 + rng.normal(0, 0.3, n)
    t = 1.7e9 + np.arange(n) * 60.0
    cases = {
        "zscore": lambda: RollingZScore(window=48).step(x),
        "ewma": lambda: EwmaChart(window=48).step(x),
        "cusum": lambda: Cusum(window=48).step(x),
        "pressure_tendency (1-min data, 3 h)": lambda: PressureTendency().step(x, t),
        "ensemble (5 views)": lambda: Ensemble().step(x),
    }
    river = river_rate(x)
    print(f"values per run: {n:,}")
    print(f"{'detector':38s} {'samples/s':>14s} {'x River':>9s}")
    for name, fn in cases.items():
        rate = n / best_of(fn)
        ratio = f"{rate / river:9.0f}" if river else "      n/a"
        print(f"{name:38s} {rate:14,.0f} {ratio}")
    if river:
        print(f"{'River GaussianScorer (score+learn)':38s} {river:14,.0f} {1:9.0f}")
    else:
        print("River not installed (pip install -e '.[bench]'): no baseline")


if __name__ == "__main__":
    main()
