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
