"""Alert rules and episodes: anomalies in, notices out.

An episode belongs to a (station, rule). It opens **pending** with the
first matching anomaly and starts **firing** when the rule's pending
condition holds:

- `for = "10m"`: matching readings without a clean one between them for at
  least that long (Prometheus' `for`: every evaluation, here every reading
  of the series, must match);
- `readings = N`, `of = M`: N of the last M readings matched;
- neither: at once.

A firing episode notifies ("alert", unless the last notice of that
(station, rule) is younger than the cooldown), again every `repeat` while
matching anomalies keep coming ("repeat", not once the episode is
acknowledged), at once on a worse severity ("escalated"), and once when it
**recovers** ("resolved"): no matching anomaly for `resolve_after` of the
station's data time *and* at least `recover_readings` clean readings since
the last one. A station that stops reporting therefore never looks
recovered; it gets a no-data alert instead (`nodata.py`). Conditions that
are not anomalies (no data, a source down) open and close episodes
through `open_condition` / `close_condition`.

Every notice passes the `mute` function (silences, mute times,
inhibitions) at the moment it is made, in data time order: a muted notice
is returned with its reason but does not count as notified, so an episode
opened inside a silence alerts at its next matching anomaly after the
silence ends, and one never notified has no "resolved" either.

Everything is timed by observation timestamps, so a replay at any speed
alerts as the live system would have.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.base import Anomaly
from mass_tui.alerts.durations import DurationError, parse_duration
from mass_tui.alerts.matchers import Matcher, MatcherError, matchers_from_config, matches_all
from mass_tui.alerts.model import AlertEvent, short_id
from mass_tui.alerts.readings import Readings
from mass_tui.alerts.state import StoredEpisode

log = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_RULE_KEYS = {"name", "detectors", "variables", "min_severity", "matchers", "for", "readings", "of", "resolve_after",
              "recover_readings"}

__all__ = ["AlertConfigError", "AlertEvent", "AlertManager", "AlertRule", "Episode", "rules_from_config"]


class AlertConfigError(ValueError):
    pass


@dataclass(frozen=True)
class AlertRule:
    """Which anomalies alert, and the pending and recovery conditions of its episodes."""

    name: str
    detectors: tuple[str, ...]
    variables: tuple[str, ...] | None = None
    min_severity: str = "warning"
    matchers: tuple[Matcher, ...] = ()  # on the station's labels
    for_s: float = 0.0
    readings: int = 1
    of: int = 1
    resolve_after_s: float | None = None  # None: alerts.resolve_after_min
    recover_readings: int = 1

    def matches(self, anomaly: Anomaly, labels: Mapping[str, str] | None = None) -> bool:
        if SEVERITY_RANK.get(anomaly.severity, 0) < SEVERITY_RANK[self.min_severity]:
            return False
        if self.variables is not None and anomaly.variable not in self.variables:
            return False
        det = anomaly.detector
        if not any(det == d or det.startswith(d + "/") for d in self.detectors):
            return False
        return not self.matchers or matches_all(self.matchers, labels or {"station": anomaly.station})

    @property
    def immediate(self) -> bool:
        return self.for_s <= 0 and self.readings <= 1

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> AlertRule:
        if not isinstance(table, Mapping):
            raise AlertConfigError(f"{where} = {table!r}: expected a table with name and detectors")
        unknown = set(table) - _RULE_KEYS
        if unknown:
            raise AlertConfigError(f"{where}.{sorted(unknown)[0]}: unknown key; "
                                   f"expected {', '.join(sorted(_RULE_KEYS))}")
        try:
            name = str(table["name"])
            detectors = table["detectors"]
            if isinstance(detectors, str) or not all(isinstance(d, str) for d in detectors):
                raise TypeError("detectors must be a list of names")
            detectors = tuple(detectors)
            variables = table.get("variables")
            severity = str(table.get("min_severity", "warning"))
        except (KeyError, TypeError) as exc:
            raise AlertConfigError(f"{where} = {dict(table)!r}: expected name, detectors ({exc})") from None
        if severity not in SEVERITY_RANK:
            raise AlertConfigError(f"{where}.min_severity = {severity!r}: expected info, warning or critical")
        if not detectors:
            raise AlertConfigError(f"{where}.detectors is empty: expected at least one detector name")
        if variables is not None and (isinstance(variables, str) or not all(isinstance(v, str) for v in variables)):
            raise AlertConfigError(f"{where}.variables = {variables!r}: expected a list of variable names")
        try:
            matchers = tuple(matchers_from_config(table.get("matchers", []), f"{where}.matchers"))
        except MatcherError as exc:
            raise AlertConfigError(str(exc)) from None
        try:
            for_s = parse_duration(table.get("for", 0))
            resolve = table.get("resolve_after")
            resolve_s = None if resolve is None else parse_duration(resolve)
        except DurationError as exc:
            raise AlertConfigError(f"{where}: {exc}") from None
        counts = {}
        for key, default in (("readings", 1), ("of", None), ("recover_readings", 1)):
            value = table.get(key, default)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
                raise AlertConfigError(f"{where}.{key} = {value!r}: expected a whole number of readings in [0, 10000]")
            counts[key] = value
        n = max(1, counts["readings"])
        m = counts.get("of", n)
        if m < n:
            raise AlertConfigError(f"{where}.of = {m}: expected at least readings = {n}")
        if for_s > 0 and m > 1:
            raise AlertConfigError(f"{where}: give either for (a duration) or readings/of (N of M), not both")
        return cls(name, detectors, tuple(variables) if variables else None, severity, matchers, for_s, n, m,
                   resolve_s, counts["recover_readings"])


@dataclass
class Episode:
    id: str
    station: str
    rule: str
    part: str  # "" or the variable of a per-variable condition (no data from one variable)
    series: str  # the variable whose readings count for pending and recovery ("" = the station's)
    state: str  # "pending" or "firing"
    start: float  # data time of the first matching anomaly
    last: float  # data time of the latest matching anomaly
    notified_at: float | None  # data time of the latest notice that went out
    notified_severity: str
    worst: Anomaly
    labels: dict[str, str]
    count: int = 1
    clean: int = 0  # clean readings after `last`, counted up to the previous batch
    touched: bool = True  # `last` moved in the current batch
    window: list[bool] = field(default_factory=list)  # pending N of M: the last M readings, matched or not
    muted: str | None = None  # why its latest notice was held back
    quiet: bool = False  # opened inside the cooldown: no notices at all
    external: bool = False  # a condition (no data, source down), closed by close_condition
    notified_wall: float = 0.0
    # The detectors' episode ids (Anomaly.episode) this alert episode carries: acknowledging one of
    # them (the UI's `a` on an event row) acknowledges this episode too.
    detector_episodes: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.station, self.rule, self.part)

    def to_body(self) -> dict[str, Any]:
        w = self.worst
        return {"part": self.part, "series": self.series, "start": self.start, "last": self.last,
                "notified_at": self.notified_at, "notified_severity": self.notified_severity, "count": self.count,
                "clean": self.clean, "muted": self.muted, "quiet": self.quiet, "external": self.external,
                "labels": self.labels, "worst": [w.ts, w.station, w.variable, None if w.value != w.value else w.value,
                                                 w.detector, w.severity, w.score, w.reason],
                "detector_episodes": sorted(self.detector_episodes)}

    @classmethod
    def from_stored(cls, s: StoredEpisode) -> Episode:
        b = s.body
        ts, station, variable, value, detector, severity, score, reason = b["worst"]
        worst = Anomaly(ts, station, variable, math.nan if value is None else value, detector, severity, score, reason)
        return cls(s.id, s.station, s.rule, b.get("part", ""), b.get("series", ""), s.state, b["start"], b["last"],
                   b.get("notified_at"), b.get("notified_severity", "info"), worst, dict(b.get("labels", {})),
                   int(b.get("count", 1)), int(b.get("clean", 0)), False, [], b.get("muted"), bool(b.get("quiet")),
                   bool(b.get("external")), detector_episodes=set(b.get("detector_episodes", ())))


Mute = Callable[[AlertEvent], "str | None"]
LabelsOf = Callable[[str], Mapping[str, str]]


class AlertManager:
    """Episodes of every (station, rule), their notices, and what has to be saved (`changes()`)."""

    def __init__(
        self,
        rules: Iterable[AlertRule],
        *,
        cooldown_s: float,
        repeat_s: float,
        resolve_after_s: float,
        notify_resolved: bool = True,
        units: Mapping[str, str] | None = None,
        labels_of: LabelsOf | None = None,
    ) -> None:
        self.rules = list(rules)
        self.cooldown_s = cooldown_s
        self.repeat_s = repeat_s
        self.resolve_after_s = resolve_after_s
        self.notify_resolved = notify_resolved
        self.units = dict(units or {})
        self.labels_of: LabelsOf = labels_of or (lambda station: {"station": station})
        self.mute: Mute | None = None
        self.acked: set[str] = set()
        self.active: dict[tuple[str, str, str], Episode] = {}
        self.last_notified: dict[tuple[str, str], float] = {}
        self._dirty: set[tuple[str, str, str]] = set()
        self._closed: list[str] = []
        self._cool_dirty: set[tuple[str, str]] = set()
        self._rule_by_name = {r.name: r for r in self.rules}
        self.firing_version = 0  # changes whenever an episode starts firing or closes (inhibition caches on it)

    def set_rules(self, rules: Iterable[AlertRule]) -> None:
        """New rules (a reload): episodes of rules that are gone stay until they recover."""
        self.rules = list(rules)
        self._rule_by_name = {r.name: r for r in self.rules}

    # --- state kept across restarts ------------------------------------------
    def restore(self, stored: Iterable[StoredEpisode], cooldowns: Mapping[tuple[str, str], float]) -> int:
        """Open episodes and cooldowns saved by an earlier process; returns how many episodes came back."""
        n = 0
        for s in stored:
            try:
                ep = Episode.from_stored(s)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("alert state: episode %s unreadable (%s); dropped", s.id, exc)
                continue
            ep.touched = False
            self.active[ep.key] = ep
            self.firing_version += 1
            n += 1
        self.last_notified.update(cooldowns)
        return n

    def changes(self) -> tuple[list[StoredEpisode], list[str], list[tuple[str, str, float]]]:
        """Firing episodes that changed, ids of closed ones, changed cooldowns; then forgets them."""
        upserts = [StoredEpisode(ep.id, ep.station, ep.rule, ep.state, ep.to_body())
                   for key in self._dirty if (ep := self.active.get(key)) is not None and ep.state == "firing"]
        closed, self._closed = self._closed, []
        cools = [(k[0], k[1], self.last_notified[k]) for k in self._cool_dirty if k in self.last_notified]
        self._dirty.clear()
        self._cool_dirty.clear()
        return upserts, closed, cools

    # --- the batch path ---------------------------------------------------------
    def observe(self, anomalies: Iterable[Anomaly], readings: Readings) -> list[AlertEvent]:
        """Notices for a batch (anomalies in time order), with recoveries at each station's clock."""
        events: list[AlertEvent] = []
        for a in anomalies:
            self.on_anomaly(a, readings, events)
        self.settle(readings, events)
        return events

    def on_anomaly(self, a: Anomaly, readings: Readings, events: list[AlertEvent]) -> None:
        self.resolve_due(a.station, a.ts, readings, events, inclusive=False)
        labels = None
        for rule in self.rules:
            if rule.matchers and labels is None:
                labels = self.labels_of(a.station)
            if rule.matches(a, labels):
                self._on_match(rule, a, readings, events)

    def settle(self, readings: Readings, events: list[AlertEvent]) -> None:
        """End of a batch: recoveries and expired pending episodes at each station's clock."""
        for station, now in readings.clock.items():
            self.resolve_due(station, now, readings, events)
        for ep in self.active.values():
            if ep.station in readings.clock and not ep.external:
                clean = (0 if ep.touched else ep.clean) + readings.count(ep.station, ep.series, ep.last, math.inf)
                if ep.state == "firing" and (clean != ep.clean or ep.touched):
                    self._dirty.add(ep.key)
                ep.clean, ep.touched = clean, False

    def _clean_upto(self, ep: Episode, readings: Readings, t: float, inclusive: bool) -> int:
        before = 0 if ep.touched else ep.clean
        return before + readings.count(ep.station, ep.series, ep.last, t, inclusive=inclusive)

    def _on_match(self, rule: AlertRule, a: Anomaly, readings: Readings, events: list[AlertEvent]) -> None:
        key = (a.station, rule.name, "")
        ep = self.active.get(key)
        if ep is not None and a.ts < ep.last - max(self.resolve_after_s, self.repeat_s):
            # Data time went far back (a replay started again): that episode belongs to another run.
            log.info("alert episode %s of %s at %s left behind: data time went back to %s", ep.id, rule.name,
                     a.station, a.ts)
            self._close(ep)
            ep = None
        if ep is None:
            series = a.variable if readings.has(a.station, a.variable) else ""
            ep = Episode(short_id(a.station, rule.name, a.ts), a.station, rule.name, "", series, "pending", a.ts, a.ts,
                         None, "info", a, self._labels(a, rule.name), window=[True])
            if a.episode:
                ep.detector_episodes.add(a.episode)
            self.active[key] = ep
            if rule.immediate:
                self._fire(rule, ep, a, events)
            return
        if ep.state == "pending":
            self._pending_match(rule, ep, a, readings, events)
            return
        new_reading = a.ts > ep.last
        ep.last = max(ep.last, a.ts)
        ep.touched = True
        if a.episode:
            ep.detector_episodes.add(a.episode)
        ep.count += 1
        self._dirty.add(key)
        if a.score > ep.worst.score or SEVERITY_RANK[a.severity] > SEVERITY_RANK[ep.worst.severity]:
            ep.worst = a
        if ep.quiet:
            return  # opened inside the cooldown: stays quiet until it ends
        if ep.notified_at is None:
            self._notify("alert", ep, a, a.ts, events)  # its opening notice was muted: try again
        elif SEVERITY_RANK[a.severity] > SEVERITY_RANK[ep.notified_severity]:
            self._notify("escalated", ep, a, a.ts, events)
        elif new_reading and a.ts - ep.notified_at >= self.repeat_s and not self.is_acked(ep):
            self._notify("repeat", ep, a, a.ts, events)

    def _pending_match(self, rule: AlertRule, ep: Episode, a: Anomaly, readings: Readings,
                       events: list[AlertEvent]) -> None:
        if a.episode:
            ep.detector_episodes.add(a.episode)
        if a.ts <= ep.last:  # another anomaly of the same reading
            ep.count += 1
            if SEVERITY_RANK[a.severity] > SEVERITY_RANK[ep.worst.severity] or a.score > ep.worst.score:
                ep.worst = a
            return
        between = self._clean_upto(ep, readings, a.ts, inclusive=False)
        if rule.for_s > 0:
            if between > 0:  # a clean reading broke the run: pending starts again here
                ep.start, ep.count, ep.worst = a.ts, 0, a
        else:
            ep.window.extend([False] * min(between, rule.of))
            ep.window.append(True)
            del ep.window[:-rule.of]
        ep.last, ep.touched = a.ts, True
        ep.count += 1
        if a.score > ep.worst.score or SEVERITY_RANK[a.severity] > SEVERITY_RANK[ep.worst.severity]:
            ep.worst = a
        held = a.ts - ep.start >= rule.for_s if rule.for_s > 0 else sum(ep.window) >= rule.readings
        if held:
            self._fire(rule, ep, a, events)

    def _fire(self, rule: AlertRule, ep: Episode, a: Anomaly, events: list[AlertEvent]) -> None:
        ep.state = "firing"
        self.firing_version += 1
        ep.window = []
        self._dirty.add(ep.key)
        last = self.last_notified.get((ep.station, ep.rule))
        if last is not None and 0 <= a.ts - last < self.cooldown_s:
            ep.quiet = True
            return
        self._notify("alert", ep, ep.worst if SEVERITY_RANK[ep.worst.severity] > SEVERITY_RANK[a.severity] else a,
                     a.ts, events)

    def resolve_due(self, station: str, now: float, readings: Readings, events: list[AlertEvent], *,
                    inclusive: bool = True) -> None:
        """Close the station's episodes that recovered by data time `now`; drop pending ones that lapsed.

        Readings at `now` itself count only when `inclusive` (not before an anomaly of that reading)."""
        for key in [k for k in self.active if k[0] == station]:
            ep = self.active[key]
            if ep.external:
                continue
            rule = self._rule_by_name.get(ep.rule)
            if ep.state == "pending":
                clean = self._clean_upto(ep, readings, now, inclusive=inclusive)
                if rule is None or (rule.for_s > 0 and clean > 0) or \
                        (rule.for_s <= 0 and clean >= rule.of):
                    del self.active[key]  # the condition did not hold: never fired, nothing to say
                continue
            resolve_after = self.resolve_after_s if rule is None or rule.resolve_after_s is None \
                else rule.resolve_after_s
            need = 1 if rule is None else rule.recover_readings
            end = ep.last + resolve_after
            if now < end:
                continue
            clean_before = 0 if ep.touched else ep.clean
            if need > clean_before:
                nth = readings.nth_after(ep.station, ep.series, ep.last, need - clean_before)
                if nth is None or nth > now or (nth == now and not inclusive):
                    continue  # not enough clean readings yet: a silent station has not recovered
                end = max(end, nth)
            self._close(ep)
            if self.notify_resolved and ep.notified_at is not None and not ep.quiet:
                self._notify("resolved", ep, ep.worst, end, events)

    def is_acked(self, ep: Episode) -> bool:
        """Acknowledged by its own id (`mass ack`) or by a detector episode it carries (the UI)."""
        return ep.id in self.acked or not self.acked.isdisjoint(ep.detector_episodes)

    def _close(self, ep: Episode) -> None:
        self.firing_version += 1
        self.active.pop(ep.key, None)
        self._dirty.discard(ep.key)
        if ep.state == "firing":
            self._closed.append(ep.id)
        self.acked.discard(ep.id)

    # --- conditions that are not anomalies (no data, source down) -----------------
    def open_condition(self, station: str, rule: str, part: str, anomaly: Anomaly, ts: float,
                       events: list[AlertEvent], *, labels: Mapping[str, str] | None = None) -> Episode | None:
        """Open a firing episode for a condition at data time `ts` (no-op when it is open already).
        `labels` replace the station's (a source is not a station)."""
        key = (station, rule, part)
        if key in self.active:
            return None
        if labels is None:
            labels = self._labels(anomaly, rule)
        else:
            labels = {**{k: v for k, v in labels.items() if v}, "alertname": rule, "rule": rule,
                      "severity": anomaly.severity, "detector": anomaly.detector}
        ep = Episode(short_id(station, rule, part, ts), station, rule, part, part, "firing", ts, ts, None, "info",
                     anomaly, labels, external=True)
        self.active[key] = ep
        self.firing_version += 1
        self._dirty.add(key)
        last = self.last_notified.get((station, rule if not part else f"{rule}:{part}"))
        if last is not None and 0 <= ts - last < self.cooldown_s:
            ep.quiet = True
        else:
            self._notify("alert", ep, anomaly, ts, events)
        return ep

    def close_condition(self, station: str, rule: str, part: str, ts: float, reason: str,
                        events: list[AlertEvent]) -> Episode | None:
        ep = self.active.get((station, rule, part))
        if ep is None or not ep.external:
            return None
        self._close(ep)
        if self.notify_resolved and ep.notified_at is not None and not ep.quiet:
            w = ep.worst
            ep.worst = Anomaly(ts, w.station, w.variable, w.value, w.detector, w.severity, w.score, reason)
            self._notify("resolved", ep, ep.worst, ts, events)
        return ep

    def repeat_conditions(self, now: float, events: list[AlertEvent], *, wall: float | None = None) -> None:
        """Re-notify open conditions every `repeat` (data time `now`, or wall time when given)."""
        for ep in list(self.active.values()):
            if not ep.external or ep.quiet or self.is_acked(ep):
                continue
            if ep.notified_at is None:
                self._notify("alert", ep, ep.worst, max(now, ep.start), events)
            elif wall is not None and ep.notified_wall and wall - ep.notified_wall >= self.repeat_s:
                self._notify("repeat", ep, ep.worst, max(now, ep.notified_at + self.repeat_s), events)
            elif wall is None and now - ep.notified_at >= self.repeat_s:
                self._notify("repeat", ep, ep.worst, now, events)

    # --- notices -------------------------------------------------------------------
    def _labels(self, a: Anomaly, rule: str) -> dict[str, str]:
        labels = dict(self.labels_of(a.station))
        labels.setdefault("station", a.station)
        labels.update(alertname=rule, rule=rule, severity=a.severity, detector=a.detector)
        if a.variable:
            labels["variable"] = a.variable
        return labels

    def _notify(self, kind: str, ep: Episode, a: Anomaly, ts: float, events: list[AlertEvent]) -> None:
        import time

        labels = {**ep.labels, "severity": a.severity, "detector": a.detector}
        if a.variable:
            labels["variable"] = a.variable
        if a.episode:  # so a silence on one detector episode (the UI's `m`) matches its notices
            labels["episode"] = a.episode
        identity = {k: v for k, v in ep.labels.items() if k not in ("severity", "detector", "variable")}
        if ep.part:
            identity["variable"] = ep.part
        event = AlertEvent(kind, ts, ep.station, ep.rule, a, ep.start, ep.count, self.units.get(a.variable, ""),
                           episode=ep.id, labels=labels, identity=identity, acked=self.is_acked(ep))
        reason = self.mute(event) if self.mute is not None else None
        if reason:
            event.muted = reason
            if ep.muted != reason:  # said once per reason, not at every reading of a muted episode
                events.append(event)
            ep.muted = reason
            return
        ep.muted = None
        ep.notified_at = ts
        ep.notified_wall = time.time()
        ep.notified_severity = a.severity
        if kind != "resolved":  # the cooldown runs from the last notice of trouble
            cool = (ep.station, ep.rule if not ep.part else f"{ep.rule}:{ep.part}")
            self.last_notified[cool] = ts
            self._cool_dirty.add(cool)
        if ep.key in self.active:
            self._dirty.add(ep.key)
        events.append(event)

    def firing(self) -> list[Episode]:
        return [ep for ep in self.active.values() if ep.state == "firing"]


def rules_from_config(tables: Any) -> list[AlertRule]:
    if not isinstance(tables, list):
        raise AlertConfigError(f"alerts.rules = {tables!r}: expected a list of [[alerts.rules]] tables")
    rules = [AlertRule.from_table(t, f"alerts.rules[{i}]") for i, t in enumerate(tables)]
    names = [r.name for r in rules]
    for i, name in enumerate(names):
        if name in names[:i] or name in ("no-data", "source-down"):
            raise AlertConfigError(f"alerts.rules[{i}].name = {name!r}: expected a name no other rule has "
                                   "(no-data and source-down are built in)")
    return rules
