"""Two builds' scores side by side: full-precision dumps and the stores a replay wrote.

    python bench/scoring_compare.py --dumps A.pkl B.pkl      # from bench/scoring_cost.py --dump
    python bench/scoring_compare.py --stores DIR_A DIR_B     # --data-dir of two `mass replay` runs

Dumps: per batch, every scored column's anomaly_score (float64, NaN where absent) and every
anomaly with all its fields. Prints how many scores are bit-identical, the largest relative
difference of the others, and whether the anomalies (time, station, variable, detector,
severity, reason, episode id, start) are the same, their scores within 1e-9 relative.
Stores: the anomalies byte for byte, and the anomaly_score object of every consumer_stream line (rotated
segments included, oldest first).
Exits 1 when anything differs beyond 1e-9 relative.
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
from pathlib import Path

import numpy as np
import orjson

TOL = 1e-9


def _close(a: float, b: float) -> bool:
    if a == b or (a != a and b != b):
        return True
    return abs(a - b) <= TOL * max(abs(a), abs(b))


def compare_dumps(a_path: Path, b_path: Path) -> bool:
    a, b = (pickle.loads(p.read_bytes()) for p in (a_path, b_path))
    if len(a) != len(b):
        print(f"  batches differ: {len(a)} vs {len(b)}")
        return False
    same = total = 0
    worst = 0.0
    ok = True
    anomalies = exact_anomalies = 0
    for (sa, aa), (sb, ab) in zip(a, b, strict=True):
        if sa.keys() != sb.keys():
            print(f"  scored columns differ: {sorted(sa)} vs {sorted(sb)}")
            return False
        for k in sa:
            x, y = sa[k], sb[k]
            both_nan = np.isnan(x) & np.isnan(y)
            eq = (x == y) | both_nan
            same += int(eq.sum())
            total += x.size
            if not eq.all():
                d = np.abs(x - y)[~eq] / np.maximum(np.abs(x), np.abs(y))[~eq]
                worst = max(worst, float(np.nanmax(d)) if d.size else math.inf)
        anomalies += len(aa)
        if len(aa) != len(ab):
            print(f"  anomaly count differs in a batch: {len(aa)} vs {len(ab)}")
            ok = False
            continue
        for ra, rb in zip(aa, ab, strict=True):
            if ra == rb:
                exact_anomalies += 1
                continue
            text_a = [v for v in ra if not isinstance(v, float)]
            text_b = [v for v in rb if not isinstance(v, float)]
            floats = all(_close(x, y) for x, y in zip(ra, rb, strict=True) if isinstance(x, float))
            if text_a != text_b or not floats:
                print(f"  anomaly differs:\n    {ra}\n    {rb}")
                ok = False
    print(f"  scores: {same}/{total} bit-identical, largest relative difference {worst:.3g}")
    print(f"  anomalies: {anomalies}, {exact_anomalies} identical in every field")
    return ok and worst <= TOL


def _segments(db: Path, name: str) -> list[Path]:
    """A stored file's rotated segments, oldest first (NAME.<date>.<k>.jsonl), then NAME.jsonl."""
    rotated = sorted(db.glob(f"{name}.*.jsonl"), key=lambda p: (p.name.split(".")[1], int(p.name.split(".")[2])))
    return [*rotated, db / f"{name}.jsonl"]


def _lines(db: Path, name: str):
    for path in _segments(db, name):
        with open(path, "rb") as fh:
            yield from fh


def compare_stores(a_dir: Path, b_dir: Path) -> bool:
    an_a, an_b = (b"".join(_lines(d / "db", "anomalies")) for d in (a_dir, b_dir))
    count = an_a.count(b"\n")
    print(f"  anomalies: {count} lines, {'identical' if an_a == an_b else 'DIFFERENT'}")
    lines = differ = 0
    for la, lb in zip(_lines(a_dir / "db", "consumer_stream"), _lines(b_dir / "db", "consumer_stream"), strict=True):
        lines += 1
        if la == lb:
            continue
        if orjson.loads(la).get("anomaly_score") != orjson.loads(lb).get("anomaly_score"):
            differ += 1
    print(f"  consumer_stream: {lines} lines, {differ} with a different anomaly_score")
    return an_a == an_b and differ == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dumps", nargs=2, type=Path)
    ap.add_argument("--stores", nargs=2, type=Path)
    args = ap.parse_args()
    ok = True
    if args.dumps:
        ok &= compare_dumps(*args.dumps)
    if args.stores:
        ok &= compare_stores(*args.stores)
    print("SAME" if ok else "DIFFERENT")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
