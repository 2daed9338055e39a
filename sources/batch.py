"""Many observations as columns, and a batch decoder that fills them fast.

Replay and backlog catch-up decode thousands of messages at once. Checking
each field of each message in Python costs more than parsing the JSON, so
messages that share a key layout are checked a column at a time with numpy.
Anything unusual in a group (metadata beyond ts/station/source, a value of
the wrong type, a value out of range, a bad time or station) sends just
those messages through `validate()`, so the result, rejection reasons
included, is exactly what `decode()` gives one message at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from sources.schema import (
    _FIELDS,
    _META_KEYS,
    MAX_MESSAGE_BYTES,
    MAX_STATION_CHARS,
    InvalidMessage,
    Observation,
    Rejection,
    _parse_iso_cached,
    decode,
    parse_time,
    validate,
)

_FAST_META = frozenset(("ts", "station", "source"))
_NAN = float("nan")


@dataclass
class ObservationBatch:
    """Observations as columns; NaN in a variable's column: not in that message."""

    ts: np.ndarray
    station: list[str]
    source: list[str]
    columns: dict[str, np.ndarray]
    # Rows with a position or tags (rare in bulk data): row -> (lat, lon, tags).
    extras: dict[int, tuple[float | None, float | None, dict[str, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.station)

    @classmethod
    def from_observations(cls, observations: Sequence[Observation]) -> ObservationBatch:
        n = len(observations)
        names: dict[str, None] = {}
        for o in observations:
            names.update(dict.fromkeys(o.values))
        columns = {
            name: np.fromiter((o.values.get(name, _NAN) for o in observations), dtype=np.float64, count=n)
            for name in names
        }
        extras = {
            i: (o.lat, o.lon, o.tags)
            for i, o in enumerate(observations)
            if o.lat is not None or o.lon is not None or o.tags
        }
        return cls(
            ts=np.fromiter((o.ts for o in observations), dtype=np.float64, count=n),
            station=[o.station for o in observations],
            source=[o.source for o in observations],
            columns=columns,
            extras=extras,
        )

    def select(self, rows: np.ndarray) -> ObservationBatch:
        """The batch restricted to `rows` (ascending indices)."""
        where = {int(old): new for new, old in enumerate(rows.tolist())}
        return ObservationBatch(
            ts=self.ts[rows],
            station=[self.station[i] for i in rows.tolist()],
            source=[self.source[i] for i in rows.tolist()],
            columns={k: c[rows] for k, c in self.columns.items()},
            extras={where[i]: e for i, e in self.extras.items() if i in where},
        )

    def observation(self, i: int) -> Observation:
        values = {name: float(col[i]) for name, col in self.columns.items() if col[i] == col[i]}
        lat, lon, tags = self.extras.get(i, (None, None, {}))
        return Observation(float(self.ts[i]), self.station[i], self.source[i], values, lat, lon, dict(tags))


def decode_batch(
    raws: Sequence[bytes],
    *,
    default_station: str | None = None,
    default_source: str = "unknown",
    ignored: dict[str, int] | None = None,
) -> tuple[ObservationBatch, list[Rejection]]:
    """Decode many wire messages; valid ones keep their order, so do rejections."""
    slow: list[int] = []
    rejected: dict[int, Rejection] = {}
    groups: dict[tuple[str, ...], list[int]] = {}
    parsed: list[object] = [None] * len(raws)
    for i, raw in enumerate(raws):
        if len(raw) > MAX_MESSAGE_BYTES:
            rejected[i] = decode(raw)  # type: ignore[assignment]  # the size rejection
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            rejected[i] = Rejection(f"not JSON: {exc}", raw)
            continue
        parsed[i] = obj
        if type(obj) is dict:
            groups.setdefault(tuple(obj), []).append(i)
        else:
            slow.append(i)

    good_rows: list[int] = []
    ts_parts: list[np.ndarray] = []
    stations: list[str] = []
    sources: list[str] = []
    col_parts: dict[str, list[tuple[int, np.ndarray]]] = {}
    for keys, rows in groups.items():
        ok = _fast_group(keys, rows, parsed, default_source, ignored)
        if ok is None:
            slow.extend(rows)
            continue
        fast_rows, ts, st, src, cols, slow_rows = ok
        slow.extend(slow_rows)
        offset = len(good_rows)
        good_rows.extend(fast_rows)
        ts_parts.append(ts)
        stations.extend(st)
        sources.extend(src)
        for name, col in cols.items():
            col_parts.setdefault(name, []).append((offset, col))

    slow_obs: list[tuple[int, Observation]] = []
    for i in slow:
        try:
            obs = validate(parsed[i], default_station=default_station, default_source=default_source, ignored=ignored)
        except InvalidMessage as exc:
            rejected[i] = Rejection(str(exc), raws[i])
            continue
        except (ValueError, OverflowError, TypeError) as exc:
            rejected[i] = Rejection(f"invalid message: {exc}", raws[i])
            continue
        slow_obs.append((i, obs))

    batch = _assemble(good_rows, ts_parts, stations, sources, col_parts, slow_obs)
    return batch, [rejected[i] for i in sorted(rejected)]


def _fast_group(keys, rows, parsed, default_source, ignored):
    """Columns for a group of messages with the same keys, or None to validate them one by one."""
    if "ts" not in keys or "station" not in keys:
        return None
    variables = []
    unknown = []
    for key in keys:
        if key in _FAST_META:
            continue
        spec = _FIELDS.get(key)
        if spec is None:
            if key in _META_KEYS:
                return None  # metadata with rules of its own: the per-message path
            unknown.append(key)
        else:
            variables.append((key, spec))
    if not variables:
        return None
    objs = [parsed[i] for i in rows]
    n = len(objs)
    bad = np.zeros(n, dtype=bool)

    stamps = [o["ts"] for o in objs]
    ts = _numeric_times(stamps)
    if ts is not None:
        bad |= ~np.isfinite(ts)
    else:
        ts = np.empty(n)
        for j, stamp in enumerate(stamps):
            kind = type(stamp)
            try:
                if kind is str:
                    ts[j] = _parse_iso_cached(stamp)
                elif kind is int or kind is float:
                    ts[j] = parse_time(stamp)
                else:
                    bad[j] = True
            except (InvalidMessage, ValueError, OverflowError):
                bad[j] = True

    station = [o["station"] for o in objs]
    try:
        distinct = set(station)  # a few stations across thousands of rows: check each once
    except TypeError:  # a list or an object as a station
        distinct = None
    if distinct is None or not all(map(_good_station, distinct)):
        for j, s in enumerate(station):
            if not _good_station(s):
                bad[j] = True

    cols: dict[str, np.ndarray] = {}
    any_value = np.zeros(n, dtype=bool)
    for key, (name, low, high) in variables:
        raw = [o[key] for o in objs]
        types = set(map(type, raw))
        if not types <= {float, int, type(None)}:
            for j, v in enumerate(raw):
                kind = type(v)
                if kind is not float and kind is not int and v is not None:
                    bad[j] = True
            raw = [v if type(v) is float or type(v) is int else None for v in raw]
        if type(None) in types:
            col = np.array([_NAN if v is None else v for v in raw], dtype=np.float64)
        else:
            col = np.array(raw, dtype=np.float64)
        # Python compares ints exactly; a float column could round a huge int into range.
        if int in types and np.abs(col).max(initial=0.0) >= 2.0**53:
            return None
        with np.errstate(invalid="ignore"):
            bad |= (col < low) | (col > high)
        any_value |= ~np.isnan(col)
        if name in cols:  # an alias and its registry name in one message: last one wins, as in validate
            col = np.where(np.isnan(col), cols[name], col)
        cols[name] = col
    bad |= ~any_value

    if ignored is not None:
        for key in unknown:
            ignored[key] = ignored.get(key, 0) + n
        # The per-message path counts these fields too: do not count twice.
        if bad.any() and unknown:
            for key in unknown:
                ignored[key] -= int(bad.sum())
    keep = ~bad
    slow_rows = [rows[j] for j in np.flatnonzero(bad)]
    if "source" in keys:
        src = [o["source"] or default_source for o in objs]
        src = [s if type(s) is str else str(s) for s in src]
    else:
        src = [default_source] * n
    if slow_rows:
        idx = np.flatnonzero(keep)
        fast_rows = [rows[j] for j in idx]
        return (fast_rows, ts[keep], [station[j] for j in idx], [src[j] for j in idx],
                {k: c[keep] for k, c in cols.items()}, slow_rows)
    return rows, ts, station, src, cols, []


def _numeric_times(stamps: list[object]) -> np.ndarray | None:
    """Unix times in seconds for a column of JSON numbers, as parse_time gives them one by one
    (milliseconds above 1e11; NaN-free but possibly infinite), or None for anything else."""
    kinds = set(map(type, stamps))
    if not kinds or not kinds <= {int, float}:
        return None
    try:
        ts = np.array(stamps, dtype=np.float64)
    except OverflowError:  # an integer beyond float range: rejected one by one
        return None
    millis = ts > 1e11
    ts[millis] /= 1000.0
    return ts


def _good_station(station: object) -> bool:
    return type(station) is str and 0 < len(station) <= MAX_STATION_CHARS and bool(station.strip())


def _assemble(good_rows, ts_parts, stations, sources, col_parts, slow_obs) -> ObservationBatch:
    """Merge fast columns and one-by-one observations back into input order."""
    n_fast = len(good_rows)
    n = n_fast + len(slow_obs)
    ts = np.concatenate(ts_parts) if ts_parts else np.zeros(0)
    names = list(col_parts)
    for _, obs in slow_obs:
        for name in obs.values:
            if name not in col_parts:
                col_parts[name] = []
                names.append(name)
    columns = {name: np.full(n, np.nan) for name in names}
    for name, parts in col_parts.items():
        for offset, col in parts:
            columns[name][offset : offset + col.size] = col
    extras = {}
    if slow_obs:
        ts = np.concatenate((ts, [o.ts for _, o in slow_obs]))
        stations = stations + [o.station for _, o in slow_obs]
        sources = sources + [o.source for _, o in slow_obs]
        for k, (_, obs) in enumerate(slow_obs):
            for name, value in obs.values.items():
                columns[name][n_fast + k] = value
            if obs.lat is not None or obs.lon is not None or obs.tags:
                extras[n_fast + k] = (obs.lat, obs.lon, obs.tags)
        good_rows = good_rows + [i for i, _ in slow_obs]
    order = np.argsort(np.array(good_rows, dtype=np.int64), kind="stable")
    if np.array_equal(order, np.arange(order.size)):
        return ObservationBatch(ts, stations, sources, columns, extras)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    return ObservationBatch(
        ts=ts[order],
        station=[stations[i] for i in order],
        source=[sources[i] for i in order],
        columns={k: c[order] for k, c in columns.items()},
        extras={int(inverse[i]): e for i, e in extras.items()},
    )
