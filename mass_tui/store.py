"""Append-only JSONL files under DATA_DIR/db, flushed once per batch."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson

STREAM = "consumer_stream.jsonl"
ANOMALIES = "anomalies.jsonl"
REJECTED = "rejected.jsonl"
LABELS = "labels.jsonl"


class JsonlStore:
    def __init__(self, db_dir: Path) -> None:
        self.db_dir = Path(db_dir)
        self.db_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[bytes]] = {}

    def _file(self, name: str) -> IO[bytes]:
        fh = self._files.get(name)
        if fh is None:
            fh = self._files[name] = open(self.db_dir / name, "ab")  # noqa: SIM115 - kept open across batches
        return fh

    def append(self, name: str, records: Iterable[dict[str, Any]]) -> int:
        fh = self._file(name)
        lines = [orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) for r in records]
        if lines:
            fh.write(b"\n".join(lines) + b"\n")
        return len(lines)

    def append_lines(self, name: str, lines: list[bytes]) -> None:
        if lines:
            self._file(name).write(b"\n".join(lines) + b"\n")

    def flush(self) -> None:
        for fh in self._files.values():
            fh.flush()

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
