"""What a recording's replays have quarantined already, so replaying it again stores it once.

Observations read twice are dropped as duplicates by the time-order check; quarantine
records had no such check, so each replay of a file appended its bad lines to
`rejected.jsonl` again and a query over `rejected` counted them twice. A replay now
names its file in each record (`"file"`: the file's absolute path, links resolved) and, before it
starts, counts the records of that file the store holds (every rotated file of
`rejected.jsonl` and the live one). A record equal to one of them but for
`received_at` is then not written again: as many as were stored, so a file holding
the same bad line three times keeps three. The run's figures (`rejected`,
`rejected_by_reason`, ...) still count every bad line of the file; the summary's
`already_quarantined` says how many were stored before.

Records written before files were named (no `"file"`) are not matched: the first
replay after the change stores its file's quarantine once more.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from mass_tui.store import REJECTED, JsonlStore, read_jsonl
from sources.text import json_bytes

FILE_KEY = "file"


def record_key(record: dict[str, Any]) -> bytes:
    """A quarantine record's identity: a 16-byte digest (BLAKE2b) of every field but `received_at`
    (when it was set aside) as canonical JSON (sorted keys). A digest, not the JSON: a store of
    300,000 bad lines would otherwise hold over a gigabyte of keys."""
    body = {k: v for k, v in record.items() if k != "received_at"}
    return hashlib.blake2b(json_bytes(body, orjson.OPT_SORT_KEYS), digest_size=16).digest()


class QuarantineLedger:
    """The quarantine records of one file already in the store, as a multiset of `record_key`s.

    `admit(record)` names the file in the record and says whether to write it: False (and the
    count goes down by one) while an equal record of the file is stored and not yet matched.
    """

    def __init__(self, file: str, stored: Counter[bytes] | None = None) -> None:
        self.file = file
        self.stored: Counter[bytes] = stored if stored is not None else Counter()

    @classmethod
    def load(cls, store: JsonlStore, path: Path) -> QuarantineLedger:
        """The ledger of `path` (absolute, links and `..` resolved, as the store writes it: secrets
        masked) from every file of the store's `rejected.jsonl`. Only files that mention it are
        decoded; a torn or corrupt line is skipped (read_jsonl). `admit` takes records as the store
        writes them (`JsonlStore.redacted`), so their keys are those of what is on disk."""
        file = store.redacted(str(Path(path).resolve()))
        needle = orjson.dumps(file)
        stored: Counter[bytes] = Counter()
        for part in store.files(REJECTED):
            with open(part, "rb") as fh:
                if needle not in fh.read():
                    continue
            for record in read_jsonl(part):
                if record.get(FILE_KEY) == file:
                    stored[record_key(record)] += 1
        return cls(file, stored)

    def admit(self, record: dict[str, Any]) -> bool:
        """Add the file to `record`; True when it is to be written (not stored before)."""
        record[FILE_KEY] = self.file
        key = record_key(record)
        if self.stored.get(key, 0) > 0:
            self.stored[key] -= 1
            return False
        return True
