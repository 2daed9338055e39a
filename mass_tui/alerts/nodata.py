"""No data: a station, or one variable of a station, silent for longer than `factor` times its usual
interval (and at least `min_seconds`).

The usual interval of a series is the median of its last 16 gaps between
readings (gaps of an outage itself excluded), known once it has 3 gaps.

The rule, in data time and in wall time:

- **Data time.** A station is silent at data time T when the newest
  reading of any station (the data clock) is T and its own last reading is
  older than T - threshold. The alert opens at last + threshold, the moment
  a live system would have noticed, and resolves at its next reading. A
  replay therefore raises the alerts the live system would have raised. A
  gap seen only when the station comes back (a replay of that station
  alone) opens and resolves at once, each notice with its own data time.
- **Wall time, live sources only.** When the whole feed stops, data time
  stops too; so for a live source a station is also silent once `threshold`
  of wall time has passed since its last reading was processed. Replays
  and simulated time never use the wall clock (a paused or finished replay
  is not an outage), and after a restart every station gets a fresh
  threshold of wall time (mass being down is not the station's fault).
- **A variable** is silent when its station keeps reporting without it: its
  no-data alert opens at the first station reading past the variable's
  threshold. A station that is silent altogether raises only the station's
  alert, never one per variable.
"""

from __future__ import annotations

import heapq
import logging
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from mass_tui.alerts.readings import Readings
from sources.schema import iso_utc

log = logging.getLogger(__name__)

GAPS_KEPT = 16
MIN_GAPS = 3
# Series watched at most: past this, new series are not watched for no data (logged once), so a flood of
# new station names costs bounded memory here (about 0.6 KB per series).
MAX_SERIES = 200_000


@dataclass
class SeriesClock:
    last: float  # data time of its latest reading
    received: float  # wall time that reading was processed
    gaps: list[float] = field(default_factory=list)

    def interval(self) -> float | None:
        return statistics.median(self.gaps) if len(self.gaps) >= MIN_GAPS else None


@dataclass(frozen=True)
class Condition:
    """A no-data alert to open or close at data time `ts`."""

    ts: float
    opened: bool
    station: str
    variable: str  # "" for the whole station
    since: float  # data time of the last reading before the silence
    interval: float  # the usual interval, seconds

    def reason(self, station_shown: str) -> str:
        what = f"{self.variable} at {station_shown}" if self.variable else station_shown
        usual = _human(self.interval)
        if self.opened:
            return f"no data from {what} since {iso_utc(self.since)} (usual interval {usual})"
        return f"data from {what} again at {iso_utc(self.ts)} after {_human(self.ts - self.since)} without"


def _human(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class NoDataTracker:
    def __init__(self, *, factor: float, min_seconds: float, variables: bool = True, live: bool = False) -> None:
        self.factor = factor
        self.min_seconds = min_seconds
        self.variables = variables
        self.live = live
        self.series: dict[tuple[str, str], SeriesClock] = {}
        self.silent: dict[tuple[str, str], float] = {}  # series with an open no-data condition -> its last reading
        self._variables: dict[str, list[tuple[str, str]]] = {}  # station -> its variable series
        self.data_clock = -np.inf
        self._due: list[tuple[float, str]] = []  # (last + threshold, station): stations to look at in data time
        self._full = False

    def threshold(self, clock: SeriesClock) -> float | None:
        iv = clock.interval()
        return None if iv is None else max(self.factor * iv, self.min_seconds)

    def warm(self, readings: Readings, wall: float) -> None:
        """Learn last readings and intervals from stored data (no conditions)."""
        for key, times in readings.times.items():
            if key[1] and not self.variables:
                continue
            self._advance(key, times, wall)
        if readings.clock:
            self.data_clock = max(self.data_clock, max(readings.clock.values()))

    def _advance(self, key: tuple[str, str], times: np.ndarray, wall: float,
                 threshold: float | None = None) -> SeriesClock:
        clock = self.series.get(key)
        if clock is None:
            if len(self.series) >= MAX_SERIES:
                if not self._full:
                    self._full = True
                    log.warning("no-data: %d series watched already; new ones (from %s on) are not", MAX_SERIES,
                                key)
                return SeriesClock(float(times[-1]), wall)
            clock = self.series[key] = SeriesClock(float(times[0]), wall)
            if key[1]:
                self._variables.setdefault(key[0], []).append(key)
            gaps = np.diff(times)
        else:
            gaps = np.diff(times, prepend=clock.last)
        gaps = gaps[gaps > 0]
        if threshold is not None:
            gaps = gaps[gaps <= threshold]  # an outage is not the usual interval
        if len(gaps):
            clock.gaps = (clock.gaps + gaps[-GAPS_KEPT:].tolist())[-GAPS_KEPT:]
        clock.last = max(clock.last, float(times[-1]))
        clock.received = wall
        if key[1] == "" and (thr := self.threshold(clock)) is not None:
            heapq.heappush(self._due, (clock.last + thr, key[0]))
        return clock

    def observe(self, readings: Readings, wall: float) -> list[Condition]:
        """Conditions a batch opens and closes, in data time order."""
        out: list[Condition] = []
        for key, times in readings.times.items():
            station, variable = key
            if variable and not self.variables:
                continue
            if len(times) == 1 and key in self.series:
                self._one(key, float(times[0]), wall, readings, out)  # the live case, in plain floats
                continue
            clock = self.series.get(key)
            if clock is None:
                if key in self.silent:  # open before a restart, and back now
                    since = self.silent.pop(key)
                    out.append(Condition(float(times[0]), False, station, variable, since, float(times[0]) - since))
                clock = self._advance(key, times[:1], wall)  # the rest of the batch is checked below
            thr = self.threshold(clock)
            if thr is None:  # the usual interval is not known yet: learn it from this batch first
                probe = np.diff(times, prepend=clock.last)
                probe = probe[probe > 0][:GAPS_KEPT]
                if len(clock.gaps) + len(probe) >= MIN_GAPS:
                    iv = statistics.median(clock.gaps + probe.tolist())
                    thr = max(self.factor * iv, self.min_seconds)
            if thr is not None:
                out.extend(self._gaps(key, clock, times, thr, readings))
            self._advance(key, times, wall, thr)
        if readings.clock:
            self.data_clock = max(self.data_clock, max(readings.clock.values()))
        out.extend(self._overdue_stations())
        if self.variables:
            out.extend(self._overdue_variables(readings))
        out.sort(key=lambda c: (c.ts, not c.opened))
        return out

    def _one(self, key: tuple[str, str], t: float, wall: float, readings: Readings, out: list[Condition]) -> None:
        """`observe` for a series with one new reading: the same rules without numpy."""
        clock = self.series[key]
        gap = t - clock.last
        thr = self.threshold(clock)
        if thr is None and gap > 0 and len(clock.gaps) + 1 >= MIN_GAPS:
            thr = max(self.factor * statistics.median([*clock.gaps, gap]), self.min_seconds)
        if thr is not None and (gap > thr or key in self.silent):
            out.extend(self._gaps(key, clock, np.array([t]), thr, readings))
        if gap > 0 and (thr is None or gap <= thr):
            clock.gaps.append(gap)
            if len(clock.gaps) > GAPS_KEPT:
                del clock.gaps[0]
        if t > clock.last:
            clock.last = t
        clock.received = wall
        if not key[1] and (thr := self.threshold(clock)) is not None:
            heapq.heappush(self._due, (clock.last + thr, key[0]))

    def _gaps(self, key: tuple[str, str], clock: SeriesClock, times: np.ndarray, thr: float,
              readings: Readings) -> list[Condition]:
        station, variable = key
        iv = clock.interval() or thr / self.factor
        out = []
        prev = np.concatenate(([clock.last], times[:-1]))
        big = np.flatnonzero(times - prev > thr)
        for i in big.tolist():
            before, after = float(prev[i]), float(times[i])
            if key in self.silent:  # opened earlier (data clock or wall time): it ends here
                del self.silent[key]
                out.append(Condition(after, False, station, variable, before, iv))
                continue
            if variable:
                # Only when the station reported in the gap (else the station's own alert says it).
                opened = readings.nth_after(station, "", before + thr, 1)
                if opened is None or opened >= after:
                    continue
            else:
                opened = before + thr
            out.append(Condition(opened, True, station, variable, before, iv))
            out.append(Condition(after, False, station, variable, before, iv))
        if key in self.silent and len(times) and not len(big):
            # opened on the wall clock before the gap grew past the threshold in data time
            del self.silent[key]
            out.append(Condition(float(times[0]), False, station, variable, clock.last, iv))
        return out

    def _overdue_stations(self) -> list[Condition]:
        """Stations the data clock has left behind (each checked when its deadline passes)."""
        out = []
        while self._due and self._due[0][0] <= self.data_clock:
            _, station = heapq.heappop(self._due)
            key = (station, "")
            clock = self.series.get(key)
            if clock is None or key in self.silent:
                continue
            thr = self.threshold(clock)
            if thr is None or clock.last + thr > self.data_clock:
                continue  # it reported since; a later deadline is queued
            self.silent[key] = clock.last
            out.append(Condition(clock.last + thr, True, station, "", clock.last, thr / self.factor))
        return out

    def _overdue_variables(self, readings: Readings) -> list[Condition]:
        """Variables of the batch's stations that stopped while their station goes on reporting."""
        out = []
        for station in readings.stations():
            station_clock = self.series.get((station, ""))
            if station_clock is None:
                continue
            for key, clock in self._variables_of(station):
                if key in self.silent or readings.has(*key):
                    continue
                thr = self.threshold(clock)
                if thr is None or station_clock.last <= clock.last + thr:
                    continue
                opened = readings.nth_after(station, "", clock.last + thr, 1) or station_clock.last
                self.silent[key] = clock.last
                out.append(Condition(opened, True, station, key[1], clock.last, thr / self.factor))
        return out

    def _variables_of(self, station: str) -> Iterable[tuple[tuple[str, str], SeriesClock]]:
        return [(k, self.series[k]) for k in self._variables.get(station, [])]

    def wall_check(self, wall: float) -> list[Condition]:
        """Live sources: stations silent for their threshold of wall time (the feed itself may have stopped)."""
        if not self.live:
            return []
        out = []
        for key, clock in self.series.items():
            if key[1] or key in self.silent:
                continue
            thr = self.threshold(clock)
            if thr is not None and wall - clock.received > thr:
                self.silent[key] = clock.last
                out.append(Condition(clock.last + thr, True, key[0], "", clock.last, thr / self.factor))
        return out

    def restore_silent(self, station: str, variable: str, since: float) -> None:
        """A no-data condition still open from before a restart: closed when the series reports again."""
        self.silent[(station, variable)] = since
