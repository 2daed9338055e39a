"""`mass replay --headless --max` on a 200 k-observation JSONL, against a bare json.loads loop.

    python bench/replay_throughput.py [--n 200000]

Both run in this process on the same file, so the ratio holds across machines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_recording(path: Path, n: int) -> None:
    rng = np.random.default_rng(1)
    stations = [f"st-{i}" for i in range(10)]
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({
                "ts": "2024-01-01T00:00:00Z" if i == 0 else 1704067200 + (i // 10) * 60,
                "station": stations[i % 10], "source": "bench",
                "temp_c": round(10 + rng.normal(0, 1), 2), "humidity_pct": round(60 + rng.normal(0, 3), 1),
                "pressure_hpa": round(1010 + rng.normal(0, 0.5), 2), "wind_mps": round(abs(rng.normal(4, 1)), 2),
                "gust_mps": round(abs(rng.normal(7, 2)), 2), "pm25_ugm3": round(abs(rng.normal(9, 2)), 1),
            }) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "rec.jsonl"
        write_recording(rec, n)
        start = time.perf_counter()
        with rec.open("rb") as fh:
            count = sum(1 for line in fh if json.loads(line))
        bare = time.perf_counter() - start
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mass_tui", "replay", str(rec), "--headless", "--max", "-q",
             "--data-dir", str(Path(tmp) / "d")],
            cwd=tmp, capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"},
        )
        replay = time.perf_counter() - start
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["observations"] == count == n, summary
    print(f"{n:,} observations, 10 stations x 6 variables")
    print(f"  bare json.loads loop      {n / bare:12,.0f} obs/s")
    print(f"  mass replay --max (wall)  {n / replay:12,.0f} obs/s   (incl. process start; "
          f"{summary['anomalies']} anomalies, all stored)")
    print(f"  ratio replay / json.loads {bare / replay:12.2f}x")


if __name__ == "__main__":
    main()
