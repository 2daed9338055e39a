"""What reading and decoding a recording cost, apart from scoring and storing: the replay's first stage.

    python bench/decode_cost.py FILE [FILE ...] [--repeat 3]

For each file (any format `mass replay` reads), best of `--repeat`: the seconds to read it into
chunks (`open_recording(..).chunks()`: lines, or tables split into cells) and the seconds to
decode those chunks (`Decoder.decode` / `decode_table`), both CPU time of this process
(time.process_time, steadier than wall time on a loaded machine) and wall time. Also the
decoded rows, whole-message rejections and field rejections, to compare two versions with.
`MASS_BENCH_ROOT=DIR` times the code in DIR (another worktree) instead of this one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("MASS_BENCH_ROOT") or str(Path(__file__).resolve().parents[1]))


def measure(path: Path) -> tuple[float, float, float, float, tuple[int, int, int]]:
    from sources.decode import Decoder, Table
    from sources.formats import open_recording

    recording = open_recording(path)
    c0, w0 = time.process_time(), time.perf_counter()
    chunks = list(recording.chunks())
    c1, w1 = time.process_time(), time.perf_counter()
    decoder = Decoder()
    rows = rejected = fields = 0
    for chunk in chunks:
        if isinstance(chunk, Table):
            out = decoder.decode_table(chunk, default_station=recording.station, default_source="bench")
        else:
            out = decoder.decode(chunk, default_station=recording.station, default_source="bench")
        rows += len(out.batch)
        rejected += len(out.rejected)
        fields += len(out.fields)
    c2, w2 = time.process_time(), time.perf_counter()
    return c1 - c0, w1 - w0, c2 - c1, w2 - w1, (rows, rejected, fields)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'file':22} {'read cpu':>9} {'read wall':>9} {'decode cpu':>10} {'decode wall':>11}  "
          "rows / rejected / fields")
    for path in args.files:
        best = None
        for _ in range(args.repeat):
            got = measure(path)
            best = got if best is None else tuple(min(a, b) for a, b in zip(best[:4], got[:4], strict=True)) + got[4:]
        rc, rw, dc, dw, counts = best
        print(f"{path.name:22} {rc:8.3f}s {rw:8.3f}s {dc:9.3f}s {dw:10.3f}s  "
              f"{counts[0]:,} / {counts[1]:,} / {counts[2]:,}", flush=True)


if __name__ == "__main__":
    main()
