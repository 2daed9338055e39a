"""Run a benchmark worker on this tree and on an older commit, alternately, in fresh processes.

The machine is shared, so absolute figures drift from minute to minute; a ratio measured in one
run, with the two builds taking turns, is what holds. `git archive REF detectors mass_tui sources`
unpacks the older build into a temporary directory that becomes its import path.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="mass-baseline-"))
    try:
        archive = subprocess.run(["git", "archive", ref, "detectors", "mass_tui", "sources"], cwd=ROOT,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_worker(script: Path, root: Path, args: list[str]) -> dict:
    """One worker process with `root` first on its import path; its last stdout line is JSON."""
    env = {**os.environ, "MASS_BENCH_ROOT": str(root)}
    cwd = tempfile.mkdtemp(prefix="mass-bench-")  # no mass.toml there: built-in defaults for both builds
    try:
        out = subprocess.run([sys.executable, str(script), "--worker", *args], env=env, cwd=cwd, check=True,
                             capture_output=True, text=True)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def alternate(script: Path, args: list[str], ref: str | None, rounds: int) -> dict[str, list[dict]]:
    """{"now": [results...], ref: [results...]}, the builds taking turns."""
    out: dict[str, list[dict]] = {"now": []}
    if ref is None:
        for _ in range(rounds):
            out["now"].append(run_worker(script, ROOT, args))
        return out
    out[ref] = []
    with checkout(ref) as old:
        for _ in range(rounds):
            out["now"].append(run_worker(script, ROOT, args))
            out[ref].append(run_worker(script, old, args))
    return out


def median_of(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results if key in r)
