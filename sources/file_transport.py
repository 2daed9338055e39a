"""The file transport: the producer appends JSONL, the consumer follows it like `tail -F`.

The consumer's position (byte offset and the file's inode) is committed to
a small sidecar file only after the caller has stored what it read, so a
crash re-reads at most the last batch (at least once, nothing lost). A file
that is truncated is read again from the start.

So that the file does not grow forever, the producer seals it at a size
(renames it to `NAME.<number>`, numbers rising) and starts a new one. The
consumer drains sealed files in order, then the live one, finding its place
again by inode after a restart, and deletes a sealed file once its position
is committed past it. A consumer that is down while the producer seals
several files loses none of them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sources.schema import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

_SCAN = 1 << 16  # bytes read at a time when looking for a line's end


@dataclass
class Position:
    inode: int
    offset: int


class WriteError(OSError):
    """A file could not be appended to (disk full, read-only, I/O error). What was being written is
    kept by the writer and retried; the message is `cannot write PATH: REASON`. `lost`: a failed
    fsync, after which no retry stores for sure (`mass_tui.store.sync_lost`)."""

    lost = False

    def __init__(self, path: Path, cause: OSError) -> None:
        code = cause.errno if cause.errno is not None else errno.EIO
        super().__init__(code, cause.strerror or str(cause), str(path))
        self.path = Path(path)

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.strerror}"


def repair_torn_tail(path: Path) -> int:
    """Cut a file that does not end in a newline back to its last newline; returns the bytes cut.

    A crash (or a full disk) inside a write leaves the last line torn. Appending after it would
    glue the next record to the fragment and lose both; the fragment was never committed as
    read, so the record it was part of is written again. Reads backwards only as far as needed.
    """
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return 0
    with fh:
        size = fh.seek(0, 2)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - _SCAN)
            fh.seek(start)
            cut = fh.read(end - start).rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        fh.truncate(keep)
    log.warning("%s ended in a torn line (a crash or a full disk mid-write): cut %d bytes back to the last "
                "complete line", path, size - keep)
    return size - keep


def append_all(fd: int, data: bytes, good_size: int) -> None:
    """Write all of `data` at the end of an O_APPEND file; on failure cut the file back to
    `good_size` (so a retry does not leave a fragment or a duplicate) and raise the OSError."""
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError:
        with contextlib.suppress(OSError):  # if not, the repair on the next open cuts the torn tail
            os.ftruncate(fd, good_size)
        raise


def sealed_files(path: Path) -> list[Path]:
    """The sealed files of a transport file, oldest first (`NAME.<number>`)."""
    found = [(int(p.name[len(path.name) + 1 :]), p) for p in path.parent.glob(path.name + ".*")
             if p.name[len(path.name) + 1 :].isdigit()]
    return [p for _, p in sorted(found)]


class FileAppender:
    """The producer side: one message per line, written per batch; sealed past `max_bytes`.

    A torn last line left by a crash is cut off when the file is opened. A batch that cannot be
    written whole (disk full, read-only) is cut back out of the file and `WriteError` is raised:
    the caller keeps the batch and tries again later.
    """

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._fh: IO[bytes] | None = None
        self._size = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except OSError as exc:  # retried at the first append
            log.warning("%s", WriteError(self.path, exc))

    def _open(self) -> IO[bytes]:
        repair_torn_tail(self.path)
        fh = self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open
        self._size = fh.seek(0, 2)
        return fh

    def append(self, lines: list[bytes], keys: list[str] | None = None) -> None:
        if not lines:
            return
        try:
            fh = self._fh or self._open()
            append_all(fh.fileno(), b"\n".join(lines) + b"\n", self._size)
            self._size = fh.seek(0, 2)
            if self.max_bytes and self._size >= self.max_bytes:
                self._seal()
        except OSError as exc:
            raise WriteError(self.path, exc) from None

    def _seal(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        # Rising numbers even if the clock steps back: the consumer reads sealed files in this order.
        number = max([time.time_ns(), *(int(p.name.rsplit(".", 1)[1]) + 1 for p in sealed_files(self.path))])
        os.replace(self.path, self.path.with_name(f"{self.path.name}.{number:020d}"))
        self._open()

    def flush(self, timeout: float = 0.0) -> int:
        return 0  # every append is written at once (unbuffered)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class FileTail:
    def __init__(self, path: Path, position_file: Path | None = None, max_line_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.path = Path(path)
        self.position_file = Path(position_file) if position_file else self.path.with_suffix(".position")
        self.max_line_bytes = max_line_bytes
        self._fh: IO[bytes] | None = None
        self._inode = -1
        self._offset = 0  # of the next unread byte
        self._long_scan: tuple[tuple[int, int], int] = ((-1, -1), 0)  # (inode, line start), scanned up to
        # the folder the consumer names as where it reads: a producer (or `echo >>`) can append there at once
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._load()
        self.committed = Position(self._inode, self._offset)

    def _load(self) -> None:
        try:
            saved = json.loads(self.position_file.read_text())
            self._inode, self._offset = int(saved["inode"]), int(saved["offset"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            self._inode, self._offset = -1, 0

    def _files(self) -> list[Path]:
        """Sealed files oldest first, then the live one: the order to read them in."""
        return [*sealed_files(self.path), self.path]

    def _open(self) -> bool:
        """Open the file holding the saved position, or else the oldest one from its start."""
        files = []
        for path in self._files():
            try:
                files.append((os.stat(path).st_ino, path))
            except FileNotFoundError:
                continue
        if not files:
            return False
        here = [path for inode, path in files if inode == self._inode]
        if not here:
            self._offset = 0  # the saved position was in a file that is gone: start at the oldest
        return self._open_path(here[0] if here else files[0][1])

    def _open_path(self, path: Path) -> bool:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - kept open while following
        except FileNotFoundError:
            return False
        inode = os.fstat(fh.fileno()).st_ino
        if inode != self._inode:
            self._offset = 0
        self._inode = inode
        fh.seek(self._offset)
        self._fh = fh
        return True

    @property
    def position(self) -> Position:
        return Position(self._inode, self._offset)

    def lag_bytes(self) -> int:
        """Bytes not read yet: the rest of this file and all files after it."""
        total, after = 0, self._fh is None
        for path in self._files():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if st.st_ino == self._inode:
                total, after = max(0, st.st_size - self._offset), True
            elif after:
                total += st.st_size
        return total

    def read(self, max_lines: int = 4096) -> list[bytes]:
        """Complete lines available now (a partial last line waits for its newline)."""
        if self._fh is None and not self._open():
            return []
        fh = self._fh
        assert fh is not None
        size = os.fstat(fh.fileno()).st_size
        if size < self._offset:  # truncated
            self._offset = 0
            fh.seek(0)
        lines: list[bytes] = []
        while len(lines) < max_lines:
            line = fh.readline(self.max_line_bytes + 1)
            if not line:
                break
            if not line.endswith(b"\n"):
                if len(line) > self.max_line_bytes:
                    # Over the limit: its head is handed on once, to be rejected whole; the rest up
                    # to its newline is skipped unread, never taken for messages of its own.
                    end = self._line_end(fh, self._offset + len(line))
                    if end is None:
                        fh.seek(self._offset)  # its newline has not come yet: wait for it
                        break
                    self._offset = end
                    fh.seek(end)
                    lines.append(line)
                    continue
                fh.seek(self._offset)  # partial: wait for the rest
                break
            self._offset += len(line)
            stripped = line.rstrip(b"\r\n")
            if stripped.strip():
                lines.append(stripped)
        if not lines:
            following = self._next_file()
            if following is not None:  # this file is sealed and drained: on to the next
                fh.close()
                self._fh = None
                self._offset = 0
                if self._open_path(following):
                    return self.read(max_lines)
        return lines

    def _line_end(self, fh: IO[bytes], scan_from: int) -> int | None:
        """The offset just after the newline of the over-long line at `self._offset`, or None while
        it has none yet. Scans in chunks, holding none of it; resumes where the last scan stopped."""
        start = self._offset
        if self._long_scan[0] == (self._inode, start):
            scan_from = max(scan_from, self._long_scan[1])
        fh.seek(scan_from)
        pos = scan_from
        while chunk := fh.read(_SCAN):
            cut = chunk.find(b"\n")
            if cut >= 0:
                self._long_scan = ((-1, -1), 0)
                return pos + cut + 1
            pos += len(chunk)
        self._long_scan = ((self._inode, start), pos)
        return None

    def _next_file(self) -> Path | None:
        """The file after the current one, if the current one is no longer the live file."""
        try:
            if os.stat(self.path).st_ino == self._inode:
                return None
        except FileNotFoundError:
            return None
        sealed = sealed_files(self.path)
        inodes = []
        for path in sealed:
            try:
                inodes.append(os.stat(path).st_ino)
            except FileNotFoundError:
                inodes.append(-1)
        if self._inode in inodes:
            later = sealed[inodes.index(self._inode) + 1 :]
            return later[0] if later else self.path
        return sealed[0] if sealed else self.path  # the current file was deleted under us

    def commit(self) -> None:
        """Record the position after everything returned so far (call after storing it)."""
        tmp = self.position_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"inode": self._inode, "offset": self._offset}))
            os.replace(tmp, self.position_file)
        except OSError as exc:  # a full disk: the old position stays, the caller retries
            raise WriteError(self.position_file, exc) from None
        self.committed = Position(self._inode, self._offset)
        # Sealed files before the committed one are consumed and stored: they can go.
        for path in sealed_files(self.path):
            try:
                if os.stat(path).st_ino == self._inode:
                    break
                path.unlink()
            except FileNotFoundError:
                continue

    def committed_text(self) -> str:
        """Where the committed position is, for a person: `observations.jsonl byte N`."""
        name = self.path.name
        if self._fh is not None and self.committed.inode == self._inode:
            name = Path(self._fh.name).name
        return f"{name} byte {self.committed.offset}"

    def update_lag(self) -> None:
        """Kept for the transport interface: the file's lag is read from its size by any thread."""

    def caught_up(self, since: float = float("-inf")) -> bool:
        """Nothing left to read (the file's size is read now, so `since` needs no waiting for)."""
        return self.lag_bytes() == 0

    def close(self) -> None:
        """Close the file. Commits nothing: only `commit()`, after storing, moves the position."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
