"""CPU seconds of scoring (Engine._score_rows / _score_row) in a headless flat-out replay, beside another build.

    python bench/scoring_cost.py FILE [FILE ...] [--base DIR] [--rounds 3]
    [PYTHONPATH=DIR] python bench/scoring_cost.py FILE --dump OUT.pkl   # full-precision output, for a diff

Each measurement is a fresh process that replays FILE through an engine without a store (decode,
order check and scoring as `mass replay --headless --max` runs them) and adds up the thread CPU
time (time.thread_time) spent in the engine's scoring methods, which a shared machine disturbs
less than wall time. With --base DIR (a checkout of another build, e.g. `git archive main | tar -x
-C DIR`) the two builds take turns and the table gives medians and their ratio.

--dump writes, per batch, every scored column's anomaly_score at full precision and every anomaly
(all fields), so two builds can be compared exactly (bench/scoring_compare.py).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def worker(path: Path, dump: Path | None) -> dict:
    from mass_tui.config import load_config
    from mass_tui.engine import Engine
    from mass_tui.replay import replay_file

    spent = {"cpu": 0.0, "wall": 0.0, "faults": 0}

    def timed(f):
        def g(*a, **k):
            c, w = time.thread_time(), time.perf_counter()
            faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            try:
                return f(*a, **k)
            finally:
                spent["cpu"] += time.thread_time() - c
                spent["wall"] += time.perf_counter() - w
                spent["faults"] += resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - faults
        return g

    Engine._score_rows = timed(Engine._score_rows)
    Engine._score_row = timed(Engine._score_row)
    empty = Path(tempfile.mkdtemp()) / "mass.toml"
    empty.write_text("")
    engine = Engine(load_config(empty, env={}, dotenv_file=None))
    out: list = []

    def keep(result) -> None:
        if dump is not None:
            out.append(({k: v.copy() for k, v in result.scores.items()},
                        [tuple(getattr(a, f) for f in a.__slots__) for a in result.anomalies]))

    c0 = time.process_time()
    replay_file(engine, path, on_batch=keep)
    total = time.process_time() - c0
    if dump is not None:
        with open(dump, "wb") as fh:
            pickle.dump(out, fh)
    return {"score_cpu": spent["cpu"], "score_wall": spent["wall"], "page_faults": spent["faults"], "replay_cpu": total,
            "anomalies": engine.counters.anomalies}


def run(root: Path, path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, str(HERE), "--worker", str(path)]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--base", type=Path, help="another build's source tree, run in turns with this one")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dump", type=Path)
    args = ap.parse_args()
    if args.worker or args.dump:
        print(json.dumps(worker(args.files[0], args.dump)))
        return
    roots = {"this": HERE.parents[1]}
    if args.base:
        roots = {"base": args.base.resolve(), **roots}
    print(f"load average {os.getloadavg()[0]:.2f}; scoring CPU s (median of {args.rounds}), replay CPU s")
    for path in args.files:
        got: dict[str, list[dict]] = {k: [] for k in roots}
        for _ in range(args.rounds):
            for name, root in roots.items():
                got[name].append(run(root, path))
        line = [f"{path.name:20}"]
        med = {}
        for name, runs in got.items():
            med[name] = statistics.median(r["score_cpu"] for r in runs)
            low = min(r["score_cpu"] for r in runs)
            rep = statistics.median(r["replay_cpu"] for r in runs)
            found = runs[0]["anomalies"]
            line.append(f"{name} {med[name]:6.3f} (min {low:5.3f}, replay {rep:5.2f}, anomalies {found})")
        if "base" in med and med["this"] > 0:
            line.append(f"ratio {med['base'] / med['this']:.2f}x")
        print("  ".join(line))
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
