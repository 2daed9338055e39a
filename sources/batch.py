"""Many observations as columns: what the engine scores and the store writes.

`sources.decode` fills them a column at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sources.schema import Observation

_NAN = float("nan")


_NO_TAGS: dict[str, str] = {}


@dataclass
class ObservationBatch:
    """Observations as columns; NaN in a variable's column: not in that message.

    A position and tags are columns too, None when no row of the batch has one: `lat`
    and `lon` in degrees (NaN together: no position), `tags` one dict per row (rows
    with the same tags may share one dict: treat them as read-only; {}: none).
    """

    ts: np.ndarray
    station: list[str]
    source: list[str]
    columns: dict[str, np.ndarray]
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None
    tags: list[dict[str, str]] | None = None

    def __len__(self) -> int:
        return len(self.station)

    @property
    def extras(self) -> dict[int, tuple[float | None, float | None, dict[str, str]]]:
        """row -> (lat, lon, tags) for the rows with a position or tags (a view built on demand)."""
        rows: set[int] = set()
        if self.lat is not None:
            rows.update(np.flatnonzero(~np.isnan(self.lat)).tolist())
        if self.tags is not None:
            rows.update(i for i, t in enumerate(self.tags) if t)
        return {i: self.place(i) for i in sorted(rows)}

    def place(self, i: int) -> tuple[float | None, float | None, dict[str, str]]:
        """(lat, lon, tags) of row i: (None, None, {}) when it has none."""
        lat = lon = None
        if self.lat is not None and self.lat[i] == self.lat[i]:
            lat, lon = float(self.lat[i]), float(self.lon[i])  # type: ignore[index]
        return lat, lon, self.tags[i] if self.tags is not None else _NO_TAGS

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
        placed = any(o.lat is not None and o.lon is not None for o in observations)
        tagged = any(o.tags for o in observations)
        return cls(
            ts=np.fromiter((o.ts for o in observations), dtype=np.float64, count=n),
            station=[o.station for o in observations],
            source=[o.source for o in observations],
            columns=columns,
            lat=np.array([_NAN if o.lat is None or o.lon is None else o.lat for o in observations]) if placed else None,
            lon=np.array([_NAN if o.lat is None or o.lon is None else o.lon for o in observations]) if placed else None,
            tags=[o.tags for o in observations] if tagged else None,
        )

    def select(self, rows: np.ndarray) -> ObservationBatch:
        """The batch restricted to `rows` (ascending indices)."""
        picked = rows.tolist()
        return ObservationBatch(
            ts=self.ts[rows],
            station=[self.station[i] for i in picked],
            source=[self.source[i] for i in picked],
            columns={k: c[rows] for k, c in self.columns.items()},
            lat=None if self.lat is None else self.lat[rows],
            lon=None if self.lon is None else self.lon[rows],
            tags=None if self.tags is None else [self.tags[i] for i in picked],
        )

    def slice(self, start: int, end: int) -> ObservationBatch:
        """Rows [start, end): `select(np.arange(start, end))` (arrays copied, as there) without
        a Python step per row for the station, source and tags lists."""
        def cut(a: np.ndarray) -> np.ndarray:
            return a[start:end].copy()

        return ObservationBatch(
            ts=cut(self.ts),
            station=self.station[start:end],
            source=self.source[start:end],
            columns={k: cut(c) for k, c in self.columns.items()},
            lat=None if self.lat is None else cut(self.lat),
            lon=None if self.lon is None else cut(self.lon),
            tags=None if self.tags is None else self.tags[start:end],
        )

    def observation(self, i: int) -> Observation:
        values = {name: float(col[i]) for name, col in self.columns.items() if col[i] == col[i]}
        lat, lon, tags = self.place(i)
        return Observation(float(self.ts[i]), self.station[i], self.source[i], values, lat, lon, dict(tags))


def decode_batch(
    raws: Sequence[bytes],
    *,
    default_station: str | None = None,
    default_source: str = "unknown",
    ignored: dict[str, int] | None = None,
):
    """Decode many wire messages with a default `sources.decode.Decoder` (see there); returns its `Decoded`."""
    from sources.decode import Decoder

    return Decoder().decode(raws, default_station=default_station, default_source=default_source, ignored=ignored)


def concat(batches: Sequence[ObservationBatch]) -> ObservationBatch:
    """One batch with the rows of `batches`, in order."""
    batches = [b for b in batches if len(b)]
    if not batches:
        return ObservationBatch(np.zeros(0), [], [], {})
    if len(batches) == 1:
        return batches[0]
    n = sum(len(b) for b in batches)
    names: dict[str, None] = {}
    for b in batches:
        names.update(dict.fromkeys(b.columns))
    columns = {name: np.full(n, np.nan) for name in names}
    stations: list[str] = []
    sources: list[str] = []
    placed = any(b.lat is not None for b in batches)
    tagged = any(b.tags is not None for b in batches)
    lat = np.full(n, np.nan) if placed else None
    lon = np.full(n, np.nan) if placed else None
    tags: list[dict[str, str]] | None = [] if tagged else None
    offset = 0
    for b in batches:
        end = offset + len(b)
        for name, col in b.columns.items():
            columns[name][offset:end] = col
        stations.extend(b.station)
        sources.extend(b.source)
        if lat is not None and lon is not None and b.lat is not None and b.lon is not None:
            lat[offset:end] = b.lat
            lon[offset:end] = b.lon
        if tags is not None:
            tags.extend(b.tags if b.tags is not None else [_NO_TAGS] * len(b))
        offset = end
    return ObservationBatch(np.concatenate([b.ts for b in batches]), stations, sources, columns, lat, lon, tags)


def rows_by_station(stations: Sequence[str]) -> dict[str, list[int]]:
    """station -> its row indices (ascending), stations in order of first appearance; what a loop
    over the rows gives, grouped by numpy on integer codes (a replay's batch has 10^5 rows)."""
    index: dict[str, int] = {}
    for name in dict.fromkeys(stations):
        index[name] = len(index)
    if len(index) <= 1:
        return {name: list(range(len(stations))) for name in index}
    codes = np.fromiter(map(index.__getitem__, stations), np.int64, len(stations))
    order = np.argsort(codes, kind="stable")
    cuts = np.searchsorted(codes[order], np.arange(1, len(index)))
    return {name: part.tolist() for name, part in zip(index, np.split(order, cuts), strict=True)}
