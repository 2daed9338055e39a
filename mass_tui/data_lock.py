"""One `mass` consumer per data dir: an advisory lock, released when the process ends however it ends.

Two consumers on one data dir would interleave their writes to the same
store files and fight over the transport position. The first takes an
exclusive `flock` on `DATA_DIR/mass.lock` and writes its PID and command
there; a second finds the lock held and stops before touching anything,
saying which process holds it. The kernel drops a flock when its holder
dies (kill -9 included), so a stale lock file never blocks a restart.
`mass produce` takes no lock: producers only append to the transport.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path


class DataDirBusy(RuntimeError):
    """Another process holds the data dir; the message says which."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "mass.lock"
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock or raise `DataDirBusy` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise DataDirBusy(
                f"{self.path.parent} is in use by another mass ({holder}); stop it first, or give this one its "
                f"own data dir with --data-dir or MASS_DATA_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                     f"{' '.join(Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv))}\n"
                 .encode())
        self._fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        except OSError:
            text = ""
        return text or "its PID is not recorded"

    def fileno(self) -> int:
        """The locked descriptor (to hand to a child process that holds the lock with this one)."""
        if self._fd is None:
            raise ValueError("the data dir lock is not held")
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
