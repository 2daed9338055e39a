"""The malloc thresholds a bulk replay sets (mass_tui.malloc_tuning)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_SCRIPT = """
import resource, sys, numpy as np
from mass_tui.malloc_tuning import keep_freed_blocks
if sys.argv[1] == "tuned":
    assert keep_freed_blocks()
a = np.ones(8 << 20); del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    a = np.ones(8 << 20); del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(how: str) -> int:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, how], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_with_the_thresholds_a_freed_large_block_is_reused_without_faulting_its_pages_again():
    """64 MiB allocated and freed five times: glibc unmaps it on free and faults it in again each
    time (fewer faults with transparent huge pages, never none); with the thresholds it stays."""
    untuned, tuned = _faults("plain"), _faults("tuned")
    assert untuned >= 100
    assert tuned <= untuned // 4


@pytest.mark.parametrize("argv, expected", [
    (["replay", "f.jsonl", "--headless"], True),
    (["replay", "f.jsonl", "--headless", "--max", "-q"], True),
    (["--config", "m.toml", "replay", "f.jsonl", "--headless"], True),  # an option before the command
    (["--data-dir=d", "--z", "4", "replay", "f.jsonl", "--headless"], True),
    (["--config", "replay", "run", "--headless"], False),  # a config file named replay: the command is run
    (["replay", "f.jsonl", "--headless", "--speed", "60"], False),  # paced: no bulk
    (["replay", "f.jsonl", "--headless", "--speed=60"], False),
    (["replay", "f.jsonl", "--headless", "--spe", "60"], False),  # abbreviations argparse takes
    (["replay", "f.jsonl", "--hea", "--max"], True),
    (["--", "replay", "f.jsonl", "--headless"], False),  # argparse refuses a command after --
    (["replay", "f.jsonl"], False),  # the UI
    (["run", "--headless"], False),
])
def test_only_a_headless_replay_flat_out_restarts_on_huge_pages(argv, expected):
    from mass_tui.malloc_tuning import bulk_replay

    assert bulk_replay(argv) is expected


def test_the_tunable_is_added_to_the_users_and_never_twice():
    from mass_tui.malloc_tuning import with_huge_pages

    assert with_huge_pages({"A": "1"}) == {"A": "1", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    assert with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})["GLIBC_TUNABLES"] == \
        "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) is None  # the user's choice stands
    assert with_huge_pages(with_huge_pages({})) is None  # restarted once: not again


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_a_bulk_replay_runs_on_huge_pages_in_the_same_process(tmp_path):
    """The restart is an exec: the PID the caller started is the replay, now with the tunable."""
    import json
    import os
    import time
    from pathlib import Path

    recording = tmp_path / "rec.jsonl"
    with recording.open("w") as fh:
        for i in range(60_000):
            fh.write(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": f"s{i % 3}", "temp_c": i % 17}) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "--data-dir", str(tmp_path / "d"), "replay",
                             str(recording), "--headless", "-q"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and seen is None:
            try:
                environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
            except OSError:
                break
            if b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in environ:
                seen = True
            time.sleep(0.005)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert seen, "the replay's process never ran with the tunable"
    assert json.loads(out.decode().strip().splitlines()[-1])["observations"] == 60_000


def test_a_caller_that_set_sys_argv_itself_is_not_started_again(tmp_path):
    """main() with sys.argv set by a script (a bench) must not exec the script's own command line."""
    import os

    script = ("import os\nfrom mass_tui import malloc_tuning\n"
              "malloc_tuning.restart_on_huge_pages(['replay', 'x.jsonl', '--headless'])\n"
              "print('tunables:', os.environ.get('GLIBC_TUNABLES', ''))\n")  # set only if started again
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tunables:"


@pytest.mark.parametrize("argv", [["replay", "f.jsonl", "--headless"], ["replay", "f.jsonl", "--hea", "--max"],
                                  ["--config", "m.toml", "replay", "f.jsonl", "--headless"]])
def test_a_bulk_replay_is_headless_to_the_cli_too(argv):
    """The restart and fast exit (bulk_replay) and the CLI's early signal handlers (_headless) read
    --headless, abbreviations included, by one rule."""
    from mass_tui.cli import _headless
    from mass_tui.malloc_tuning import bulk_replay

    assert bulk_replay(argv) and _headless(argv)
