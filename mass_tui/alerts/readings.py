"""Which readings a batch holds, per series: what pending periods, recovery and no-data count.

A series is a (station, variable) pair; `(station, "")` is the station
itself (any observation of it). Times are data time, sorted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from sources.batch import ObservationBatch

_EMPTY = np.empty(0)


class Readings:
    def __init__(self, times: dict[tuple[str, str], np.ndarray]) -> None:
        self.times = times
        # station -> its latest reading in the batch: the station's data clock
        self.clock: dict[str, float] = {k[0]: float(t[-1]) for k, t in times.items() if k[1] == "" and len(t)}

    @classmethod
    def of_batch(cls, batch: ObservationBatch, by_station: Mapping[str, list[int]]) -> Readings:
        times: dict[tuple[str, str], np.ndarray] = {}
        ts = batch.ts
        columns = batch.columns
        for station, rows in by_station.items():
            if len(rows) == 1:  # the live case: no fancy indexing
                row = rows[0]
                t = ts[row: row + 1]
                times[(station, "")] = t
                for name, col in columns.items():
                    v = col[row]
                    if v == v:
                        times[(station, name)] = t
                continue
            idx = np.asarray(rows)
            t = ts[idx]
            if len(t) > 1 and np.any(t[1:] < t[:-1]):
                order = np.argsort(t, kind="stable")
                t, idx = t[order], idx[order]
            times[(station, "")] = t
            for name, col in columns.items():
                present = ~np.isnan(col[idx])
                if present.all():
                    times[(station, name)] = t
                elif present.any():
                    times[(station, name)] = t[present]
        return cls(times)

    @classmethod
    def of_times(cls, series: Mapping[str | tuple[str, str], Iterable[float]]) -> Readings:
        """From plain times: `{"s": [...]}` (a station, every variable) or `{("s", "gust_mps"): [...]}`."""
        times: dict[tuple[str, str], np.ndarray] = {}
        for key, values in series.items():
            arr = np.sort(np.asarray(list(values), dtype=float))
            if isinstance(key, str):
                times[(key, "")] = arr
            else:
                times[key] = arr
                times.setdefault((key[0], ""), arr)
        return cls(times)

    def of(self, station: str, variable: str = "") -> np.ndarray:
        return self.times.get((station, variable), _EMPTY)

    def has(self, station: str, variable: str) -> bool:
        return (station, variable) in self.times

    def count(self, station: str, variable: str, after: float, upto: float, *, inclusive: bool = True) -> int:
        """Readings of the series with after < t <= upto (t < upto when not inclusive)."""
        t = self.of(station, variable)
        if not len(t):
            return 0
        lo = int(np.searchsorted(t, after, side="right"))
        hi = int(np.searchsorted(t, upto, side="right" if inclusive else "left"))
        return max(0, hi - lo)

    def nth_after(self, station: str, variable: str, after: float, n: int) -> float | None:
        """The time of the n-th reading (1-based) of the series after `after`, None when the batch has fewer."""
        t = self.of(station, variable)
        i = int(np.searchsorted(t, after, side="right")) + n - 1
        return float(t[i]) if n >= 1 and i < len(t) else None

    def stations(self) -> list[str]:
        return list(self.clock)
