"""Sink cost of a replay: CPU seconds of the JSONL sink and the aggregates sink alone, on a recording's
scored batches.

    python bench/sink_cost.py FILE [FILE ...] [--baseline-ref main] [--rounds 3] [--keep DIR]

The recording is replayed once (`mass replay FILE --headless --max`, built-in defaults) and its
scored batches are kept (pickled under the system temp dir, keyed by the file's name, size and
time), so both builds write the very same batches. Each worker then writes them through a fresh
`JsonlSink` and `AggregateSink` (default windows 1m/1h/1d, lateness 60 min, groups building and
building+floor) and reports the CPU time (time.process_time: less disturbed by a loaded machine
than wall time) of each sink, writes and close included. With --baseline-ref the older build
runs in turns with this one (fresh processes each); the table gives medians and their ratio.
--keep DIR keeps each build's data dir (DIR/BUILD/NAME) for comparing the stored bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, os.environ.get("MASS_BENCH_ROOT") or str(HERE.parents[1]))


def _cache(path: Path) -> Path:
    st = path.stat()
    return Path(tempfile.gettempdir()) / "mass-sink-cost" / f"{path.name}-{st.st_size}-{int(st.st_mtime)}.pkl"


def capture(path: Path) -> Path:
    """Replay `path` in-process once and pickle every scored batch the sinks get: (batch, scores,
    anomalies, muted) in order."""
    out = _cache(path)
    if out.exists():
        return out
    from mass_tui.cli import main as cli_main
    from mass_tui.sinks.jsonl import JsonlSink

    got: list[bytes] = []
    write = JsonlSink.write

    def keep(self, scored):  # pickled at once: later batches cannot change what was given
        got.append(pickle.dumps((scored.batch, scored.scores, scored.anomalies, scored.muted), protocol=5))
        return write(self, scored)

    JsonlSink.write = keep  # type: ignore[method-assign]
    os.environ["MASS_SINKS"] = "inline"  # the sinks in this process, where `keep` sees the batches
    with tempfile.TemporaryDirectory() as tmp:
        argv, cwd = sys.argv, os.getcwd()
        os.chdir(tmp)  # no mass.toml: built-in defaults
        sys.argv = ["mass", "replay", str(path), "--headless", "--max", "-q", "--data-dir", f"{tmp}/d"]
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the summary line: not this table's
                cli_main(sys.argv[1:])
        except SystemExit:
            pass
        finally:
            sys.argv = argv
            os.chdir(cwd)
    JsonlSink.write = write  # type: ignore[method-assign]
    if not got:
        sys.exit(f"{path}: the replay gave the JSONL sink no batch to keep")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_suffix(".part")
    part.write_bytes(pickle.dumps(got, protocol=5))
    part.replace(out)
    return out


def worker(cache: Path, keep: str | None) -> dict:
    from mass_tui.aggregates import Aggregator
    from mass_tui.scored import BatchResult
    from mass_tui.sinks.aggregates import AggregateSink
    from mass_tui.sinks.jsonl import JsonlSink
    from mass_tui.store import JsonlStore

    results = []
    for blob in pickle.loads(cache.read_bytes()):
        batch, scores, anomalies, muted = pickle.loads(blob)
        results.append(BatchResult(batch, anomalies, 0, scores=scores, muted=muted))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(keep) if keep else Path(tmp) / "db"
        shutil.rmtree(db, ignore_errors=True)  # the store appends: start from nothing
        store = JsonlStore(db, max_bytes=1 << 40)
        jsonl = JsonlSink(store)
        try:  # as a bulk replay aggregates (mass_tui.sinks.configured.BULK_ROWS), where the build has it
            from mass_tui.sinks.configured import BULK_ROWS
            agg = AggregateSink(store, Aggregator(lateness=3600.0), restore=False, coalesce_rows=BULK_ROWS)
        except ImportError:
            agg = AggregateSink(store, Aggregator(lateness=3600.0), restore=False)
        start = time.process_time()
        for r in results:
            jsonl.write(r)
        jsonl.close()
        mid = time.process_time()
        for r in results:
            agg.write(r)
        agg.close()
        end = time.process_time()
        store.close()
    return {"jsonl": mid - start, "aggregates": end - mid, "batches": len(results)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", type=Path, nargs="*")
    ap.add_argument("--baseline-ref", help="also measure this git commit, taking turns with this tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="keep each build's data dir here: DIR/BUILD/FILE-NAME")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--keep-db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker), args.keep_db)))
        return
    from _baseline import checkout, median_of, run_worker

    print(f"sink CPU seconds, medians of {args.rounds} processes per build, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'file':18} {'build':>10} {'jsonl':>7} {'aggreg.':>7} {'both':>7}")
    for path in args.files:
        cache = capture(path.resolve())
        builds: dict[str, Path] = {"now": HERE.parents[1]}
        with checkout(args.baseline_ref) if args.baseline_ref else _nothing() as old:
            if old is not None:
                builds[args.baseline_ref] = old
            runs: dict[str, list[dict]] = {b: [] for b in builds}
            for k in range(args.rounds):
                for build, root in builds.items():
                    extra = []
                    if args.keep and k == 0:
                        extra = ["--keep-db", str(args.keep.resolve() / build / path.name)]
                    runs[build].append(run_worker(HERE, root, [str(cache), *extra]))
        for build, res in runs.items():
            j, a = median_of(res, "jsonl"), median_of(res, "aggregates")
            print(f"{path.name:18} {build:>10} {j:7.2f} {a:7.2f} {j + a:7.2f}")
        if args.baseline_ref:
            now, old_runs = runs["now"], runs[args.baseline_ref]
            ratio = [median_of(now, k) / median_of(old_runs, k) for k in ("jsonl", "aggregates")]
            print(f"{'':18} {'ratio':>10} {ratio[0]:6.2f}x {ratio[1]:6.2f}x", flush=True)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
