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

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence

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


HUGE_PAGES = "glibc.malloc.hugetlb=1"  # glibc 2.35+: malloc's memory madvised for transparent huge pages


def with_huge_pages(environ: Mapping[str, str]) -> dict[str, str] | None:
    """`environ` with GLIBC_TUNABLES asking glibc's malloc for transparent huge pages, or None when
    it already says something about them (the user's choice, or this process restarted already)."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables:
        return None
    return {**environ, "GLIBC_TUNABLES": ":".join(filter(None, (tunables, HUGE_PAGES)))}


def bulk_replay(argv: Sequence[str]) -> bool:
    """Whether `mass` argv runs a headless replay flat out (`replay ... --headless`, no --speed)."""
    from mass_tui.argv import command, given

    return command(argv) == "replay" and given(argv, "--headless") and not given(argv, "--speed")


def restart_on_huge_pages(argv: Sequence[str]) -> None:
    """Start this process again (execve: the same PID, arguments and streams) with glibc's malloc on
    transparent huge pages, when `argv` is a bulk replay on Linux with glibc; return where nothing
    is to be done or the exec fails.

    glibc reads GLIBC_TUNABLES only as a process starts, hence the restart, about 50 ms before any
    work. Measured on the 2-vCPU VM this was built on, where a page fault is dear: a 200 k-line
    Open-Meteo-like replay took 61 k -> 44 k minor faults, 2.6-3.0 -> 2.4-2.7 s (three runs each,
    taking turns; README, Performance)."""
    if sys.platform != "linux" or not bulk_replay(argv):
        return
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc = ""
    env = with_huge_pages(os.environ) if libc.startswith("glibc") else None
    command = getattr(sys, "orig_argv", None)
    # Only when `argv` is what this process was started with: a caller that set sys.argv itself
    # would be started again with other arguments.
    if env is None or not command or list(command[len(command) - len(argv):]) != list(argv):
        return
    from mass_tui.entry import flush_stdio

    flush_stdio()
    with contextlib.suppress(OSError):
        os.execve(sys.executable, command, env)
