"""The `mass` command's entry point: light on purpose (OpenBLAS's threads are set before numpy is
imported; a bulk replay ends without the interpreter's teardown)."""

from __future__ import annotations

import contextlib
import os
import sys


def main() -> int:
    """Run `mass` with the command line's arguments; returns the exit status."""
    one_blas_thread()
    from mass_tui.cli import main as cli_main
    from mass_tui.malloc_tuning import bulk_replay

    code = cli_main()
    if bulk_replay(sys.argv[1:]):
        _exit_now(code)
    return code


def one_blas_thread() -> None:
    """Numpy's OpenBLAS on one thread, unless the environment says otherwise (OPENBLAS_NUM_THREADS).

    OpenBLAS starts a thread per CPU, which spins for a while after each call waiting for the next:
    the only matrices here are a few variables wide (`detectors.relation`), far below what it would
    split across threads, so the spinning only took a core from the writer process and polars (2.5 %
    of a building replay's CPU samples). Must run before numpy is imported; the writer processes
    inherit it."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown (freeing every object of a replay of
    hundreds of megabytes one by one: ~60 ms), once everything that outlives `main` is done: the
    store is closed and synced by then; stdio and the log handlers are flushed here. Returns (the
    normal exit follows) while another non-daemon thread runs, which a normal exit would wait for,
    or under a profiler or a coverage tracer, which write their data at the normal exit."""
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return  # a profiler or coverage writes its data at the normal exit
    import logging

    logging.shutdown()
    flush_stdio()
    os._exit(code)


def flush_stdio() -> None:
    """Flush stdout and stderr before an `os._exit`; either may be None (its descriptor
    was closed when the process started), closed, or a pipe whose reader is gone."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):  # nothing more can be said on it
                stream.flush()
