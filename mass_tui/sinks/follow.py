"""Following the JSONL store's files from a byte position, through rotation: what a sink that
replays from the store (PostgreSQL) reads next.

A position is (file name, inode, byte offset). A file keeps its inode when the
store renames it at rotation, so a position survives it; a position whose
file is gone (retention) starts again at the oldest file.
"""

from __future__ import annotations

from dataclasses import dataclass

from mass_tui.store import JsonlStore


@dataclass
class Position:
    """How far PostgreSQL has one stored stream: the file (name and inode) and the byte offset in it."""

    file: str
    inode: int
    offset: int


def read_chunk(store: JsonlStore, name: str, pos: Position | None, limit: int) -> tuple[bytes, Position | None]:
    """The complete lines of `name` after `pos` (about `limit` bytes at most) and the position after them.

    Files are followed oldest first through rotation (a file keeps its inode when it is renamed). A
    position whose file is gone (retention) starts again at the oldest file; an offset past its file's
    end (a file cut short by a crash) starts that file again. A line without its newline (being
    written, or torn in a rotated file) is not taken."""
    files = []
    for path in store.files(name):
        try:
            st = path.stat()
        except FileNotFoundError:  # rotated or expired between listing and stat
            continue
        files.append((path, st.st_ino, st.st_size))
    if not files:
        return b"", pos
    index, offset = 0, 0
    if pos is not None:
        for i, (_path, inode, size) in enumerate(files):
            if inode == pos.inode:
                index, offset = i, pos.offset if pos.offset <= size else 0
                break
    while True:
        path, inode, size = files[index]
        if offset < size:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(min(limit, size - offset))
                if b"\n" not in data and len(data) == limit:  # one line longer than the limit
                    data += fh.read(size - offset - len(data))
            cut = data.rfind(b"\n")
            if cut >= 0:
                data = data[: cut + 1]
                return data, Position(path.name, inode, offset + len(data))
        if index + 1 >= len(files):
            return b"", Position(path.name, inode, offset)
        index, offset = index + 1, 0  # a rotated file is complete: go on with the next one


def lag_bytes(store: JsonlStore, name: str, pos: Position | None) -> int:
    """Bytes of `name`'s files after `pos`."""
    sizes = []
    for path in store.files(name):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        sizes.append((st.st_ino, st.st_size))
    for i, (inode, size) in enumerate(sizes):
        if pos is not None and inode == pos.inode:
            return max(0, size - pos.offset) + sum(s for _, s in sizes[i + 1:])
    return sum(s for _, s in sizes)  # not started, or its file is gone: everything is ahead
