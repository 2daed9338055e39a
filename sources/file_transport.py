"""The file transport: the producer appends JSONL, the consumer follows it like `tail -F`.

The consumer's position (byte offset and the file's inode) is committed to
a small sidecar file only after the caller has stored what it read, so a
crash re-reads at most the last batch (at least once, nothing lost). A file
that is truncated is read again from the start; a file that is replaced
(rotation) is read from the start of the new one after the rest of the old
one has been drained.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass
class Position:
    inode: int
    offset: int


class FileAppender:
    """The producer side: one message per line, flushed per batch."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] = open(self.path, "ab")  # noqa: SIM115 - kept open

    def append(self, lines: list[bytes], keys: list[str] | None = None) -> None:
        if lines:
            self._fh.write(b"\n".join(lines) + b"\n")
            self._fh.flush()

    def flush(self, timeout: float = 0.0) -> int:
        self._fh.flush()
        return 0

    def close(self) -> None:
        self._fh.close()


class FileTail:
    def __init__(self, path: Path, position_file: Path | None = None, max_line_bytes: int = 1 << 20) -> None:
        self.path = Path(path)
        self.position_file = Path(position_file) if position_file else self.path.with_suffix(".position")
        self.max_line_bytes = max_line_bytes
        self._fh: IO[bytes] | None = None
        self._inode = -1
        self._offset = 0  # of the next unread byte
        self._load()

    def _load(self) -> None:
        try:
            saved = json.loads(self.position_file.read_text())
            self._inode, self._offset = int(saved["inode"]), int(saved["offset"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            self._inode, self._offset = -1, 0

    def _open(self) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        except FileNotFoundError:
            return False
        inode = os.fstat(fh.fileno()).st_ino
        if self._inode not in (-1, inode):
            self._offset = 0  # the saved position was in another file: this one is new
        self._inode = inode
        fh.seek(self._offset)
        self._fh = fh
        return True

    @property
    def position(self) -> Position:
        return Position(self._inode, self._offset)

    def lag_bytes(self) -> int:
        try:
            return max(0, self.path.stat().st_size - self._offset)
        except FileNotFoundError:
            return 0

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
                if len(line) > self.max_line_bytes:  # no newline within the limit: hand it on to be rejected
                    self._offset += len(line)
                    lines.append(line)
                    continue
                fh.seek(self._offset)  # partial: wait for the rest
                break
            self._offset += len(line)
            stripped = line.rstrip(b"\r\n")
            if stripped.strip():
                lines.append(stripped)
        if not lines and self._replaced():
            fh.close()
            self._fh = None
            self._offset = 0
            self._inode = -2  # anything but the new file's inode
            return self.read(max_lines)
        return lines

    def _replaced(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self._inode
        except FileNotFoundError:
            return False

    def commit(self) -> None:
        """Record the position after everything returned so far (call after storing it)."""
        tmp = self.position_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"inode": self._inode, "offset": self._offset}))
        os.replace(tmp, self.position_file)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
