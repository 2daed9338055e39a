"""A recording that is one JSON array of objects (`[{...}, {...}]`, on one line or pretty-printed).

Each element is one message, given to the decoder as a line of its own (re-serialised compactly), so
an element that is no object is quarantined alone with the decoder's reason. A file is read this way
only when its first non-blank byte is `[` and it parses as one JSON array of at most MAX_BYTES
(decompressed); otherwise it stays JSON lines, read line by line with per-line reasons.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

import orjson

from sources.formats.opener import open_binary, text_encoding

MAX_BYTES = 256 << 20  # a whole-file parse holds the file and its objects in memory: past this, line by line


def document(path: Path, head: bytes, max_bytes: int = MAX_BYTES) -> list | None:
    """The elements of the JSON array `path` holds, or None when it holds something else: a first
    non-blank character other than `[`, more than `max_bytes` bytes, not one valid JSON document, or
    a document that is no array. `head` is the file's first bytes (`opener.head_bytes`).

    A first line that is a whole JSON value followed by more lines (JSON lines of arrays) is told from
    the head alone, without reading the file."""
    encoding = text_encoding(head)
    text = head.decode(encoding or "utf-8-sig", errors="replace").lstrip()
    if not text.startswith("["):
        return None
    first, newline, rest = text.partition("\n")
    if newline and rest.strip() and _parses(first):
        return None  # JSON lines whose first line is an array
    with open_binary(path, []) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        return None
    if encoding is not None:
        data = data.decode(encoding, errors="replace").encode("utf-8")
    elif data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def chunks(elements: list, size: int) -> Iterator[list[bytes]]:
    """The elements as message lines (compact JSON, one per element), about `size` bytes a chunk."""
    chunk: list[bytes] = []
    total = 0
    for element in elements:
        line = orjson.dumps(element)
        chunk.append(line)
        total += len(line) + 1
        if total >= size:
            yield chunk
            chunk, total = [], 0
    if chunk:
        yield chunk


def _parses(line: str) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True
