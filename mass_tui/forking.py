"""Whether this process may be copied by fork: on Linux, while it runs one OS thread.

`fork(2)` copies only the calling thread. A lock another thread held at that moment (the
allocator's, logging's, one inside polars' or OpenBLAS's thread pools) stays held in the child
for ever, and a pool whose threads are gone hangs its first caller: polars run in a forked child
of a process that had used it never returns. Python's `threading` does not see those pools'
threads, so the count is the kernel's (`/proc/self/task`). A bulk replay forks its store writer
(`mass_tui.sinks.offload`) before it starts any thread: the writer then starts with everything
imported (about half a second of a CPU that a spawned interpreter spends importing numpy, orjson
and the rest again).
"""

from __future__ import annotations

import os
import sys


def os_threads() -> int:
    """Threads of this process as the kernel counts them (Linux); 0 where that is not known."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def can_fork() -> bool:
    """Linux, and this process runs exactly one thread (see the module)."""
    return sys.platform == "linux" and os_threads() == 1
