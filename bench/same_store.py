"""Does this tree store what an older build stores? Replays each recording with both and compares the
data dirs file by file.

    python bench/same_store.py FILE [FILE ...] [--baseline-ref main] [--keep DIR]

Each build runs `mass replay FILE --headless --max -q` into its own data dir (built-in defaults).
Every file under db/ must be byte for byte the same, except `rejected.jsonl` (its `received_at`
is each run's clock) and `aggregates.jsonl`, whose "windows"
lines a build may pack differently: it must expand (`mass_tui.aggregates.expand`) to the same
records, with its daily lines byte for byte the same; in the same order, or else the verdict says
"in another order" (which batches the writer aggregates together depends on the timing). Prints one line per file
and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))


def replay(root: Path, recording: Path, data_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(recording), "--headless", "--max", "-q",
                    "--data-dir", str(data_dir)], cwd=data_dir.parent, env=env, check=True, capture_output=True)


def compare(new: Path, old: Path) -> list[str]:
    """One verdict per file of either db dir."""
    import orjson

    out = []
    names = sorted({p.name for p in new.iterdir()} | {p.name for p in old.iterdir()})
    for name in names:
        a, b = new / name, old / name
        if not (a.exists() and b.exists()):
            out.append(f"{name}: only in {'this tree' if a.exists() else 'the baseline'}")
            continue
        x, y = a.read_bytes(), b.read_bytes()
        if x == y:
            out.append(f"{name}: identical ({len(x):,} bytes)")
        elif name.startswith("aggregates"):
            lx, ly = x.splitlines(), y.splitlines()
            dx, dy = ([ln for ln in lines if b'"kind":"daily"' in ln] for lines in (lx, ly))
            rx, ry = _digests(lx), _digests(ly)
            if rx == ry and dx == dy:
                verdict = "same records"
            elif sorted(dx) == sorted(dy) and sorted(rx) == sorted(ry):
                # the writer aggregates what has come whenever it is idle (5722809), so which batches
                # are aggregated together, hence the order of the lines, depends on the timing
                verdict = "same records, in another order"
            else:
                verdict = "DIFFERENT records"
            out.append(f"{name}: {verdict} ({len(rx):,} records; {len(lx):,} vs {len(ly):,} lines)")
        elif name.startswith("rejected"):  # received_at is the wall clock of each run
            rx = [{k: v for k, v in orjson.loads(ln).items() if k != "received_at"} for ln in x.splitlines()]
            ry = [{k: v for k, v in orjson.loads(ln).items() if k != "received_at"} for ln in y.splitlines()]
            out.append(f"{name}: {'same but received_at' if rx == ry else 'DIFFERENT'} ({len(rx):,} records)")
        else:
            out.append(f"{name}: DIFFERENT ({len(x):,} vs {len(y):,} bytes)")
    return out


def _digests(lines: list[bytes]) -> list[bytes]:
    """A 16-byte digest of each record the lines expand to, in order: millions of records (a replay
    with 1 min windows) compared without holding them as dicts (which took 24 GB for 200 k rows)."""
    import hashlib

    import orjson

    from mass_tui.aggregates import expand

    return [hashlib.blake2b(orjson.dumps(r, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()
            for ln in lines for r in expand(orjson.loads(ln))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", type=Path, nargs="+")
    ap.add_argument("--baseline-ref", default="main", help="the git commit to compare with")
    ap.add_argument("--keep", type=Path, help="keep the data dirs here (DIR/now|ref/FILE-NAME)")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from _baseline import checkout

    bad = False
    with tempfile.TemporaryDirectory() as tmp, checkout(args.baseline_ref) as old_root:
        base = args.keep or Path(tmp)
        for path in args.files:
            dirs = {}
            for build, root in (("now", ROOT), (args.baseline_ref, old_root)):
                d = base / build / path.name / "data"
                shutil.rmtree(d, ignore_errors=True)  # the store appends: start from nothing
                d.parent.mkdir(parents=True, exist_ok=True)
                replay(root, path.resolve(), d)
                dirs[build] = d / "db"
            verdicts = compare(dirs["now"], dirs[args.baseline_ref])
            bad |= any("DIFFERENT" in v or "only in" in v for v in verdicts)
            print(f"{path.name}:", *verdicts, sep="\n  ", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
