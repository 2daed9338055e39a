"""Wall time per stage of `mass replay FILE --headless --max`, in process, without a profiler's overhead.

    python bench/replay_stages.py FILE        (sinks inline; MASS_SINKS=process times the writer process's waits)

Prints the seconds spent in decoding, the time-order check, scoring, each sink (or, with the
writer process, the engine's waits on it), sorting and concatenating, around one replay.
"""
import contextlib
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict

acc = defaultdict(float)


def wrap(cls, name, label):
    f = getattr(cls, name)
    @functools.wraps(f)
    def g(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            acc[label] += time.perf_counter() - t
    setattr(cls, name, g)


def main_():
    os.environ.setdefault("MASS_SINKS", "inline")  # each sink timed in this process unless asked otherwise
    t0 = time.perf_counter()
    from mass_tui.engine import Engine
    from mass_tui.lateness import OrderCheck
    from mass_tui.sinks.aggregates import AggregateSink
    from mass_tui.sinks.jsonl import JsonlSink
    from sources.decode import Decoder
    wrap(Decoder, "decode", "decode(json)")
    wrap(Decoder, "decode_table", "decode(table)")
    wrap(OrderCheck, "check", "order check")
    wrap(Engine, "_score_rows", "scoring")
    wrap(JsonlSink, "write", "sink jsonl")
    wrap(AggregateSink, "write", "sink aggregates")
    wrap(Engine, "process_batch", "process_batch (all)")
    from mass_tui.sinks.offload import OffloadedSinks
    wrap(OffloadedSinks, "_send", "writer: send (blocked)")
    wrap(OffloadedSinks, "close", "writer: close (wait)")
    from mass_tui import replay as _r
    wrap(_r, "in_time_order", "replay: sort")
    wrap(_r, "concat", "replay: concat")
    t_imp = time.perf_counter() - t0
    from mass_tui.cli import main

    with tempfile.TemporaryDirectory() as d:
        sys.argv = ["mass", "replay", sys.argv[1], "--headless", "--max", "-q", "--data-dir", d + "/d"]
        t1 = time.perf_counter()
        with contextlib.suppress(SystemExit):
            main(sys.argv[1:])
        total = time.perf_counter() - t1
    print(f"imports {t_imp:.2f}s  run {total:.2f}s", file=sys.stderr)
    for k, v in sorted(acc.items(), key=lambda x: -x[1]):
        print(f"  {k:22} {v:6.2f}s", file=sys.stderr)


if __name__ == "__main__":
    main_()
