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

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass
class Position:
    inode: int
    offset: int


def sealed_files(path: Path) -> list[Path]:
    """The sealed files of a transport file, oldest first (`NAME.<number>`)."""
    found = [(int(p.name[len(path.name) + 1 :]), p) for p in path.parent.glob(path.name + ".*")
             if p.name[len(path.name) + 1 :].isdigit()]
    return [p for _, p in sorted(found)]


class FileAppender:
    """The producer side: one message per line, flushed per batch; sealed past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] = open(self.path, "ab")  # noqa: SIM115 - kept open

    def append(self, lines: list[bytes], keys: list[str] | None = None) -> None:
        if lines:
            self._fh.write(b"\n".join(lines) + b"\n")
            self._fh.flush()
            if self.max_bytes and self._fh.tell() >= self.max_bytes:
                self._seal()

    def _seal(self) -> None:
        self._fh.close()
        # Rising numbers even if the clock steps back: the consumer reads sealed files in this order.
        number = max([time.time_ns(), *(int(p.name.rsplit(".", 1)[1]) + 1 for p in sealed_files(self.path))])
        os.replace(self.path, self.path.with_name(f"{self.path.name}.{number:020d}"))
        self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open

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
        if not lines:
            following = self._next_file()
            if following is not None:  # this file is sealed and drained: on to the next
                fh.close()
                self._fh = None
                self._offset = 0
                if self._open_path(following):
                    return self.read(max_lines)
        return lines

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
        tmp.write_text(json.dumps({"inode": self._inode, "offset": self._offset}))
        os.replace(tmp, self.position_file)
        # Sealed files before the committed one are consumed and stored: they can go.
        for path in sealed_files(self.path):
            try:
                if os.stat(path).st_ino == self._inode:
                    break
                path.unlink()
            except FileNotFoundError:
                continue

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
