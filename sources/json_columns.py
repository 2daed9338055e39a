"""JSON lines read into typed columns by polars, and the lines those columns describe exactly.

A chunk of a recording is nearly all lines of one layout from one producer: the same keys in
the same order, the same types, the same separators. `ColumnReader.read(raws)` takes that layout
from a line of the chunk (the template), reads the whole chunk with polars' NDJSON reader
under the template's schema (Rust, both cores, no Python object per line), then writes each
row back as JSON text the way the template is written and claims the rows whose text is
their line, byte for byte. For a claimed line the columns say exactly what `orjson.loads`
gives: its keys and their order, each value and its type (a string, an int, a float, or a
flat object of strings). A float qualifies because its text is the shortest form of the
double polars read (ryu, as orjson writes it), and that text reads back as that double
alone. Any other line (another layout, a null, a string where a number was, an escape, a
number written in another form, an extra key) is not claimed: the decoder reads it one
message at a time, as before. The proof is the rendering, so how polars treats a line it
cannot fit (null, coerced, skipped) can only cost a claim, never change a value.

polars refuses a whole chunk for one line that is not JSON. A chunk is read whole until polars
refuses one; from then on (a stream with bad lines has them throughout) the lines that cannot be
claimed (not starting and ending as the template does, or holding NaN or Infinity) are left out
before it reads; when it refuses a chunk all the same, the lines of that chunk and the next ones
are first checked with msgspec (a C loop, a fifth of the time of parsing them) and only the lines
that are JSON objects in UTF-8 are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import orjson

from sources.times import iso_seconds_fixed

_TEMPLATE_TRIES = 8  # lines tried as the template, from the first
_PLAIN_KEY = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


@dataclass
class Numbers:
    """A column of JSON numbers, none missing: as float64, and whether they were written as integers.

    `[j]` is the value as `orjson.loads` gives it (an int or a float)."""

    floats: np.ndarray
    ints: np.ndarray | None = None  # int64 when the column holds integers

    def __len__(self) -> int:
        return int(self.floats.size)

    def __getitem__(self, j: int) -> int | float:
        return int(self.ints[j]) if self.ints is not None else float(self.floats[j])


class Texts:
    """A column of JSON strings, none missing, kept in polars; `[j]` is one as a Python str."""

    def __init__(self, series: Any) -> None:
        self.series = series

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, j: int) -> str:
        return self.series[j]

    def iso_seconds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`sources.times.iso_seconds_array` of the column, its characters read from polars' UTF-8 bytes."""
        series = self.series
        sizes = series.str.len_bytes()
        lengths = sizes.to_numpy().astype(np.int64)

        def codes_of(rows: np.ndarray, width: int) -> np.ndarray:
            # the rows are those of this width (iso_seconds_fixed): picked by polars' own mask, as
            # gathering by a numpy array imports numpy.ma (15 ms) for its conversion
            picked = series if rows.size == len(series) else series.filter(sizes == width)
            joined = picked.str.join("").item().encode()
            return np.frombuffer(joined, dtype=np.uint8).reshape(rows.size, width)

        return iso_seconds_fixed(lengths, codes_of)


@dataclass
class Columns:
    """The claimed lines of a chunk (ascending positions), all of layout `keys`, as polars columns."""

    keys: tuple[str, ...]
    rows: np.ndarray  # int64 positions in the chunk
    frame: Any  # polars.DataFrame, one row per claimed line
    longest: int  # bytes of the chunk's longest line (claimed or not)
    _numbers: dict[str, Numbers | None] = field(default_factory=dict)

    def numbers(self, key: str) -> Numbers | None:
        """The key's column as Numbers, or None when it holds text or objects."""
        if key not in self._numbers:
            import polars as pl

            series = self.frame[key]
            if series.dtype == pl.Float64:
                self._numbers[key] = Numbers(series.to_numpy())
            elif series.dtype == pl.Int64:
                ints = series.to_numpy()
                self._numbers[key] = Numbers(ints.astype(np.float64), ints)
            else:
                self._numbers[key] = None
        return self._numbers[key]

    def texts(self, key: str) -> Texts | None:
        """The key's column as Texts, or None when it holds numbers or objects."""
        import polars as pl

        series = self.frame[key]
        return Texts(series) if series.dtype == pl.String else None

    def values(self, key: str) -> list[Any]:
        """The key's column as the Python values orjson gives (str, int, float, dict of str)."""
        return self.frame[key].to_list()

    def distinct(self, keys: list[str]) -> tuple[np.ndarray, dict[str, list[Any]]]:
        """(code of each row, the distinct combinations of `keys` as lists of Python values by key).

        Combinations are told apart by their exact values: floats by their bits (-0.0 is not 0.0)."""
        import polars as pl

        frame = self.frame
        parts = [pl.col(k).reinterpret(signed=True) if frame[k].dtype == pl.Float64 else pl.col(k) for k in keys]
        key = frame.select(parts[0] if len(parts) == 1 else pl.struct(parts)).to_series()
        is_first = key.is_first_distinct()
        first = np.flatnonzero(is_first.to_numpy())
        if first.size == 1:
            codes = np.zeros(len(key), dtype=np.int64)
        else:
            ranks = key.rank("dense").to_numpy().astype(np.int64) - 1
            renumber = np.empty(first.size, dtype=np.int64)
            renumber[ranks[first]] = np.arange(first.size)  # codes in the order a loop meets them
            codes = renumber[ranks]
        # by polars' own mask: rows picked by a numpy array cost numpy.ma's import (15 ms) on the first chunk
        picked = frame.filter(is_first)
        return codes, {k: picked[k].to_list() for k in keys}


class ColumnReader:
    """Reads the chunks of one stream; remembers that polars refused one of them (a stream with bad
    lines has them throughout, as a recording does), so later chunks are checked before polars reads them."""

    def __init__(self) -> None:
        self.refused = False
        self.unclean = False  # polars refused a whole chunk: later chunks are screened before it reads them

    def read(self, raws: Sequence[bytes]) -> Columns | None:
        """The lines of `raws` that polars' columns describe exactly (see the module), or None when there
        are none (no line can be the template, or polars refuses even the lines that are JSON objects)."""
        found = _template(raws)
        if found is None:
            return None
        import polars as pl

        template, compact = found
        schema = _schema(template)
        lines = pl.Series(raws, dtype=pl.Binary)
        # A clean stream's chunk is read whole: the screen below costs a sixth of the read, and the
        # rendering proves each row all the same. Once polars refused a chunk, the screen comes first.
        frame = None if self.unclean else _read(pl, raws, schema)
        if frame is None:
            self.unclean = True
            # Only a line that starts and ends as the template is written can be claimed: the others
            # (a line cut short, a list, NaN or Infinity, which polars refuses) are left out before it reads.
            maybe = lines.bin.starts_with(f'{{"{next(iter(template))}"{_separators(compact)[1]}'.encode())
            maybe &= lines.bin.ends_with(b"}") & ~lines.bin.contains(b"NaN") & ~lines.bin.contains(b"Infinity")
            usable = maybe.to_numpy()
            if not usable.any():
                return None
            frame = None if self.refused else _read(pl, _left_out(raws, usable), schema)
            if frame is None:
                self.refused = True
                at = np.flatnonzero(usable)
                usable = np.zeros(len(raws), dtype=bool)
                usable[at[_json_objects([raws[i] for i in at.tolist()])]] = True
                if not usable.any():
                    return None
                frame = _read(pl, _left_out(raws, usable), schema)
                if frame is None:
                    return None
        rendered = frame.select(_render(pl, template, compact)).to_series().cast(pl.Binary)
        claimed = (rendered == lines).fill_null(False)
        rows = np.flatnonzero(claimed.to_numpy())
        if rows.size == 0:
            return None
        if rows.size < len(claimed):
            # by polars' own mask: a numpy one is converted (numpy.ma imported, 0.1 s, on the first chunk)
            frame = frame.filter(claimed).rechunk()  # one buffer per column: later reads are faster
        return Columns(tuple(template), rows.astype(np.int64), frame, int(lines.bin.size().max()))


_LEFT_OUT = b"{}"  # in a left-out line's place: a row of nulls, which renders as null and is never claimed


def _left_out(raws: Sequence[bytes], usable: np.ndarray) -> Sequence[bytes]:
    """The lines polars may read, the others replaced by `{}`: its rows stay the chunk's lines (no
    positions to map back, the rendering compared with the lines as they are)."""
    if usable.all():
        return raws
    shown = list(raws)
    for i in np.flatnonzero(~usable).tolist():
        shown[i] = _LEFT_OUT
    return shown


def _read(pl: Any, lines: Sequence[bytes], schema: dict[str, Any]) -> Any:
    """polars' frame of `lines` (one row per line), or None when it refuses them or skips one."""
    # A line break inside a message, or an empty line, puts rows out of step with the lines; most
    # often the count tells, and a row out of step never renders as the line it is compared with.
    buffer = b"\n".join(lines)
    try:
        frame = pl.read_ndjson(buffer, schema=schema, ignore_errors=True)
    except Exception:  # noqa: BLE001 - polars' errors for bad input vary by version (ComputeError, ...)
        return None
    return frame if frame.height == len(lines) else None


def _json_objects(raws: Sequence[bytes]) -> np.ndarray:
    """Positions of the lines that are one JSON object in UTF-8 (msgspec's C parser skips the values:
    a syntax check, not a decode)."""
    import msgspec

    check = _object_decoder()
    ok = np.ones(len(raws), dtype=bool)
    lines = iter(raws)
    seen: list[Any] = []  # extended in C; on an error, its length is the bad line's position
    while True:
        try:
            seen.extend(map(check, lines))
            break
        except (msgspec.DecodeError, RecursionError):  # nested deeper than msgspec goes: not read here either
            ok[len(seen)] = False
            seen.append(None)
    if not b"".join(raws).isascii():
        for i, raw in enumerate(raws):
            if ok[i] and not (raw.isascii() or _utf8(raw)):
                ok[i] = False
    return np.flatnonzero(ok)


@cache
def _object_decoder() -> Any:
    """msgspec's decoder of one JSON object whose members it skips (an empty Struct ignores them)."""
    import msgspec

    class _Object(msgspec.Struct):
        pass

    return msgspec.json.Decoder(_Object).decode


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _template(raws: Sequence[bytes]) -> tuple[dict[str, Any], bool] | None:
    """(the layout of one of the first lines, written compact) when that line is JSON in a form
    the rendering reproduces; None when none of the first lines is."""
    for raw in raws[:_TEMPLATE_TRIES]:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if type(obj) is not dict or not obj or _schema(obj) is None:
            continue
        for compact in (False, True):
            if _python_render(obj, compact) == raw:
                return obj, compact
    return None


def _schema(obj: dict[str, Any]) -> dict[str, Any] | None:
    """polars dtypes of the template's values, or None when one cannot be rendered back exactly."""
    import polars as pl

    schema: dict[str, Any] = {}
    for key, value in obj.items():
        if not _plain_key(key):
            return None
        kind = type(value)
        if kind is str:
            schema[key] = pl.String
        elif kind is int and -(2**63) <= value < 2**63:
            schema[key] = pl.Int64
        elif kind is float:
            schema[key] = pl.Float64
        elif kind is dict and value and all(_plain_key(k) and type(v) is str for k, v in value.items()):
            schema[key] = pl.Struct({k: pl.String for k in value})
        else:
            return None
    return schema


def _plain_key(key: str) -> bool:
    return bool(key) and set(key) <= _PLAIN_KEY


def _separators(compact: bool) -> tuple[str, str]:
    return (",", ":") if compact else (", ", ": ")


def _python_render(obj: dict[str, Any], compact: bool) -> bytes:
    """The template line as `_render` writes its rows (a float as orjson writes it, like polars)."""
    item, colon = _separators(compact)
    parts = []
    for key, value in obj.items():
        if type(value) is dict:
            inner = item.join(f'"{k}"{colon}"{v}"' for k, v in value.items())
            text = "{" + inner + "}"
        elif type(value) is str:
            text = f'"{value}"'
        else:
            text = orjson.dumps(value).decode()
        parts.append(f'"{key}"{colon}{text}')
    return ("{" + item.join(parts) + "}").encode()


def _render(pl: Any, template: dict[str, Any], compact: bool) -> Any:
    """A polars expression writing each row as JSON text in the template's layout and separators."""
    item, colon = _separators(compact)
    pieces: list[Any] = []
    text = "{"
    for i, (key, value) in enumerate(template.items()):
        text += (item if i else "") + f'"{key}"{colon}'
        if type(value) is dict:
            for j, tag in enumerate(value):
                text += ("{" if j == 0 else item) + f'"{tag}"{colon}"'
                pieces += [pl.lit(text), pl.col(key).struct.field(tag)]
                text = '"'
            text += "}"
        elif type(value) is str:
            pieces += [pl.lit(text + '"'), pl.col(key)]
            text = '"'
        else:
            pieces += [pl.lit(text), pl.col(key).cast(pl.String)]
            text = ""
    pieces.append(pl.lit(text + "}"))
    return pl.concat_str(pieces).alias("rendered")
