"""What history costs ingestion: the aggregates sink, and the PostgreSQL sink, against the JSONL store alone.

    python bench/history_cost.py [--n 100000] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Each variant replays the same recording (10 stations x 6 variables, one reading a minute each) into a
fresh store in this process, in 4 MB batches as `mass replay --max` does; the variants alternate over
`--rounds` and the best time of each is kept, so the ratios hold on a loaded machine. With
`--postgres`, also the time the PostgreSQL sink takes to catch up after ingestion ended (a schema of
its own, dropped after), and a `mass query` over the store.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mass_tui.config import load_config  # noqa: E402
from mass_tui.engine import Engine  # noqa: E402
from mass_tui.replay import replay_file  # noqa: E402
from mass_tui.sinks.aggregates import AggregateSink  # noqa: E402
from mass_tui.sinks.configured import aggregator  # noqa: E402
from mass_tui.store import STREAM, JsonlStore  # noqa: E402


def write_recording(path: Path, n: int) -> None:
    rng = np.random.default_rng(1)
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({
                "ts": 1704067200 + (i // 10) * 60, "station": f"st-{i % 10}", "source": "bench",
                "temp_c": round(10 + rng.normal(0, 1), 2), "humidity_pct": round(60 + rng.normal(0, 3), 1),
                "pressure_hpa": round(1010 + rng.normal(0, 0.5), 2), "wind_mps": round(abs(rng.normal(4, 1)), 2),
                "gust_mps": round(abs(rng.normal(7, 2)), 2), "precip_mm": round(abs(rng.normal(0, 0.2)), 1),
            }) + "\n")


def run(rec: Path, data: Path, variant: str, url: str | None) -> tuple[float, float | None, dict]:
    cfg = load_config(env={}, dotenv_file=None, overrides={"data.dir": str(data)})
    store = JsonlStore(cfg.db_dir, max_bytes=1 << 30)
    sinks = []
    if variant != "jsonl":
        sinks.append(AggregateSink(store, aggregator(cfg)))
    pg = None
    if variant == "postgres":
        from mass_tui.sinks.postgres import PostgresSink

        pg = PostgresSink(url, store, poll_seconds=0.05, windows=cfg.get("store.postgres_windows"))
        sinks.append(pg)
    engine = Engine(cfg, store, sinks=sinks)
    start = time.perf_counter()
    replay_file(engine, rec)
    engine.sync()
    ingest = time.perf_counter() - start
    caught_up = None
    summary: dict = {}
    if pg is not None:
        while pg.positions.get(STREAM) is None or pg.behind():  # every stored file sent up to its end
            time.sleep(0.02)
        caught_up = time.perf_counter() - start
        summary = pg.summary()
    engine.sinks.close()
    store.close()
    return ingest, caught_up, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--postgres", help="a postgresql:// URL to also measure the PostgreSQL sink")
    args = ap.parse_args()
    variants = ["jsonl", "aggregates"] + (["postgres"] if args.postgres else [])
    schemas = [f"mass_bench_{uuid.uuid4().hex[:8]}" for _ in range(args.rounds)]  # each round inserts anew
    best: dict[str, float] = {}
    catch_up: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "rec.jsonl"
        write_recording(rec, args.n)
        for r in range(args.rounds):
            for variant in variants:
                url = f"{args.postgres}{'&' if '?' in (args.postgres or '') else '?'}schema={schemas[r]}" \
                    if args.postgres else None
                ingest, caught, _ = run(rec, Path(tmp) / f"{variant}-{r}", variant, url)
                best[variant] = min(best.get(variant, ingest), ingest)
                if caught is not None:
                    catch_up.append(caught)
        from mass_tui.history import query

        start = time.perf_counter()
        rows = query(Path(tmp) / "aggregates-0" / "db", "SELECT station, max(gust_mps) FROM observations GROUP BY 1")
        sql = time.perf_counter() - start
    if args.postgres:
        import psycopg

        from mass_tui.sinks.postgres import split_url

        with psycopg.connect(split_url(args.postgres)[0], autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(f"{args.n:,} observations, 10 stations x 6 variables, one a minute each; best of {args.rounds}")
    base = best["jsonl"]
    for variant in variants:
        print(f"  ingest with {variant:<11} {args.n / best[variant]:10,.0f} obs/s   {base / best[variant]:.2f}x "
              "the JSONL store alone")
    if catch_up:
        print(f"  PostgreSQL has every row   {min(catch_up):.2f} s after ingestion began "
              f"({args.n / min(catch_up):,.0f} obs/s through COPY, in its own thread)")
    print(f"  mass query max(gust_mps) by station over the store: {sql:.2f} s ({len(rows[1])} rows)")
    print(f"  one 6-variable reading into the 1 min/1 h/1 day windows (live path): p50 {one_reading():.0f} µs")


def one_reading(n: int = 20_000) -> float:
    """The aggregator's cost for one reading at a time, 10 stations a minute apart (p50, µs)."""
    from mass_tui.aggregates import Aggregator

    agg = Aggregator()
    rng = np.random.default_rng(2)
    values = {k: np.array([float(v)]) for k, v in zip(("temp_c", "humidity_pct", "pressure_hpa", "wind_mps",
                                                          "gust_mps", "precip_mm"), rng.random(6), strict=True)}
    times = []
    for i in range(n):
        ts = np.array([1704067200.0 + (i // 10) * 60])
        start = time.perf_counter()
        agg.add(f"st-{i % 10}", {}, ts, values)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


if __name__ == "__main__":
    main()
