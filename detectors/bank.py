"""Detector state per (station, variable), and the rules that apply to each.

The bank knows nothing of messages or files: it takes one station's rows as
time and value columns (and the station's labels) and returns scores and
anomalies. Each series is a `SeriesModel` over the ensemble (calibrated,
in episodes) plus the rules whose matchers accept the station. State is
allocated when a series first reports, and a cap on live series evicts the
least recently seen idle ones first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

import numpy as np

from detectors._blocks import FloatArray, finite_positions
from detectors.base import Anomaly, Detector
from detectors.calibration import TailCalibrator
from detectors.ensemble import COMPONENTS, Ensemble, EnsembleParams
from detectors.episodes import ESCALATION, TOP, EpisodeTracker, RuleEpisodes, rule_unit_score, severity_of
from detectors.matchers import KINDS, Matcher, MatcherError, infer_kind
from detectors.relation import RelationModel, relation_reason
from detectors.rules import (
    Band,
    CompositeRule,
    GustLimit,
    Indicator,
    PressureTendency,
    RapidChange,
    ThresholdBands,
)
from detectors.seasonal import gaps_fit, step_profiles
from detectors.series import LOW_RARITY, SeriesModel

_NO_LABELS: dict[str, str] = {}
#: not in the relation view: a compass direction wraps at 360, an alarm is on or off
RELATION_SKIP = frozenset({"wind_dir_deg", "fire_alarm"})
#: the relation view alarms at this many times the series' rarity: it is the maximum over a station's
#: variables, and a fault that breaks a relation usually shows in the variable's own views too
RELATION_RARITY = 10.0
#: series step together in groups of at most this many values (rows x readings): larger arrays fall
#: out of the CPU caches and cost more per value than the calls they save
GROUP_VALUES = 65536
SEASONAL_ROWS = 8  # daily profiles step in groups of at least this many (their loop is over days)


class RuleConfigError(ValueError):
    """A rule table that cannot be built; the message names the key."""


@dataclass(slots=True)
class SeriesRequest:
    """One series' new values for `DetectorBank.step_many`."""

    station: str
    variable: str
    times: FloatArray  # (n,) in time order
    values: FloatArray  # (n,) finite
    # a value in every row of the station's times: the series may step with others read at the same times
    full: bool = False
    # not full: the station's times and which of them the series has a value at (times = rows[present]);
    # its daily profile may then step with the other series read at those times
    rows: FloatArray | None = None
    present: np.ndarray | None = None


@dataclass
class ValueResult:
    anomaly_score: float
    scores: dict[str, float]
    anomalies: list[Anomaly]


@dataclass
class SeriesResult:
    anomaly_score: FloatArray  # stored score per value, in [0, 1): the calibrated ensemble or a rule, the higher
    scores: dict[str, FloatArray]  # detector or rule name -> normalised score (1.0 = threshold)
    anomalies: list[Anomaly] = field(default_factory=list)
    # The ensemble's per-value views (Ensemble.detail) for charts. The bank keeps no per-value
    # arrays once a batch is scored: a series costs the same after a replay as in live use.
    detail: dict[str, Any] = field(default_factory=dict)


def parse_indicator(text: str, where: str) -> Indicator:
    parts = str(text).split()
    if len(parts) != 3 or parts[1] not in (">=", "<="):
        raise RuleConfigError(f"{where} = {text!r}: expected 'variable >= number' or 'variable <= number'")
    try:
        level = float(parts[2])
    except ValueError:
        raise RuleConfigError(f"{where} = {text!r}: {parts[2]!r} is not a number") from None
    return Indicator(parts[0], parts[1], level)


def _matcher(table: Any, where: str, default: Matcher | None = None) -> Matcher:
    if table is None:
        return default or Matcher()
    try:
        return Matcher(table, where)
    except MatcherError as exc:
        raise RuleConfigError(str(exc)) from None


def effective_labels(labels: Mapping[str, str], variables: Any) -> Mapping[str, str]:
    """The labels rules match on: a station of unknown kind gets the kind its variables imply."""
    if "kind" in labels:
        return labels
    kind = infer_kind(variables)
    return labels if kind is None else {**labels, "kind": kind}


class RuleSet:
    """Builds the rule detectors for a variable of a station from the `rules` config table.

    Every rule family takes an optional `match` table (`detectors.matchers`):
    `rules.pressure_tendency.match`, `rules.gust.match`, `rules.bands.match`
    (every ladder) or `rules.bands.<variable>.match` (one), the same for
    `rules.rapid_change`, and `rules.composite.<name>.match`.
    """

    def __init__(self, rules: Mapping[str, Any]) -> None:
        self.rules = rules
        pt = rules.get("pressure_tendency", {})
        gust = rules.get("gust", {})
        self._match_pt = _matcher(pt.get("match"), "rules.pressure_tendency.match")
        self._match_gust = _matcher(gust.get("match"), "rules.gust.match")
        self._bands = self._tables("bands")
        self._rapid = self._tables("rapid_change")
        self.composite_tables = {name: t for name, t in dict(rules.get("composite", {})).items()}
        self._composite_match = {
            name: _matcher(t.get("match") if isinstance(t, Mapping) else None, f"rules.composite.{name}.match")
            for name, t in self.composite_tables.items()
        }
        # The labels some matcher reads: only a change of those can change a station's rules.
        matchers = [self._match_pt, self._match_gust, *self._composite_match.values(),
                    *(m for _t, m in self._bands.values()), *(m for _t, m in self._rapid.values())]
        self.label_names = frozenset(name for m in matchers for name in m.patterns)
        self._matchers = matchers
        # Build every table once now so a bad one fails at start, not mid-stream.
        for name, table in self.composite_tables.items():
            self._composite(name, table)
        for variable in set(self._bands) | set(self._rapid):
            self._build(variable, (self._bands, self._rapid))

    def unheard_kind(self, kind: str) -> bool:
        """True for a kind no matcher names and `infer_kind` never gives (a typo such as "weathr"):
        every rule that asks for a kind passes such a station by."""
        if kind in KINDS:
            return False
        return not any(fnmatchcase(kind, p) for m in self._matchers for p in m.patterns.get("kind", ()) if p)

    def _tables(self, family: str) -> dict[str, tuple[Mapping[str, Any], Matcher]]:
        """variable -> (table, matcher) of a per-variable family; `match` beside the variables is the default."""
        tables = self.rules.get(family, {})
        default = _matcher(tables.get("match"), f"rules.{family}.match")
        out = {}
        for variable, table in tables.items():
            if variable == "match":
                continue
            inner = table.get("match") if isinstance(table, Mapping) else None
            out[variable] = (table, _matcher(inner, f"rules.{family}.{variable}.match", default))
        return out

    def new_composites(self, labels: Mapping[str, str] = _NO_LABELS) -> list[CompositeRule]:
        """Fresh composite rules (they keep per-station state) whose matchers accept these labels."""
        return [self._composite(name, t) for name, t in self.composite_tables.items()
                if self._composite_match[name].matches(labels)]

    def for_variable(self, variable: str, labels: Mapping[str, str] = _NO_LABELS) -> list[Detector]:
        out: list[Detector] = []
        pt = self.rules.get("pressure_tendency", {})
        if variable in pt.get("variables", ()) and self._match_pt.matches(labels):
            out.append(PressureTendency(pt.get("drop_hpa", 3.0), pt.get("hours", 3.0), pt.get("rise_hpa") or None))
        gust = self.rules.get("gust", {})
        if variable in gust.get("variables", ()) and self._match_gust.matches(labels):
            out.append(GustLimit(gust.get("limit_mps", 15.0)))
        out.extend(self._build(variable, (self._rapid, self._bands), labels))
        return out

    def _build(self, variable: str, families: tuple, labels: Mapping[str, str] | None = None) -> list[Detector]:
        out: list[Detector] = []
        for family in families:
            entry = family.get(variable)
            if entry is None or (labels is not None and not entry[1].matches(labels)):
                continue
            table = entry[0]
            if family is self._rapid:
                where = f"rules.rapid_change.{variable}"
                try:
                    out.append(RapidChange(float(table["max_change"]), float(table.get("per_minutes", 60.0))))
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    raise RuleConfigError(
                        f"{where} = {table!r}: expected max_change and per_minutes ({exc})") from None
            else:
                out.append(self._bands_rule(variable, table))
        return out

    @staticmethod
    def _bands_rule(variable: str, table: Mapping[str, Any]) -> ThresholdBands:
        where = f"rules.bands.{variable}"
        try:
            levels = [float(v) for v in table["levels"]]
            severities = list(table.get("severities") or ["warning"] * len(levels))
            if len(severities) != len(levels):
                raise ValueError("levels and severities differ in length")
            bad = [s for s in severities if s not in ("info", "warning", "critical")]
            if bad:
                raise ValueError(f"unknown severity {bad[0]!r} (info, warning or critical)")
            return ThresholdBands(
                [Band(lv, sv) for lv, sv in zip(levels, severities, strict=True)],
                table.get("direction", "above"),
                label=variable,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            shown = dict(table) if isinstance(table, Mapping) else table
            raise RuleConfigError(f"{where} = {shown!r}: {exc}") from None

    @staticmethod
    def _composite(name: str, table: Mapping[str, Any]) -> CompositeRule:
        where = f"rules.composite.{name}"
        try:
            inds = [parse_indicator(t, f"{where}.indicators") for t in table["indicators"]]
            return CompositeRule(
                name,
                int(table["k"]),
                inds,
                severity=str(table.get("severity", "critical")),
                stale_seconds=float(table.get("stale_seconds", 900.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, RuleConfigError):
                raise
            raise RuleConfigError(f"{where}: {exc}") from None


class SeriesDetectors:
    """The calibrated ensemble and the rules of one (station, variable)."""

    __slots__ = ("model", "rules", "rule_episodes", "count", "first_ts", "last_value", "last_ts")

    def __init__(self, params: EnsembleParams, rules: list[Detector]) -> None:
        self.model = SeriesModel(Ensemble(params), params.alarm_rarity, params.episode_quiet,
                                 params.level_window, params.learning_hours * 3600.0)
        self.rules = rules
        self.rule_episodes = [RuleEpisodes(params.episode_quiet) for _ in rules]
        self.count = 0
        self.first_ts = float("nan")
        self.last_value = float("nan")
        self.last_ts = float("nan")

    @property
    def ensemble(self) -> Ensemble:
        raw = self.model.raw
        assert isinstance(raw, Ensemble)
        return raw

    def release(self, keep: bool = True) -> dict[str, Any]:
        """Hand over the last step's per-value detail (empty unless `keep`) and keep none of it."""
        ens = self.ensemble
        detail = ens.detail if keep else {}
        if keep:
            detail["surprise"] = self.model.detail.get("surprise")  # the calibrated evidence: what the alarm compares
        ens.detail = {}
        for part in (*ens.components.values(), self.model):
            part.detail = {}
        self.model.marks = []
        return detail

    def step_seconds(self) -> float:
        """The series' mean time between readings so far (NaN before two)."""
        return (self.last_ts - self.first_ts) / (self.count - 1) if self.count > 1 else float("nan")


class StationRules:
    """Per station: its composite rules and their episodes, and the relation view (allocated once the
    station has reported two variables or more together)."""

    __slots__ = ("composites", "episodes", "series", "relation", "relation_calibrator", "relation_episodes")

    def __init__(self, composites: list[CompositeRule], quiet: int) -> None:
        self.composites = composites
        self.episodes = [RuleEpisodes(quiet) for _ in composites]
        self.series = 0  # live series of this station
        self.relation: RelationModel | None = None
        self.relation_calibrator: TailCalibrator | None = None
        self.relation_episodes: EpisodeTracker | None = None


class DetectorBank:
    """Every live series' detectors. `max_series` (0: no cap) bounds them: when full, series
    idle for `idle_seconds` of data time are evicted (least recently seen first)."""

    def __init__(
        self,
        params: EnsembleParams | None = None,
        rules: Mapping[str, Any] | None = None,
        units: Mapping[str, str] | None = None,
        max_series: int = 0,
        idle_seconds: float = 86400.0,
        relations: bool = True,
    ) -> None:
        self.params = params or EnsembleParams()
        self.rule_set = RuleSet(rules or {})
        self.units = dict(units or {})
        self.max_series = int(max_series)
        self.idle_seconds = float(idle_seconds)
        self.series: dict[tuple[str, str], SeriesDetectors] = {}
        self.stations: dict[str, StationRules] = {}
        self.evicted = 0
        self._gone: list[str] = []
        self.levels: tuple[float, float | None] | None = None  # (alarm, critical) surprises set at run time
        self.newest_ts = float("-inf")
        self.relations = relations  # the relation view per station
        # after step_composites: the relation view's stored score per row (NaN: not scored), the index of
        # the variable it blames (-1: none) and the model's variables
        self.relation_scores: tuple[np.ndarray, np.ndarray, tuple[str, ...]] | None = None

    # --- live series and the cap ---------------------------------------------------------------------------
    def get(self, station: str, variable: str, labels: Mapping[str, str] = _NO_LABELS) -> SeriesDetectors:
        key = (station, variable)
        det = self.series.get(key)
        if det is None:
            det = SeriesDetectors(self.params, self.rule_set.for_variable(variable, labels))
            if self.levels is not None:
                det.model.episodes.set_levels(*self.levels)
            self.series[key] = det
            self._station(station, labels).series += 1
        elif self.max_series:
            # Most recently seen last, so the idle ones are at the front for eviction.
            del self.series[key]
            self.series[key] = det
        return det

    def relabel(self, station: str, labels: Mapping[str, str], variables: Iterable[str]) -> None:
        """Fit the rules of a station's series (those of `variables` it has), and its composites, to new
        labels (a kind inferred once a telling variable gave a value, after the series were made
        without it; tags that changed). A rule that still applies keeps its state and episodes; one
        that no longer does is dropped; one that now does starts fresh. A series has at most one rule
        of each kind, a station one composite of each name."""
        for variable in variables:
            det = self.series.get((station, variable))
            if det is None:
                continue
            kept = {type(rule): (rule, ep) for rule, ep in zip(det.rules, det.rule_episodes, strict=True)}
            fresh = self.rule_set.for_variable(variable, labels)
            pairs = [kept.get(type(rule)) or (rule, RuleEpisodes(self.params.episode_quiet)) for rule in fresh]
            det.rules = [rule for rule, _ep in pairs]
            det.rule_episodes = [ep for _rule, ep in pairs]
        rules = self.stations.get(station)
        if rules is not None:
            kept_c = {c.name: (c, ep) for c, ep in zip(rules.composites, rules.episodes, strict=True)}
            pairs_c = [kept_c.get(c.name) or (c, RuleEpisodes(self.params.episode_quiet))
                       for c in self.rule_set.new_composites(labels)]
            rules.composites = [c for c, _ep in pairs_c]
            rules.episodes = [ep for _c, ep in pairs_c]

    def touch(self, keys: Sequence[tuple[str, str]]) -> None:
        """Mark these live series (station, variable) seen, in this order (the most recently seen last),
        as `get` does one at a time."""
        if not self.max_series:
            return
        for key in keys:
            det = self.series.pop(key, None)
            if det is not None:
                self.series[key] = det

    def _station(self, station: str, labels: Mapping[str, str]) -> StationRules:
        st = self.stations.get(station)
        if st is None:
            st = self.stations[station] = StationRules(self.rule_set.new_composites(labels),
                                                       self.params.episode_quiet)
        return st

    def room_for(self, station: str, new_series: int, now: float, pending: int = 0,
                 seen: Callable[[str], float | None] | None = None) -> str | None:
        """None when `new_series` more series of this station fit under the cap (evicting idle ones
        if need be), beside `pending` series already admitted in the same batch; else the reason
        to quarantine its observations. A station already live always fits. `now`: the time the
        station comes (its first reading); `seen(station)`: that station's latest reading up to `now`
        in the batch being admitted, not stepped yet (None: none), so a station busy in the batch
        is not taken for idle by its last reading before it."""
        if now > self.newest_ts:
            self.newest_ts = now
        if not self.max_series or station in self.stations or not new_series:
            return None
        self._evict_idle(len(self.series) + pending + new_series - self.max_series, seen)
        if len(self.series) + pending + new_series <= self.max_series:
            return None
        # `pending`: series admitted earlier in the same batch count as live (they are, a moment later)
        return (f"series cap reached: {len(self.series) + pending} live series (detectors.max_series = "
                f"{self.max_series}) and none idle for {self.idle_seconds / 3600:g} h; new station {station!r} "
                "quarantined")

    def _evict_idle(self, need: int, seen: Callable[[str], float | None] | None = None) -> None:
        """Evict up to `need` series idle past the horizon, least recently seen first. A series whose
        station has readings in the batch up to now (`seen`) is idle only if the latest of them is too,
        and is passed over otherwise: one at a time, those readings would have made it the most
        recently seen, not the least."""
        horizon = self.newest_ts - self.idle_seconds
        gone: list[tuple[str, str]] = []
        for key, det in self.series.items():
            if need <= 0:
                break
            latest = seen(key[0]) if seen is not None else None
            if latest is not None:
                if not max(det.last_ts, latest) < horizon:
                    continue
            elif not det.last_ts < horizon:
                break
            gone.append(key)
            need -= 1
        for key in gone:
            del self.series[key]
            self.evicted += 1
            st = self.stations.get(key[0])
            if st is not None:
                st.series -= 1
                if st.series <= 0:
                    del self.stations[key[0]]
                    self._gone.append(key[0])

    def drain_evicted(self) -> list[str]:
        """Stations whose last series was evicted since the last call (their other state can go too)."""
        out, self._gone = self._gone, []
        return out

    def set_alarm_levels(self, alarm_rarity: float, critical_rarity: float | None = None) -> None:
        """What opens an episode (a reading rarer than 1 in `alarm_rarity` of its series) and what makes
        it critical (rarer than 1 in `critical_rarity`; None: the default, alarm_rarity squared), for
        every series now and later (the relation view at RELATION_RARITY times both); the stored
        anomaly_score keeps its scale (0.5 = `detectors.alarm_rarity`) and every state is kept.
        Raises ValueError for a rarity not above LOW_RARITY (1 in 100)."""
        if not alarm_rarity > LOW_RARITY:
            raise ValueError(f"alarm_rarity = {alarm_rarity!r}: expected a number of readings > {LOW_RARITY:g}")
        self.levels = (float(np.log10(alarm_rarity)),
                       None if critical_rarity is None else float(np.log10(max(critical_rarity, alarm_rarity))))
        for det in self.series.values():
            det.model.episodes.set_levels(*self.levels)
        for st in self.stations.values():
            if st.relation_episodes is not None:
                self._relation_levels(st.relation_episodes)

    def _relation_levels(self, tracker: EpisodeTracker) -> None:
        if self.levels is None:
            return
        shift = float(np.log10(RELATION_RARITY))
        alarm, critical = self.levels
        tracker.set_levels(alarm + shift, None if critical is None else critical + shift)

    def set_thresholds(self, **params: float) -> None:
        """z, L, h, k for every series now and later; state is kept. `alarm_rarity` and `critical_rarity`
        go to `set_alarm_levels`."""
        if "alarm_rarity" in params or "critical_rarity" in params:
            alarm = params.pop("alarm_rarity", None)
            critical = params.pop("critical_rarity", None)
            self.set_alarm_levels(float(alarm if alarm is not None else self.params.alarm_rarity),
                                  None if critical is None else float(critical))
        known = {"z": "z", "L": "L", "h": "h", "k": "k"}
        for key in params:
            if key not in known:
                raise AttributeError(f"unknown threshold {key!r}")
        for det in self.series.values():
            det.model.set_params(**params)
        self.params = replace(self.params, **params)

    # --- scoring ----------------------------------------------------------------------------------------------
    def step_many(self, requests: Sequence[SeriesRequest], detail: bool = True) -> list[SeriesResult]:
        """`step_series` for many series (of one station or several) at once, in request order: the
        series read at the same times (`SeriesRequest.full`, all values usable), as many values so far,
        step together (`Ensemble.step_rows`, their daily profiles by `step_profiles`), the others one
        by one; a series with gaps in those times (`SeriesRequest.present`) steps its daily profile
        with them (`step_profiles` with each series' rows), the rest of its model alone. The same
        numbers as step_series for each; the series must be live (`get`) already.
        Raises KeyError for a series not allocated."""
        results: list[SeriesResult | None] = [None] * len(requests)
        dets = [self.series[(r.station, r.variable)] for r in requests]
        together: list[tuple[FloatArray, list[int]]] = []  # (times, requests read at them, or at some)
        for i, r in enumerate(requests):
            if r.times.size < 2 or finite_positions(r.values, r.times) is not None:
                continue
            if r.full:
                rows = r.times
            elif r.rows is not None and r.present is not None and finite_positions(r.rows, r.rows) is None:
                rows = r.rows
            else:
                continue
            for times, members in together:
                if times.size == rows.size and (times is rows or np.array_equal(times, rows)):
                    members.append(i)
                    break
            else:
                together.append((rows, [i]))
        for times, members in together:
            if len(members) < 2:
                continue
            # The daily profiles by the day they are at, then the ensembles by their phase, in groups
            # of at most GROUP_VALUES values (larger temporaries cost more than the calls they save).
            limit = max(1, GROUP_VALUES // times.size)
            offsets: dict[int, FloatArray] = {}
            by_day: dict[int | None, list[int]] = {}
            for i in members:
                by_day.setdefault(dets[i].ensemble.seasonal.day, []).append(i)
            for chunk in _chunks(by_day.values(), max(limit, SEASONAL_ROWS)):
                gaps = [i for i in chunk if not requests[i].full]
                present = None
                if gaps:
                    # a series with gaps that steps its profile alone (see gaps_fit) leaves the group
                    fit = gaps_fit(times, dets[chunk[0]].ensemble.seasonal.day,
                                   np.stack([requests[i].present for i in gaps]))
                    chunk = [i for i in chunk if requests[i].full] + [i for i, ok in zip(gaps, fit.tolist(),
                                                                                        strict=True) if ok]
                    if not chunk:
                        continue
                    present = np.stack([np.ones(times.size, dtype=bool) if requests[i].full else requests[i].present
                                        for i in chunk])
                    x = np.zeros((len(chunk), times.size))
                    x[present] = np.concatenate([requests[i].values for i in chunk])
                else:
                    x = np.stack([requests[i].values for i in chunk])
                for v, (i, offset) in enumerate(zip(chunk, step_profiles([dets[i].ensemble.seasonal for i in chunk],
                                                                         x, times, present), strict=True)):
                    offsets[i] = offset if requests[i].full else offset[present[v]]  # type: ignore[index]
            by_phase: dict[tuple, list[int]] = {}
            for i in members:
                if requests[i].full:
                    by_phase.setdefault(dets[i].ensemble.phase(), []).append(i)
                elif i in offsets:  # the rest of a series with gaps alone, as its own step runs it
                    r, model = requests[i], dets[i].model
                    model.detail = {}
                    raw = dets[i].ensemble._step(r.values, r.times, offsets[i])
                    results[i] = self._series_result(dets[i], r.station, r.variable, r.times, r.values,
                                                     model._calibrate(raw, r.values, r.times), detail)
            for chunk in _chunks(by_phase.values(), limit):
                x = np.stack([requests[i].values for i in chunk])
                raw = Ensemble.step_rows([dets[i].ensemble for i in chunk], x, times,
                                         np.stack([offsets[i] for i in chunk]))
                models = [dets[i].model for i in chunk]
                if all(m.calibrator.seen == models[0].calibrator.seen for m in models):
                    stored = SeriesModel.calibrate_rows(models, raw, times)
                else:
                    stored = [m._calibrate(raw[k], x[k], times) for k, m in enumerate(models)]
                for k, i in enumerate(chunk):
                    r = requests[i]
                    results[i] = self._series_result(dets[i], r.station, r.variable, r.times, r.values, stored[k],
                                                     detail)
        out = []
        for i, r in enumerate(requests):
            result = results[i]
            if result is None:
                result = self._series_result(dets[i], r.station, r.variable, r.times, r.values,
                                             dets[i].model.step(r.values, r.times), detail)
            out.append(result)
        return out

    def step_series(self, station: str, variable: str, times: FloatArray, values: FloatArray,
                    labels: Mapping[str, str] = _NO_LABELS) -> SeriesResult:
        """Score one variable's new values (finite only, in time order)."""
        det = self.get(station, variable, labels)
        return self._series_result(det, station, variable, times, values, det.model.step(values, times))

    def _series_result(self, det: SeriesDetectors, station: str, variable: str, times: FloatArray,
                       values: FloatArray, stored: FloatArray, detail: bool = True) -> SeriesResult:
        """The rules, the anomalies and the detail of a series whose model just stepped (`stored`)."""
        model = det.model
        raw = model.detail["raw"]
        result = SeriesResult(stored, {"ensemble": raw})
        unit = self.units.get(variable, "")
        if values.size:
            if det.count == 0:
                det.first_ts = float(times[0])
            det.count += int(values.size)
            det.last_value, det.last_ts = float(values[-1]), float(times[-1])
        flags = model.detail["flags"]
        for i, start, peak, severity in model.marks:
            result.anomalies.append(self._model_anomaly(
                det, i, float(times[i]), station, variable, float(values[i]), float(stored[i]),
                int(flags[i]), start, peak, severity, unit))
        for rule, episodes in zip(det.rules, det.rule_episodes, strict=True):
            scores = rule.step(values, times)
            result.scores[rule.name] = scores
            fired = np.flatnonzero(scores >= 1.0)
            for i in fired.tolist():
                s = rule_unit_score(float(scores[i]))
                result.anomalies.append(_rule_anomaly(
                    rule, episodes, i, float(times[i]), station, variable, float(values[i]), float(scores[i]), s,
                    unit))
            episodes.advance(values.size)
            if fired.size:
                unit_scores = scores * scores
                unit_scores = np.minimum(unit_scores / (1.0 + unit_scores), TOP)
                result.anomaly_score = np.maximum(result.anomaly_score, np.where(scores >= 1.0, unit_scores, 0.0))
            rule.detail = {}
        result.detail = det.release(detail)
        return result

    def step_value(self, station: str, variable: str, t: float, value: float,
                   labels: Mapping[str, str] = _NO_LABELS) -> ValueResult:
        """step_series for one value, in plain floats (the live path)."""
        det = self.get(station, variable, labels)
        model = det.model
        stored = model.step_one(value, t)
        if det.count == 0:
            det.first_ts = t
        det.count += 1
        det.last_value, det.last_ts = value, t
        unit = self.units.get(variable, "")
        anomalies = []
        for _i, start, peak, severity in model.marks:
            anomalies.append(self._model_anomaly(det, 0, t, station, variable, value, stored,
                                                 int(model.detail["flags"][0]), start, peak, severity, unit))
        scores = {"ensemble": model.detail["raw"][0]}
        for rule, episodes in zip(det.rules, det.rule_episodes, strict=True):
            score = scores[rule.name] = rule.step_one(value, t)
            if score >= 1.0:
                s = rule_unit_score(score)
                anomalies.append(_rule_anomaly(rule, episodes, 0, t, station, variable, value, score, s, unit))
                stored = stored if stored >= s else s
            episodes.advance(1)
        return ValueResult(stored, scores, anomalies)

    def _model_anomaly(self, det: SeriesDetectors, i: int, t: float, station: str, variable: str, value: float,
                       score: float, flag: int, start: float, peak: float, severity: str, unit: str) -> Anomaly:
        """The anomaly for value i of the series model's last step: an episode's onset or escalation."""
        ens = det.ensemble
        best = COMPONENTS[int(ens.detail["best"][i])]
        reason = f"{ens.reason(i, value, unit)}; {det.model.rarity(i)} of this series"
        if best in ("level", "shift", "drift") and flag != ESCALATION:
            window = self.params.level_window
            span = det.step_seconds() * window
            when = f" (about {_duration(span)})" if span == span else ""
            reason += f"; a level that holds becomes the new normal within {window} readings{when}"
        if flag == ESCALATION:
            reason = f"escalated to {severity}: {reason}"
        return Anomaly(t, station, variable, value, "ensemble/" + best, severity, score, reason,
                       episode_id(station, variable, "ensemble", start), start, peak)

    # --- cross-variable rules ---------------------------------------------------------------------------------
    def step_composites_one(self, station: str, t: float, values: Mapping[str, float],
                            labels: Mapping[str, str] = _NO_LABELS) -> list[Anomaly]:
        """step_composites for one message."""
        out = self._composite_anomalies(station, values, labels, lambda rule: rule.step_one(dict(values), t),
                                        lambda i: t, 1)
        columns = {k: np.array([v]) for k, v in values.items()}
        out.extend(self._relation(station, np.array([t]), columns, labels))
        return out

    def step_composites(self, station: str, times: FloatArray, columns: Mapping[str, FloatArray],
                        labels: Mapping[str, str] = _NO_LABELS) -> list[Anomaly]:
        """Cross-variable rules and the relation view on one station's rows (NaN = not in that row).
        After it, `relation_scores` holds the relation view's stored score and blamed variable per row
        (scores (n,), NaN where not scored; variable index (n,), -1 where none; the variables)."""
        out = self._composite_anomalies(station, columns, labels, lambda rule: rule.step(dict(columns), times),
                                        lambda i: float(times[i]), times.size)
        out.extend(self._relation(station, times, columns, labels))
        return out

    def _relation(self, station: str, times: FloatArray, columns: Mapping[str, FloatArray],
                  labels: Mapping[str, str]) -> list[Anomaly]:
        self.relation_scores = None
        if not self.relations:
            return []
        st = self._station(station, labels)
        if st.relation is None:
            names = tuple(sorted(k for k, col in columns.items()
                                 if k not in RELATION_SKIP and np.isfinite(col).any()))
            if len(names) < 2:
                return []
            p = self.params
            st.relation = RelationModel(names)
            st.relation_calibrator = TailCalibrator()
            st.relation_episodes = EpisodeTracker(
                np.log10(p.alarm_rarity * RELATION_RARITY), np.log10(LOW_RARITY), p.episode_quiet, p.level_window,
                p.learning_hours * 3600.0)
            self._relation_levels(st.relation_episodes)
        model, calibrator, tracker = st.relation, st.relation_calibrator, st.relation_episodes
        assert calibrator is not None and tracker is not None
        if any(v not in columns for v in model.variables):
            return []
        if times.size == 1:  # the live path: plain floats
            row = [float(columns[v][0]) for v in model.variables]
            if not all(v == v for v in row):
                return []
            r1, b1, p1 = model.push(row)
            s1 = calibrator.push(r1)
            st1, _flag, mark = tracker.push(s1, float(times[0]))
            rows = np.zeros(1, dtype=np.int64)
            data = np.array([row])
            raw, blame, predicted = np.array([r1]), np.array([b1]), np.array([p1])
            surprise, stored, marks = np.array([s1]), np.array([st1]), ([mark] if mark is not None else [])
        else:
            table = np.column_stack([columns[v] for v in model.variables])
            rows = np.flatnonzero(np.isfinite(table).all(axis=1))
            if rows.size == 0:
                return []
            data = table[rows]
            raw, blame, predicted = model.step(data)
            surprise = calibrator.step(raw)
            stored, _flags, marks = tracker.step(surprise, times[rows])
        full = np.full(times.size, np.nan)
        full[rows] = stored
        blamed = np.full(times.size, -1, dtype=np.int64)
        blamed[rows] = blame
        self.relation_scores = (full, blamed, model.variables)
        out = []
        for i, start, peak, severity in marks:
            j = int(blame[i])
            var = model.variables[j]
            value = float(data[i, j])
            reason = relation_reason(model.variables, j, value, float(predicted[i]), float(raw[i]) * model.z,
                                     self.units.get(var, ""))
            rarity = f"1 in {10.0 ** float(surprise[i]):,.0f} rows" if surprise[i] < 15 else "beyond 1 in 10^15"
            out.append(Anomaly(float(times[rows[i]]), station, var, value, "relation", severity, float(stored[i]),
                               f"{reason}; {rarity} of this station", episode_id(station, var, "relation", start),
                               start, peak))
        return out

    def _composite_anomalies(self, station: str, present: Mapping[str, Any], labels: Mapping[str, str],
                             step: Any, time_of: Any, n: int) -> list[Anomaly]:
        out = []
        st = self._station(station, labels)
        for rule, episodes in zip(st.composites, st.episodes, strict=True):
            if not any(v in present for v in rule.variables):
                continue
            score, _count = step(rule)
            scores = np.atleast_1d(score)
            for i in np.flatnonzero(scores >= 1.0).tolist():
                s = float(scores[i])
                unit = rule_unit_score(s)
                t = time_of(i)
                ep = episodes.visit(i, unit, t, rule.severity)
                out.append(Anomaly(t, station, rule.name, float("nan"), rule.name, rule.severity, unit,
                                   rule.reason(int(i)), episode_id(station, rule.name, rule.name, ep.start),
                                   ep.start, ep.peak))
            episodes.advance(n)
        return out

    def nbytes_estimate(self) -> int:
        """Bytes in the detector value buffers (the rest is Python object overhead)."""
        total = 0
        for det in self.series.values():
            ens = det.ensemble
            total += ens._short.nbytes() + ens._long.nbytes() + ens._values.nbytes()
            total += det.model.calibrator.nbytes()
        return total


def _chunks(groups: Any, limit: int) -> list[list[int]]:
    """Each group cut into runs of at most `limit`."""
    return [group[k : k + limit] for group in groups for k in range(0, len(group), limit)]


def episode_id(station: str, variable: str, family: str, start: float) -> str:
    """One id per ongoing condition per (station, variable, detector family): where and since when."""
    return f"{station}/{variable}/{family}@{_onset(start) if start == start else '?'}"


@lru_cache(maxsize=4096)
def _onset(start: float) -> str:
    """An episode's start as its id writes it; cached: every anomaly of an episode names it again."""
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    hours = seconds / 3600.0
    if hours >= 48:
        return f"{hours / 24:.0f} days"
    if hours >= 1:
        return f"{hours:.0f} h"
    return f"{seconds / 60:.0f} min"


def _rule_anomaly(rule: Detector, episodes: RuleEpisodes, i: int, t: float, station: str, variable: str,
                  value: float, score: float, unit_score: float, unit: str) -> Anomaly:
    """The anomaly for value i of a rule's last step, `score` its own (1.0 = threshold)."""
    severity = _rule_severity(rule, score, value)
    ep = episodes.visit(i, unit_score, t, severity)
    return Anomaly(t, station, variable, value, rule.name, severity, unit_score, rule.reason(i, value, unit),
                   episode_id(station, variable, rule.name, ep.start), ep.start, ep.peak)


def _rule_severity(rule: Detector, score: float, value: float) -> str:
    if isinstance(rule, ThresholdBands):
        return rule.severity(score, value)
    if isinstance(rule, GustLimit):
        return rule.severity(score)
    return severity_of(rule_unit_score(score))
