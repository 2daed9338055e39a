"""What the UI shows, kept in the UI's process and read by the UI on a timer.

The engine runs in a worker process (`mass_tui.engine_process`); its sink
(`mass_tui.sinks.live.UpdateSink`) sends compact updates (`mass_tui.live_update.Update`:
new chart rows per series, anomalies, places, counters, status), and a
reader thread here applies each one with `apply()`. The UI takes
`snapshot()`s at its own pace. A snapshot copies no chart data: it notes how
many points each series had (`counts`), and the UI reads the rows it draws
with `rows(..., upto=count)`, so titles, sparklines, charts and the events
list all show the same moment, and a paused screen stays one moment whatever
the engine does. Nothing here imports Textual: the repaint rate never
follows the message rate.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from detectors.base import Anomaly
from mass_tui.ui.episodes import Episode, EpisodeBook

if TYPE_CHECKING:
    from mass_tui.live_update import Update

# Per point: what the chart draws and what a threshold "what-if" needs.
FIELDS = ("ts", "value", "forecast", "score", "spike_z", "level_z", "cusum", "burst", "mean", "sigma", "rules",
          "drift", "surprise")
COL = {name: i for i, name in enumerate(FIELDS)}


def trace_rows(times: np.ndarray, values: np.ndarray, score: np.ndarray, detail: dict[str, Any],
               rules: np.ndarray | None = None) -> np.ndarray:
    """The chart rows (n, len(FIELDS)) of one scored series: the detector views the ensemble gave
    (`Ensemble.detail`: resid_z, level_z, cusum_up/down, burst_ratio, level_mean/sigma, drift; NaN
    when absent; "surprise", the calibrated -log10 p that the alarm compares, from `SeriesDetectors.release`)
    and the highest rule score per value (1.0 = fired; 0 without rules)."""
    n = len(values)

    def col(name: str) -> np.ndarray:
        arr = detail.get(name)
        return np.full(n, np.nan) if arr is None else np.asarray(arr, dtype=np.float64)

    rows = np.empty((n, len(FIELDS)))
    rows[:, 0] = times
    rows[:, 1] = values
    rows[:, 2] = col("forecast")
    rows[:, 3] = score
    rows[:, 4] = col("resid_z")
    rows[:, 5] = col("level_z")
    rows[:, 6] = np.fmax(col("cusum_up"), col("cusum_down"))
    rows[:, 7] = col("burst_ratio")
    rows[:, 8] = col("level_mean")
    rows[:, 9] = col("level_sigma")
    rows[:, 10] = 0.0 if rules is None else rules
    rows[:, 11] = col("drift")
    rows[:, 12] = col("surprise")
    return rows


class Ring:
    """A ring of float rows, oldest dropped first past `capacity`.

    It starts small and doubles while it fills, so ten thousand quiet series
    do not each hold a full chart's worth of memory.
    """

    def __init__(self, capacity: int, width: int, initial: int = 256) -> None:
        self.capacity = capacity
        self.data = np.full((min(initial, capacity), width), np.nan)
        self.count = 0  # rows ever written

    def extend(self, rows: np.ndarray, skipped: int = 0) -> None:
        """Append `rows`; `skipped` rows that came before them were never sent (a coalesced update
        cut them, and then sends at least `capacity` rows, so the ring is replaced whole)."""
        self.count += skipped
        n = rows.shape[0]
        if n == 0:
            return
        width = self.data.shape[1]
        if n >= self.capacity:  # these rows replace everything kept
            self.count += n - self.capacity
            rows = rows[-self.capacity :]
            n = self.capacity
            if self.data.shape[0] < self.capacity:
                self.data = np.full((self.capacity, width), np.nan)
        size = self.data.shape[0]
        if self.count + n > size and size < self.capacity:
            # Still growing, so never wrapped: row j sits at j, in the old array and the new one.
            new = min(self.capacity, max(size * 2, self.count + n))
            grown = np.full((new, width), np.nan)
            grown[: self.count] = self.data[: self.count]
            self.data = grown
            size = new
        start = self.count % size
        first = min(n, size - start)
        self.data[start : start + first] = rows[:first]
        if first < n:
            self.data[: n - first] = rows[first:]
        self.count += n

    def view(self, upto: int | None = None, last: int | None = None) -> np.ndarray:
        """Rows oldest first (a copy): those written before row number `upto` (all when None),
        at most the `last` of them."""
        size = self.data.shape[0]
        end = self.count if upto is None else min(upto, self.count)
        begin = max(0, end - size, self.count - size)
        if last is not None:
            begin = max(begin, end - last)
        if end <= begin:
            return self.data[:0].copy()
        a, b = begin % size, end % size
        if b == 0:
            b = size
        if a < b:
            return self.data[a:b].copy()
        return np.concatenate((self.data[a:], self.data[:b]))


@dataclass
class StationInfo:
    """What the UI knows of one station: its clock (newest data time), where it is, what it measures."""

    name: str
    clock: float = float("-inf")
    points: int = 0
    anomalies: int = 0
    variables: list[str] = field(default_factory=list)
    source: str = ""
    lat: float | None = None
    lon: float | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Snapshot:
    taken: float
    stations: dict[str, StationInfo]
    counts: dict[tuple[str, str], int]  # points per series at this moment: read rows with upto=count
    anomaly_counts: dict[tuple[str, str], int]
    episodes: dict[str, Episode]  # id -> a copy without its readings (see LiveState.readings)
    status: dict[str, Any]
    version: int = 0  # changes whenever the state does
    latest: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # the newest row of each series

    @property
    def clock(self) -> float | None:
        """The newest data time of any station."""
        clocks = [s.clock for s in self.stations.values() if s.clock > float("-inf")]
        return max(clocks) if clocks else None


@dataclass
class LiveState:
    capacity: int = 20_000  # points per series kept for the charts (a replay's whole history)
    max_anomalies: int = 2_000
    series: dict[tuple[str, str], Ring] = field(default_factory=dict)
    anomaly_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    anomalies: deque = field(default_factory=deque)
    book: EpisodeBook = field(default_factory=EpisodeBook)
    stations: dict[str, StationInfo] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    notices: deque = field(default_factory=lambda: deque(maxlen=20))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rate: deque = field(default_factory=lambda: deque(maxlen=64))  # (wall time, count)
    version: int = 0
    # Monotonic times of batches not yet on screen, for the ingest-to-screen latency figure.
    unseen: deque = field(default_factory=lambda: deque(maxlen=100_000))
    _revs: dict[str, int] = field(default_factory=dict)  # episode id -> its rev when last copied
    # station -> (source, lat, lon, tags) known before its first message (the configuration's stations)
    known_places: dict[str, tuple] = field(default_factory=dict)
    # station -> labels (sources.labels: source, kind, tags), what the UI's silences match on
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # station -> the daily summaries of its days still open (the engine's aggregates), for the daily screen
    open_daily: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def _info(self, station: str) -> StationInfo:
        """The station's entry, made on first sight (with its configured place). Hold the lock."""
        info = self.stations.get(station)
        if info is None:
            info = self.stations[station] = StationInfo(station)
            known = self.known_places.get(station)
            if known is not None:
                info.lat, info.lon = known[1], known[2]
        return info

    # --- written by the reader of the engine's updates ------------------------------------
    def apply(self, update: Update) -> None:
        """One update from the engine (`mass_tui.live_update`): rows per series, places, labels, then
        the batch part (anomalies, counters, status, notices) at once."""
        for (station, variable), rows in update.rows.items():
            self._record_rows(station, variable, rows, update.skipped.get((station, variable), 0))
        if update.places:
            self.record_places(update.places)
        if update.labels or update.notices or update.dropped_anomalies or update.open_daily:
            with self._lock:
                self.labels.update(update.labels)
                self.open_daily.update(update.open_daily)
                self.notices.extend(update.notices)
                if update.dropped_anomalies:
                    self.status["ui_dropped_anomalies"] = self.status.get("ui_dropped_anomalies", 0) + \
                        update.dropped_anomalies
                    self.notices.append(f"the screen fell behind the engine: {update.dropped_anomalies} "
                                        "anomalies are not listed here (all are in the store)")
                self.version += 1
        if update.marks or update.anomalies or update.alerts:
            self._record(update.marks, update.anomalies, update.status, update.muted, update.alerts)
        elif update.status:
            self.update_status(**update.status)

    def record_series(self, station: str, variable: str, times: np.ndarray, values: np.ndarray,
                      score: np.ndarray, detail: dict[str, Any], rules: np.ndarray | None = None) -> None:
        """One scored batch of a series; `rules` is the highest rule score per value (1.0 = fired)."""
        self._record_rows(station, variable, trace_rows(times, values, score, detail, rules))

    def _record_rows(self, station: str, variable: str, rows: np.ndarray, skipped: int = 0) -> None:
        key = (station, variable)
        newest = float(np.max(rows[:, 0])) if rows.shape[0] else float("-inf")
        with self._lock:
            ring = self.series.get(key)
            if ring is None:
                ring = self.series[key] = Ring(self.capacity, len(FIELDS))
            ring.extend(rows, skipped)
            info = self._info(station)
            if variable not in info.variables:
                info.variables.append(variable)
            info.points = max(info.points, ring.count)
            if newest > info.clock:
                info.clock = newest
            self.version += 1

    def record_places(self, places: dict[str, tuple[str, float | None, float | None, dict[str, str] | None]]) -> None:
        """station -> (source, lat, lon, tags) of its newest message in a batch."""
        with self._lock:
            for station, (source, lat, lon, tags) in places.items():
                info = self._info(station)
                info.source = source
                if lat is not None and lon is not None:
                    info.lat, info.lon = lat, lon
                if tags:
                    info.tags = dict(tags)

    def record_batch(self, observations: int, anomalies: list[Anomaly], **status: Any) -> None:
        """A batch of `observations` scored now, with its anomalies and status."""
        self._record([(time.monotonic(), observations)], anomalies, status)

    def _record(self, marks: list[tuple[float, int]], anomalies: list[Anomaly], status: dict[str, Any],
                muted: dict[int, str] | None = None, alerts: list[tuple[str, str, str]] | None = None) -> None:
        """Batches scored at (monotonic time, observations), their anomalies (`muted`: index -> why their
        alerts are held back), the alert events (episode id, state, why muted), the newest status."""
        with self._lock:
            for a in anomalies:
                self.anomalies.append(a)
                key = (a.station, a.variable)
                self.anomaly_counts[key] = self.anomaly_counts.get(key, 0) + 1
                info = self._info(a.station)
                info.anomalies += 1
                if a.ts > info.clock:
                    info.clock = a.ts
            if anomalies:
                self.book.add(anomalies, muted)
            for ep_id, state, why in alerts or ():
                self.book.alert(ep_id, state, why)
            while len(self.anomalies) > self.max_anomalies:
                self.anomalies.popleft()
            total = self.status.get("observations", 0)
            for when, count in marks:
                total += count
                self._rate.append((when, total))
                self.unseen.append((when, count))
            self.status.update(status)
            self.status["observations"] = total
            self.version += 1

    def update_status(self, **status: Any) -> None:
        with self._lock:
            if any(self.status.get(k, object()) != v for k, v in status.items()):
                self.status.update(status)
                self.version += 1  # only a change: an idle source must not make the charts redraw

    def add_notice(self, text: str) -> None:
        """Something to tell the user once (a refused transport switch)."""
        with self._lock:
            self.notices.append(text)
            self.version += 1

    def drain_notices(self) -> list[str]:
        with self._lock:
            out = list(self.notices)
            self.notices.clear()
        return out

    # --- read by the UI ----------------------------------------------------
    def rate(self) -> float:
        """Messages per second over the last few seconds (0 once nothing came for 5 s)."""
        now = time.monotonic()
        with self._lock:
            points = [p for p in self._rate if p[0] >= now - 5.0]
        if len(points) < 2 or points[-1][0] == points[0][0] or now - points[-1][0] > 2.0:
            return 0.0  # nothing for 2 s: stopped, not slowly decaying
        return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])

    def drain_unseen(self) -> list[tuple[float, int]]:
        """(ingest time, messages) of every batch since the last call: the UI is about to show them."""
        with self._lock:
            out = list(self.unseen)
            self.unseen.clear()
        return out

    def snapshot(self, previous: Snapshot | None = None) -> Snapshot:
        """A consistent moment: every station, every series' length and newest row, the episodes.

        Episodes unchanged since `previous` are shared with it rather than copied again."""
        with self._lock:
            stations = {name: StationInfo(i.name, i.clock, i.points, i.anomalies, list(i.variables), i.source,
                                          i.lat, i.lon, i.tags)
                        for name, i in self.stations.items()}
            counts = {key: ring.count for key, ring in self.series.items()}
            latest = {key: ring.view(last=1)[0] for key, ring in self.series.items() if ring.count}
            old = previous.episodes if previous is not None else {}
            episodes: dict[str, Episode] = {}
            for ep_id, ep in self.book.by_id.items():
                mine = old.get(ep_id)
                if mine is not None and self._revs.get(ep_id) == ep.rev and mine.rev == ep.rev:
                    episodes[ep_id] = mine
                else:
                    episodes[ep_id] = ep.copy(with_readings=False)
                    self._revs[ep_id] = ep.rev
            if len(self._revs) > 2 * len(self.book.by_id) + 100:
                self._revs = {k: v for k, v in self._revs.items() if k in self.book.by_id}
            return Snapshot(time.time(), stations, counts, dict(self.anomaly_counts), episodes, dict(self.status),
                            self.version, latest)

    def rows(self, station: str, variable: str, upto: int | None = None, last: int | None = None) -> np.ndarray:
        """The rows (FIELDS) of one series written before point number `upto`, at most the `last` of them."""
        with self._lock:
            ring = self.series.get((station, variable))
            if ring is None:
                return np.empty((0, len(FIELDS)))
            return ring.view(upto, last)

    def readings(self, episode_id: str) -> list[Anomaly]:
        """The readings kept for one episode (its last few hundred), oldest first."""
        with self._lock:
            ep = self.book.by_id.get(episode_id)
            return list(ep.recent) if ep is not None else []

    def days_open(self, station: str) -> list[dict[str, Any]]:
        """The daily summaries of the station's days still open, as the engine last sent them."""
        with self._lock:
            return list(self.open_daily.get(station, []))

    def recent_anomalies(self) -> list[Anomaly]:
        with self._lock:
            return list(self.anomalies)
