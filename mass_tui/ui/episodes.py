"""Anomalies grouped into episodes: one row per ongoing condition, not one per reading.

An episode is one (station, variable, detector family) condition: the
anomalies of one family ("ensemble" for all of the statistical views,
else the rule's name) less than `GAP_SECONDS` apart in data time. When the
detectors fill `Anomaly.episode` (its id, start and peak), that id decides
instead; `episode_of()` is the one place that chooses. Pure Python, no
Textual: the engine's thread keeps an `EpisodeBook`, the UI reads copies.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from detectors.base import SEVERITIES, Anomaly
from sources.variables import REGISTRY

GAP_SECONDS = 3600.0  # anomalies of one condition at most this far apart (data time) are one episode
READINGS_KEPT = 200  # per episode, for its detail view (the count keeps going)
RANK = {s: i for i, s in enumerate(SEVERITIES)}  # info 0 < warning 1 < critical 2

# What fired, in words a person on call reads at a glance.
WHAT_FIRED = {
    "ensemble/spike": "sudden jump",
    "ensemble/shift": "level shift",
    "ensemble/level": "unusual level",
    "ensemble/drift": "slow drift",
    "ensemble/burst": "erratic readings",
    "pressure_tendency": "pressure change",
    "gust_limit": "gust over limit",
    "rapid_change": "rapid change",
    "bands": "past a set level",
    "zscore": "unusual value",
    "ewma": "slow drift",
    "cusum": "level shift",
}


def family(detector: str) -> str:
    """The detector family an episode belongs to: "ensemble" for every statistical view."""
    return detector.split("/", 1)[0]


def what_fired(detector: str, reason: str = "") -> str:
    """Plain words for a detector: "sudden jump", "gust over limit", "pressure falling"."""
    if detector == "pressure_tendency":
        return "pressure rising" if "rose" in reason else "pressure falling"
    if detector in WHAT_FIRED:
        return WHAT_FIRED[detector]
    return f"{detector} pattern" if "/" not in detector else detector.split("/", 1)[1]


def label_of(variable: str) -> str:
    var = REGISTRY.get(variable)
    return var.label if var is not None else variable


def unit_of(variable: str) -> str:
    var = REGISTRY.get(variable)
    return var.unit if var is not None else ""


@dataclass
class Episode:
    """One condition: its readings' span, worst severity, peak and latest reason.

    Times are data times (epoch seconds). `peak_*` is the reading with the
    highest score. `readings` counts every anomaly, `recent` keeps the last
    `READINGS_KEPT` of them.
    """

    id: str
    station: str
    variable: str
    family: str
    start: float
    last: float
    severity: str
    peak_score: float
    peak_value: float
    peak_ts: float
    peak_reason: str
    peak_detector: str
    last_reason: str
    last_detector: str
    readings: int = 0
    detectors: dict[str, int] = field(default_factory=dict)
    recent: deque = field(default_factory=lambda: deque(maxlen=READINGS_KEPT))
    # Why the alert service holds back notices of its newest anomaly ("silence ID", a mute time, an
    # inhibition): still stored and listed, not notified. "" when nothing mutes it.
    silenced: str = ""
    alert: str = ""  # the alert service's last word on it: firing, silenced, acked, resolved ("" none yet)
    rev: int = 0  # bumped on every change (the UI's snapshot copies only changed episodes)

    @property
    def what(self) -> str:
        return what_fired(self.peak_detector, self.peak_reason)

    @property
    def rank(self) -> int:
        return RANK.get(self.severity, 0)

    def ongoing(self, clock: float | None) -> bool:
        """Still open at data time `clock` (the station's newest reading): another anomaly would join it."""
        return clock is not None and clock - self.last <= GAP_SECONDS

    def duration(self, clock: float | None) -> float:
        """Seconds from the first reading to the last (to `clock` while ongoing)."""
        end = clock if self.ongoing(clock) and clock is not None else self.last
        return max(0.0, end - self.start)

    def copy(self, with_readings: bool = True) -> Episode:
        """A copy the UI may keep while the engine's thread goes on adding to the original
        (without the kept readings unless asked: the list needs only the summary)."""
        recent = deque(self.recent, maxlen=READINGS_KEPT) if with_readings else deque(maxlen=READINGS_KEPT)
        return replace(self, detectors=dict(self.detectors), recent=recent)


def episode_of(a: Anomaly, open_episodes: Mapping[tuple[str, str, str], Episode]) -> tuple[str, float] | None:
    """(id, start) of the episode `a` joins: the detectors' own when set, else the open one of its key
    within GAP_SECONDS; None when `a` starts a new one."""
    if a.episode:
        start = a.episode_start if math.isfinite(a.episode_start) else a.ts
        return a.episode, start
    key = (a.station, a.variable, family(a.detector))
    ep = open_episodes.get(key)
    if ep is not None and a.ts - ep.last <= GAP_SECONDS and a.ts >= ep.start - GAP_SECONDS:
        return ep.id, ep.start
    return None


def new_id(a: Anomaly) -> str:
    """A stable id for an episode found here: the same replay gives the same ids (acks keep)."""
    return f"{a.station}|{a.variable}|{family(a.detector)}|{a.ts:.0f}"


class EpisodeBook:
    """Episodes kept up to date as anomalies arrive, oldest ended ones dropped past `capacity`."""

    def __init__(self, capacity: int = 5000) -> None:
        self.capacity = capacity
        self.by_id: dict[str, Episode] = {}
        self._open: dict[tuple[str, str, str], Episode] = {}
        self.version = 0

    def add(self, anomalies: Iterable[Anomaly], muted: Mapping[int, str] | None = None) -> None:
        """Anomalies in time order; `muted` maps an anomaly's index here to why its alerts are held back."""
        muted = muted or {}
        for i, a in enumerate(anomalies):
            found = episode_of(a, self._open)
            if found is not None and found[0] in self.by_id:
                ep = self.by_id[found[0]]
            else:
                ep_id, start = found if found is not None else (new_id(a), a.ts)
                ep = Episode(ep_id, a.station, a.variable, family(a.detector), min(start, a.ts), a.ts, a.severity,
                             -math.inf, a.value, a.ts, a.reason, a.detector, a.reason, a.detector)
                self.by_id[ep_id] = ep
            self._update(ep, a)
            ep.silenced = muted.get(i, "")
            self._open[(a.station, a.variable, ep.family)] = ep
        self.version += 1
        if len(self.by_id) > self.capacity:
            self._trim()

    def alert(self, episode_id: str, state: str, why: str = "") -> bool:
        """The alert service's newest event about an episode (`alert_state()` of it); False when the
        episode is not (or no longer) kept here."""
        ep = self.by_id.get(episode_id)
        if ep is None:
            return False
        ep.alert = state
        if why:
            ep.silenced = why
        ep.rev += 1
        self.version += 1
        return True

    @staticmethod
    def _update(ep: Episode, a: Anomaly) -> None:
        ep.rev += 1
        ep.readings += 1
        ep.detectors[a.detector] = ep.detectors.get(a.detector, 0) + 1
        ep.recent.append(a)
        if a.ts >= ep.last:
            ep.last = a.ts
            ep.last_reason, ep.last_detector = a.reason, a.detector
        ep.start = min(ep.start, a.ts)
        if RANK.get(a.severity, 0) > ep.rank:
            ep.severity = a.severity
        score = a.episode_peak if a.episode and math.isfinite(a.episode_peak) and a.episode_peak > a.score \
            else a.score
        if score > ep.peak_score or (score == ep.peak_score and a.ts > ep.peak_ts):
            ep.peak_score = score
            if score == a.score:  # the detectors' peak may be a reading this UI never saw
                ep.peak_value, ep.peak_ts = a.value, a.ts
            ep.peak_reason, ep.peak_detector = a.reason, a.detector

    def _trim(self) -> None:
        """Drop the episodes that ended longest ago, down to 90 % of capacity."""
        keep = int(self.capacity * 0.9)
        ordered = sorted(self.by_id.values(), key=lambda e: e.last)
        for ep in ordered[: len(ordered) - keep]:
            del self.by_id[ep.id]
            key = (ep.station, ep.variable, ep.family)
            if self._open.get(key) is ep:
                del self._open[key]

    def episodes(self) -> list[Episode]:
        return list(self.by_id.values())


def alert_state(kind: str, muted: str | None, acked: bool) -> str:
    """An alert event (`mass_tui.alerts.model.AlertEvent`: kind alert/repeat/escalated/resolved, why
    it was muted, acked) as the state the UI shows: silenced, acked, resolved or firing."""
    if muted:
        return "silenced"
    if kind == "resolved":
        return "resolved"
    return "acked" if acked else "firing"


def group(anomalies: Iterable[Anomaly]) -> list[Episode]:
    """Every episode of `anomalies` (in time order), as the live book would have built them."""
    book = EpisodeBook(capacity=10**9)
    book.add(sorted(anomalies, key=lambda a: a.ts))
    return book.episodes()
