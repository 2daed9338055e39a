"""Opening a recording as people download it: compressed, UTF-16, or not a text recording at all.

- **Compressed**: gzip (NDBC's historical files are `41002h2018.txt.gz`), bzip2 and
  xz are read as they are, told by their magic bytes, not by the file name.
- **UTF-16**: Excel's "Unicode Text" export is UTF-16 with a byte-order mark
  (tab-separated); the mark decides the encoding.
- **Cut short**: compressed data that ends early or is damaged (an interrupted
  download) is read up to the break; the reason goes to the caller's `problems`
  list (replay quarantines it as one record, code `truncated_file`).
- **Not a recording**: a zip archive (an Excel `.xlsx` workbook is one), another
  known binary format, or binary data (`binary_reason` says by which rule) raises
  `RecordingError` naming what it looks like, instead of being read as a CSV of
  garbage. A text recording with a few NUL bytes (a disk fault, NUL padding left
  at the end by a crash) is read: the lines holding them are quarantined alone.
"""

from __future__ import annotations

import bz2
import codecs
import io
import lzma
import zlib
from pathlib import Path
from typing import IO, Any


def _gzip() -> Any:
    return zlib.decompressobj(16 + zlib.MAX_WBITS)  # a gzip member: header, deflate, CRC and size checked


# (magic, name, a fresh decompressor for one stream: .decompress(data, max_length), .eof, .unused_data)
_COMPRESSED: tuple[tuple[bytes, str, Any], ...] = (
    (b"\x1f\x8b", "gzip", _gzip),
    (b"BZh", "bzip2", bz2.BZ2Decompressor),
    (b"\xfd7zXZ\x00", "xz", lzma.LZMADecompressor),
)
_UTF16 = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}
SAMPLE = 1 << 16


class RecordingError(ValueError):
    """A file that is not a recording mass can read; the message says what it looks like."""


def compression(head: bytes) -> str:
    """gzip, bzip2, xz, or "" for a file starting with `head`."""
    return next((name for magic, name, _ in _COMPRESSED if head.startswith(magic)), "")


def _magic(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(8)


class _Decompressed(io.RawIOBase):
    """A compressed file's bytes, stream after stream (`cat a.gz b.gz` is one file), read with the
    library's incremental decompressor so that nothing it can give is lost: where the data is cut
    short (an interrupted download), damaged, or followed by bytes that are not another stream of its
    kind, the stream ends after the last byte that decompressed, and why is appended to `problems`.
    NUL padding after the last stream (some tools pad to a block) ends it quietly."""

    _RAW = 1 << 14  # compressed bytes fed at a time (damage inside one: zlib salvages its start, bz2 and xz lose it)
    _OUT = 1 << 20  # most bytes one decompress call gives (a run of zeros may expand a thousandfold)

    def __init__(self, path: Path, name: str, kind: str, new: Any, problems: list[str]) -> None:
        super().__init__()
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._name, self._kind, self._new, self._problems = name, kind, new, problems
        self._magic = next(magic for magic, k, _ in _COMPRESSED if k == kind)
        self._dec = new()
        self._input = b""  # compressed bytes read, not yet given to the decompressor
        self._ended = False
        self._out = 0  # bytes given out

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._ended:
            data = self._step(len(buffer))
            if data:
                buffer[: len(data)] = data
                self._out += len(data)
                return len(data)
        return 0

    def _step(self, want: int) -> bytes:
        """Some decompressed bytes (b"" when none came of this step, or at the end)."""
        if self._dec.eof:
            rest = self._dec.unused_data + self._input
            self._input = b""
            while len(rest) < len(self._magic) and (more := self._fh.read(self._RAW)):
                rest += more
            if not rest:
                self._ended = True  # the last stream ended with the file
            elif rest.startswith(self._magic):
                self._dec, self._input = self._new(), rest  # the next stream of a concatenated file
            elif not rest.strip(b"\x00") and not self._fh.read(self._RAW).strip(b"\x00"):
                self._ended = True  # NUL padding after the last stream
            else:
                self._end(f"the {self._kind} data is followed by {len(rest):,}+ bytes that are not {self._kind}")
            return b""
        if not self._input and getattr(self._dec, "needs_input", True):
            self._input = self._fh.read(self._RAW)
            if not self._input:
                self._end(f"the {self._kind} data ends early")
                return b""
        saved = self._dec.copy() if hasattr(self._dec, "copy") else None  # zlib's state, to salvage from
        piece = self._input
        try:
            out = self._dec.decompress(piece, min(want, self._OUT))
            # zlib hands back what it did not take (`unconsumed_tail`); bz2 and lzma keep it inside
            self._input = getattr(self._dec, "unconsumed_tail", b"")
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
            self._end(f"the {self._kind} data is damaged ({exc})")
            return _salvaged(saved, piece) if saved is not None else b""
        return out

    def _end(self, why: str) -> None:
        self._ended = True
        self._problems.append(f"{self._name}: {why} after {self._out:,} bytes of data")

    def close(self) -> None:
        self._fh.close()
        super().close()


def _salvaged(state: Any, piece: bytes) -> bytes:
    """What zlib gives from the longest start of `piece` it takes without an error, from `state` (a
    copy of the decompressor before `piece`): the bytes before the damage (a download cut short and
    then padded, junk after the cut) are not lost with the piece. A binary search over the length,
    the damage making every longer start fail as well."""
    good, low, high = b"", 0, len(piece)
    while low < high:
        mid = (low + high + 1) // 2
        try:
            out = state.copy().decompress(piece[:mid])
        except zlib.error:
            high = mid - 1
        else:
            good, low = out, mid
    return good


def open_binary(path: Path, problems: list[str] | None = None) -> IO[bytes]:
    """The recording's bytes, decompressed when it is gzip, bzip2 or xz. Compressed data that is cut
    short ends the stream where it breaks, with the reason appended to `problems`."""
    head = _magic(path)
    for magic, name, new in _COMPRESSED:
        if head.startswith(magic):
            return io.BufferedReader(_Decompressed(path, path.name, name, new,
                                                   problems if problems is not None else []))
    return open(path, "rb")


# Formats people hand over by mistake, by their first bytes. Each of these magic numbers holds a
# byte no text recording starts with (or, for GIF and PDF, a word no header starts with).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x7fELF", "a program (ELF)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls workbook (OLE2)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
)
# Control bytes text never holds (C0 but tab, LF, VT, FF, CR and ESC, which ANSI-coloured text has).
_CONTROL = bytes(c for c in range(1, 32) if c not in b"\t\n\x0b\x0c\r\x1b")
_EXPECTED = "expected JSON lines, CSV, an NDBC .txt or an IEM ASOS download"


def binary_reason(head: bytes) -> str | None:
    """Why a recording whose first bytes are `head` is binary, not text; None for text (which may hold a
    few NUL bytes: the lines holding them are quarantined alone when it is read).

    The rule, in order (the head is at most SAMPLE bytes, decompressed):

    1. It starts with a known binary magic number (PNG, JPEG, GIF, PDF, ELF, SQLite, OLE2 .xls, 7-Zip,
       RAR; a zip archive is told apart by `head_bytes`): binary.
    2. No NUL byte, or a UTF-16 byte-order mark: text (UTF-16 is half NULs).
    3. A run of NULs at its end is set aside: NUL padding a crash leaves at the end of a file (or its
       start, when the padding runs past the head). If nothing but NULs and whitespace is left:
       binary (all NULs).
    4. Of what is left, binary when any of:
       - NUL bytes are more than half of it (mostly NULs: a disk image, a sparse file);
       - more than 1 in 100 of its other bytes are control characters text does not hold (C0 but tab,
         LF, VT, FF, CR, ESC): binary formats are full of small integers; random or compressed
         data has about 1 in 10;
       - more than 2 of its lines, and more than 1 in 10, hold a NUL: UTF-16 without a mark, or
         binary data, whose NULs are everywhere; a text recording's NULs (a damaged block, a torn
         write) sit in a few lines.
    """
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"is {what}, not a recording"
    if b"\x00" not in head or text_encoding(head) is not None:
        return None
    body = head.rstrip(b"\x00")
    if not body.strip(b"\x00 \t\n\r\x0b\x0c"):
        return "holds only NUL bytes, not text"
    nuls = body.count(b"\x00")
    if 2 * nuls > len(body):
        return f"holds binary data (NUL bytes), not text ({nuls:,} NUL bytes in its first {len(body):,})"
    others = len(body) - nuls
    controls = others - len(body.translate(None, _CONTROL + b"\x00"))
    if 100 * controls > others:
        return f"holds binary data (NUL bytes), not text ({controls:,} control bytes in its first {len(body):,})"
    lines = body.split(b"\n")
    with_nul = sum(b"\x00" in line for line in lines)
    if with_nul > 2 and 10 * with_nul > len(lines):
        return f"holds binary data (NUL bytes), not text (NULs in {with_nul:,} of its first {len(lines):,} lines)"
    return None


def first_bytes(path: Path, size: int, problems: list[str] | None = None) -> bytes:
    """The first `size` bytes of the (decompressed) recording, not judged (see `head_bytes`)."""
    with open_binary(path, problems) as fh:
        return fh.read(size)


def nul_problem(line: str) -> str:
    """The quarantine reason of a text row holding NUL bytes ("" for one without): a disk fault, or the
    NUL padding a crash leaves at the end of a file (one reason for the whole run, not one per byte)."""
    nuls = line.count("\x00")
    if not nuls:
        return ""
    what = "only NUL bytes" if nuls == len(line) else f"{nuls:,} NUL byte{'s' if nuls > 1 else ''}"
    return f"row holds {what} ({len(line):,} characters): a disk fault, or padding left by a crash"


def head_bytes(path: Path, size: int = SAMPLE) -> bytes:
    """The first `size` bytes of the (decompressed) recording; RecordingError for what is no recording
    (a zip archive, or what `binary_reason` calls binary)."""
    problems: list[str] = []
    head = first_bytes(path, size, problems)
    if problems and not head:
        raise RecordingError(problems[0])
    if head.startswith(b"PK\x03\x04"):
        raise RecordingError(f"{path.name} is a zip archive (an Excel .xlsx workbook is one): save the sheet "
                             "as CSV, or unzip the archive, and replay that")
    why = binary_reason(head)
    if why is not None:
        raise RecordingError(f"{path.name} {why}: {_EXPECTED}")
    return head


# How far past the head `after_first_line` reads to find the end of a long first line.
LONG_LINE = 64 << 20


def after_first_line(path: Path, head: bytes, size: int = SAMPLE) -> bytes:
    """A newline and up to `size` bytes of the lines after the first non-blank line, when `head` (the
    file's first bytes, `head_bytes`) ends inside that line; b"" when it does not, when the line runs
    past LONG_LINE bytes or to the end, or for UTF-16 (whose newlines are not single bytes). For
    format detection: a JSON lines file whose first line is longer than the head is told by the
    lines after it. UTF-16 (whose newlines are two bytes) is read as text and the lines after its
    first are returned in the byte order of its mark, so `head + after` decodes as one text."""
    if len(head) < SAMPLE:
        return b""
    if text_encoding(head) is not None:
        return _after_first_line_utf16(path, head, size)
    if b"\n" in head.lstrip():
        return b""
    with open_binary(path, []) as fh:
        fh.seek(len(head)) if fh.seekable() else fh.read(len(head))
        skipped = 0
        while skipped <= LONG_LINE:  # bounded: a line of LONG_LINE bytes or more is left undecided
            piece = fh.readline(1 << 20)
            if not piece:
                return b""
            skipped += len(piece)
            if piece.endswith(b"\n"):
                return b"\n" + fh.read(size)
    return b""


def _after_first_line_utf16(path: Path, head: bytes, size: int) -> bytes:
    """`after_first_line` for a UTF-16 file (with its byte-order mark): text read, not bytes."""
    if "\n" in head.decode("utf-16", errors="replace").lstrip():
        return b""
    order = "utf-16-le" if head.startswith(b"\xff\xfe") else "utf-16-be"
    with io.TextIOWrapper(open_binary(path, []), encoding="utf-16", errors="replace", newline="") as text:
        skipped = 0
        while skipped <= LONG_LINE // 2:  # bounded as for bytes: two bytes a character
            piece = text.readline(1 << 19)
            if not piece:
                return b""
            skipped += len(piece)
            if piece.endswith("\n"):
                return ("\n" + text.read(size // 2)).encode(order)
    return b""


def open_text(path: Path, problems: list[str] | None = None) -> IO[str]:
    """The recording as text: UTF-16 after its byte-order mark, else UTF-8 (a BOM dropped) with each
    byte that is not UTF-8 read as Windows-1252 (`STRAY_BYTES`): a file Excel wrote in Windows-1252,
    a UTF-8 file with a stray byte (an è or a ° typed on another machine), and a file of both are all
    read as written. A byte that is no character in either becomes U+FFFD (a station name holding it
    is set aside); line ends are left as written (newline="") for the CSV reader."""
    encoding = text_encoding(head_bytes(path))
    return io.TextIOWrapper(open_binary(path, problems), encoding=encoding or "utf-8-sig",
                            errors="replace" if encoding else STRAY_BYTES, newline="")


STRAY_BYTES = "mass.windows-1252"  # the codecs error handler `open_text` decodes UTF-8 with


def _stray_as_windows_1252(exc: UnicodeError) -> tuple[str, int]:
    """Bytes UTF-8 cannot decode, read as Windows-1252 (its five undefined bytes, 0x81, 0x8D, 0x8F, 0x90
    and 0x9D, as U+FFFD). Real Windows-1252 text holds a valid UTF-8 sequence only by
    accident (a letter from Â to ß followed by one of € to ¿, as in mojibake), so reading UTF-8
    first loses nothing of either. Python's codecs error-handler protocol (`codecs.register_error`)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start:exc.end].decode("cp1252", errors="replace"), exc.end


codecs.register_error(STRAY_BYTES, _stray_as_windows_1252)


def text_encoding(head: bytes) -> str | None:
    """utf-16 when the head starts with a UTF-16 byte-order mark, else None (see csv_table.encoding_of)."""
    return next((enc for bom, enc in _UTF16.items() if head.startswith(bom)), None)


def uncompressed_size(path: Path) -> int:
    """About how many bytes the recording holds once decompressed (for the sort-in-memory limit).

    gzip stores the size modulo 4 GiB in its last 4 bytes; bzip2 and xz are taken
    at 10 times their size, a typical ratio for text.
    """
    size = path.stat().st_size
    kind = compression(_magic(path))
    if kind == "gzip" and size >= 18:
        with open(path, "rb") as fh:
            fh.seek(-4, 2)
            return max(size, int.from_bytes(fh.read(4), "little"))
    return size * 10 if kind else size
