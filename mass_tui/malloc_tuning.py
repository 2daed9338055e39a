"""glibc's malloc thresholds for a bulk run: keep big freed blocks instead of handing them back.

A replay flat out allocates and frees numpy temporaries of megabytes per batch. glibc serves a
block over its mmap threshold (128 KiB, rising dynamically) with mmap and unmaps it on free, and
trims the heap top past its trim threshold, so the next batch faults the same pages in again: on
the 2-vCPU machine this was built on, a 200 k-line replay took 66–100 k page faults and ran
2.9–3.4 s; with the thresholds below, 55 k faults and 2.5–2.7 s (README, Performance). The cost is
memory kept for reuse (RSS about +17 MB on that replay). `mallopt(3)`: M_TRIM_THRESHOLD is -1,
M_MMAP_THRESHOLD is -3 (glibc's malloc.h); the same as the MALLOC_*_THRESHOLD_ environment
variables, set from inside the process.

Transparent huge pages for malloc (GLIBC_TUNABLES=glibc.malloc.hugetlb=1) were a bulk replay's
default for two rounds: a restart of the process and its writer on them cut page faults on that
machine (2.6-3.0 -> 2.4-2.7 s). On the next machine (a Firecracker VM, THP "madvise") the same
setting ran every layout slower, 0.03-0.24 s per 200 k-line replay, with twice the system time in
half the runs: a kernel's cost that flips sign between machines is not a default. A user whose
machine gains from it sets the variable; glibc reads it as each process starts (README).
"""

from __future__ import annotations

from collections.abc import Sequence

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20  # blocks up to this size come from the heap and go back to it
TRIM_THRESHOLD = 512 << 20  # free memory kept at the heap's top before it is returned


def keep_freed_blocks() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where malloc is not glibc's
    (musl, macOS) or refuses, and nothing is changed then."""
    import ctypes
    import ctypes.util

    try:
        # glibc's soname on Linux: find_library would run `ldconfig -p` in a subprocess to learn it
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        name = ctypes.util.find_library("c")
        if name is None:
            return False
        try:
            libc = ctypes.CDLL(name)
        except OSError:
            return False
    try:
        mallopt = libc.mallopt
    except AttributeError:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def bulk_replay(argv: Sequence[str]) -> bool:
    """Whether `mass` argv runs a headless replay flat out (`replay ... --headless`, no --speed)."""
    from mass_tui.argv import command, given

    return command(argv) == "replay" and given(argv, "--headless") and not given(argv, "--speed")


