"""PostgreSQL for the tests: the shared server (a unique schema per test) and a throwaway server to stop.

The shared server at 127.0.0.1:5432 (trust auth, database `test`) is never
stopped or reconfigured. A test that takes the database away runs its own:
`initdb` into a temporary directory and `postgres` on a free loopback port,
as the `postgres` user when the tests run as root (initdb refuses root),
stopped by the PID in its postmaster.pid.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SHARED_URL = "postgresql://postgres@127.0.0.1:5432/test"


def shared_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(SHARED_URL, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not here": the test skips
        return False


def unique_schema() -> str:
    return f"mass_test_{uuid.uuid4().hex[:12]}"


def drop_schema(schema: str, url: str = SHARED_URL) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class ThrowawayPostgres:
    """A PostgreSQL server of our own in a temporary directory, on a free port of 127.0.0.1."""

    def __init__(self, port: int) -> None:
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = bindir
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="mass-pg-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.sockets.mkdir()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user)
            shutil.chown(self.sockets, self.user)
        self._as_user([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                       "--no-sync", "-E", "UTF8"], timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_user(self, cmd: list[str], timeout: float = 60) -> None:
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        self._as_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                       "-t", "60", "-o", f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
                       "-c fsync=off", "start"], timeout=90)

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n")[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster's PID), waiting until it has gone."""
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
