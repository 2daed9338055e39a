"""What "each observation stored once" costs: reading the store at a start, and a look-up pass.

    python bench/dedupe_cost.py [--lines 1000000]

Writes a store of `lines` stored observations (the building simulator's shape: 24 stations every
5 min, five variables, tags and scores), then times, best of three:
- `scan_stored`: the pass over the whole stored stream at the first batch of a run (the duplicate
  check's memory and each station's floor);
- `recall_stored`: one look-up pass (a re-delivery older than the memory), all stations from the
  middle of the span, reading the whole store (no index), and through the block index the scan
  filled (`StoreIndex`: only the blocks that can hold the instants asked for);
and the memory the check holds after the scan (tracemalloc), per remembered instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import orjson

sys.path.insert(0, os.environ.get("MASS_BENCH_ROOT") or str(Path(__file__).resolve().parents[1]))


def write_store(db: Path, lines: int) -> None:
    stations = [f"b{b}-f{f}-{room}" for b in range(1, 4) for f in range(1, 5) for room in ("office", "meeting")]
    with open(db / "consumer_stream.jsonl", "wb") as fh:
        for i in range(lines):
            step = i // len(stations)
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_736_121_600 + 300 * step))
            s = stations[i % len(stations)]
            fh.write(orjson.dumps({"ts": ts, "station": s, "source": "simulator:building",
                                   "tags": {"building": s[:2], "floor": s[4], "room": s[6:]},
                                   "temp_c": 20 + step % 50 * 0.01, "humidity_pct": 40.0, "co2_ppm": 450.0,
                                   "occupancy": 3.0, "energy_kwh": 0.05,
                                   "anomaly_score": {"temp_c": 0.0, "humidity_pct": 0.0}}) + b"\n")


def best(fn, runs: int = 3) -> float:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args()
    from mass_tui.lateness import REMEMBERED, OrderCheck
    from mass_tui.store import JsonlStore
    from mass_tui.stored_keys import StoreIndex, recall_stored, scan_stored

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp)
        write_store(db, args.lines)
        mb = (db / "consumer_stream.jsonl").stat().st_size / 2**20
        with JsonlStore(db) as store:
            scan = best(lambda: scan_stored(store, REMEMBERED))
            middle = 1_736_121_600 + 300 * (args.lines // 48)
            stations = [f"b{b}-f{f}-{room}" for b in range(1, 4) for f in range(1, 5) for room in ("office", "meeting")]
            recall = best(lambda: recall_stored(store, stations, middle, REMEMBERED))
            index = StoreIndex()
            scan_stored(store, REMEMBERED, index)
            indexed = best(lambda: recall_stored(store, stations, middle, REMEMBERED, index))
            tracemalloc.start()
            check = OrderCheck(store=store)
            check._load()
            held, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    print(f"store: {args.lines:,} lines, {mb:.0f} MiB")
    print(f"scan at start: {scan:.2f} s ({scan / args.lines * 1e6:.2f} s per million lines)")
    print(f"one look-up pass: {recall:.2f} s over the whole store, {indexed:.3f} s through the block index")
    print(f"memory after the scan: {held / 2**20:.1f} MiB for {check.remembered():,} instants "
          f"({held / max(1, check.remembered()):.0f} B each)")


if __name__ == "__main__":
    main()
