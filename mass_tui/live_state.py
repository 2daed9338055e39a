"""What the UI shows, kept by the engine's thread and read by the UI on a timer.

Its sink (`mass_tui.sinks.live`) calls `record_series()` for every scored batch of a (station,
variable) and `record_batch()` once per batch; the UI takes `snapshot()`s at
its own pace. Nothing here imports Textual: the repaint rate never follows
the message rate, and the headless service could serve the same state.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.base import Anomaly

# Per point: what the chart draws and what a threshold "what-if" needs.
FIELDS = ("ts", "value", "forecast", "score", "spike_z", "level_z", "cusum", "burst", "mean", "sigma", "rules",
          "drift")


class Ring:
    """A fixed-capacity ring of float rows, oldest dropped first."""

    def __init__(self, capacity: int, width: int) -> None:
        self.data = np.full((capacity, width), np.nan)
        self.capacity = capacity
        self.count = 0  # rows ever written

    def extend(self, rows: np.ndarray) -> None:
        n = rows.shape[0]
        if n >= self.capacity:
            rows = rows[-self.capacity :]
            n = self.capacity
        start = self.count % self.capacity
        first = min(n, self.capacity - start)
        self.data[start : start + first] = rows[:first]
        if first < n:
            self.data[: n - first] = rows[first:]
        self.count += n

    def view(self) -> np.ndarray:
        """Rows oldest first (a copy)."""
        if self.count <= self.capacity:
            return self.data[: self.count].copy()
        start = self.count % self.capacity
        return np.concatenate((self.data[start:], self.data[:start]))


@dataclass
class SeriesSnapshot:
    station: str
    variable: str
    rows: np.ndarray  # columns as FIELDS
    anomalies: int

    def column(self, name: str) -> np.ndarray:
        return self.rows[:, FIELDS.index(name)]


@dataclass
class Snapshot:
    taken: float
    stations: dict[str, dict[str, Any]]  # name -> {"anomalies": n, "last_ts": t, "variables": [...]}
    series: dict[tuple[str, str], SeriesSnapshot]
    anomalies: list[Anomaly]
    status: dict[str, Any]
    version: int = 0  # changes whenever the state does


@dataclass
class LiveState:
    capacity: int = 20_000  # points per series kept for the charts (a replay's whole history)
    max_anomalies: int = 2_000
    series: dict[tuple[str, str], Ring] = field(default_factory=dict)
    anomaly_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    anomalies: deque = field(default_factory=deque)
    status: dict[str, Any] = field(default_factory=dict)
    notices: deque = field(default_factory=lambda: deque(maxlen=20))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rate: deque = field(default_factory=lambda: deque(maxlen=64))  # (wall time, count)
    version: int = 0
    # Monotonic times of batches not yet on screen, for the ingest-to-screen latency figure.
    unseen: deque = field(default_factory=lambda: deque(maxlen=100_000))

    # --- written by the engine's thread ------------------------------------
    def record_series(self, station: str, variable: str, times: np.ndarray, values: np.ndarray,
                      score: np.ndarray, detail: dict[str, Any], rules: np.ndarray | None = None) -> None:
        """One scored batch of a series; `rules` is the highest rule score per value (1.0 = fired)."""
        def col(name: str) -> np.ndarray:
            arr = detail.get(name)
            return np.full(len(values), np.nan) if arr is None else np.asarray(arr, dtype=np.float64)

        cusum = np.maximum(col("cusum_up"), col("cusum_down"))
        rows = np.column_stack((times, values, col("forecast"), score, col("resid_z"), col("level_z"), cusum,
                                col("burst_ratio"), col("level_mean"), col("level_sigma"),
                                np.zeros(len(values)) if rules is None else rules, col("drift")))
        key = (station, variable)
        with self._lock:
            ring = self.series.get(key)
            if ring is None:
                ring = self.series[key] = Ring(self.capacity, len(FIELDS))
            ring.extend(rows)
            self.version += 1

    def record_batch(self, observations: int, anomalies: list[Anomaly], **status: Any) -> None:
        now = time.monotonic()
        with self._lock:
            for a in anomalies:
                self.anomalies.append(a)
                key = (a.station, a.variable)
                self.anomaly_counts[key] = self.anomaly_counts.get(key, 0) + 1
            while len(self.anomalies) > self.max_anomalies:
                self.anomalies.popleft()
            total = self.status.get("observations", 0) + observations
            self._rate.append((now, total))
            self.unseen.append((now, observations))
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

    def drain_notices(self) -> list[str]:
        with self._lock:
            out = list(self.notices)
            self.notices.clear()
        return out

    # --- read by the UI ----------------------------------------------------
    def rate(self) -> float:
        """Messages per second over the last few seconds."""
        with self._lock:
            points = [p for p in self._rate if p[0] >= time.monotonic() - 5.0]
        if len(points) < 2 or points[-1][0] == points[0][0]:
            return 0.0
        return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])

    def drain_unseen(self) -> list[tuple[float, int]]:
        """(ingest time, messages) of every batch since the last call: the UI is about to show them."""
        with self._lock:
            out = list(self.unseen)
            self.unseen.clear()
        return out

    def snapshot(self, station: str | None = None) -> Snapshot:
        """A consistent copy: every station's summary, the chosen station's series, recent anomalies."""
        with self._lock:
            stations: dict[str, dict[str, Any]] = {}
            for (st, var), ring in self.series.items():
                info = stations.setdefault(st, {"anomalies": 0, "variables": [], "points": 0})
                info["variables"].append(var)
                info["anomalies"] += self.anomaly_counts.get((st, var), 0)
                info["points"] = max(info["points"], ring.count)
            series = {
                key: SeriesSnapshot(key[0], key[1], ring.view(), self.anomaly_counts.get(key, 0))
                for key, ring in self.series.items() if key[0] == station
            }
            return Snapshot(time.time(), stations, series, list(self.anomalies), dict(self.status), self.version)
