"""Many observations as columns: what the engine scores and the store writes.

`sources.decode` fills them a column at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sources.schema import Observation

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
    extras = {}
    offset = 0
    for b in batches:
        for name, col in b.columns.items():
            columns[name][offset: offset + len(b)] = col
        stations.extend(b.station)
        sources.extend(b.source)
        extras.update({offset + i: e for i, e in b.extras.items()})
        offset += len(b)
    return ObservationBatch(np.concatenate([b.ts for b in batches]), stations, sources, columns, extras)
