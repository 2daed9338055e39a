"""glibc's malloc thresholds for a bulk run: keep big freed blocks instead of handing them back.

A replay flat out allocates and frees numpy temporaries of megabytes per batch. glibc serves a
block over its mmap threshold (128 KiB, rising dynamically) with mmap and unmaps it on free, and
trims the heap top past its trim threshold, so the next batch faults the same pages in again: on
the 2-vCPU machine this was built on, a 200 k-line replay took 66–100 k page faults and ran
2.9–3.4 s; with the thresholds below, 55 k faults and 2.5–2.7 s (README, Performance). The cost is
memory kept for reuse (RSS about +17 MB on that replay). `mallopt(3)`: M_TRIM_THRESHOLD is -1,
M_MMAP_THRESHOLD is -3 (glibc's malloc.h); the same as the MALLOC_*_THRESHOLD_ environment
variables, set from inside the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20  # blocks up to this size come from the heap and go back to it
TRIM_THRESHOLD = 512 << 20  # free memory kept at the heap's top before it is returned


def keep_freed_blocks() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where malloc is not glibc's
    (musl, macOS) or refuses, and nothing is changed then."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
