"""What reading and decoding a recording cost, apart from scoring and storing: the replay's first stage.

    python bench/decode_cost.py FILE [FILE ...] [--repeat 3]

For each file (any format `mass replay` reads), best of `--repeat`, as the replay does it: the
chunks of `open_recording(..).chunks()` decoded one after the other (`Decoder.decode` /
`decode_table`). Printed: the wall and CPU seconds of the whole stage (reading, splitting,
decoding: what the replay waits for), and the wall seconds spent inside the decode calls (what
`stages.py` counts as decoding; a JSONL chunk's columns are read by polars in a thread while the
chunk before is decoded, so part of the work is outside these calls). CPU seconds count every
thread of the process and are steadier than wall time on a loaded machine. Also the decoded
rows, whole-message rejections and field rejections, to compare two versions with.
`MASS_BENCH_ROOT=DIR` times the code in DIR (another worktree) instead of this one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("MASS_BENCH_ROOT") or str(Path(__file__).resolve().parents[1]))


def measure(path: Path) -> tuple[float, float, float, tuple[int, int, int]]:
    """(stage wall s, stage CPU s, wall s inside decode calls, (rows, rejected, fields))."""
    from sources.decode import Decoder, Table
    from sources.formats import open_recording

    recording = open_recording(path)
    decoder = Decoder()
    rows = rejected = fields = 0
    inside = 0.0
    c0, w0 = time.process_time(), time.perf_counter()
    for chunk in recording.chunks():
        t = time.perf_counter()
        if isinstance(chunk, Table):
            out = decoder.decode_table(chunk, default_station=recording.station, default_source="bench")
        else:
            out = decoder.decode(chunk, default_station=recording.station, default_source="bench")
        inside += time.perf_counter() - t
        rows += len(out.batch)
        rejected += len(out.rejected)
        fields += len(out.fields)
    return time.perf_counter() - w0, time.process_time() - c0, inside, (rows, rejected, fields)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import polars  # noqa: F401 - imported once up front: its import is a start-up cost, not a decoding one

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'file':22} {'stage wall':>10} {'stage cpu':>10} {'in decode':>10}  rows / rejected / fields")
    for path in args.files:
        runs = [measure(path) for _ in range(args.repeat)]
        wall, cpu, inside = (min(r[i] for r in runs) for i in range(3))
        rows, rejected, fields = runs[-1][3]
        print(f"{path.name:22} {wall:9.3f}s {cpu:9.3f}s {inside:9.3f}s  {rows:,} / {rejected:,} / {fields:,}",
              flush=True)


if __name__ == "__main__":
    main()
