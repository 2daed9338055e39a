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
def test_only_a_headless_replay_flat_out_is_a_bulk_replay(argv, expected):
    from mass_tui.malloc_tuning import bulk_replay

    assert bulk_replay(argv) is expected


@pytest.mark.parametrize("argv", [["replay", "f.jsonl", "--headless"], ["replay", "f.jsonl", "--hea", "--max"],
                                  ["--config", "m.toml", "replay", "f.jsonl", "--headless"]])
def test_a_bulk_replay_is_headless_to_the_cli_too(argv):
    """The fast exit (bulk_replay) and the CLI's early signal handlers (_headless) read
    --headless, abbreviations included, by one rule."""
    from mass_tui.cli import _headless
    from mass_tui.malloc_tuning import bulk_replay

    assert bulk_replay(argv) and _headless(argv)
