"""Detector state per (station, variable), and the rules that apply to each.

The bank knows nothing of messages or files: it takes one station's rows as
time and value columns and returns scores and anomalies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from detectors._blocks import FloatArray
from detectors.base import Anomaly, Detector, severity_for
from detectors.ensemble import COMPONENTS, Ensemble, EnsembleParams, to_unit_score, to_unit_score_one
from detectors.rules import (
    Band,
    CompositeRule,
    GustLimit,
    Indicator,
    PressureTendency,
    RapidChange,
    ThresholdBands,
)


class RuleConfigError(ValueError):
    """A rule table that cannot be built; the message names the key."""


@dataclass
class ValueResult:
    anomaly_score: float
    scores: dict[str, float]
    anomalies: list[Anomaly]


@dataclass
class SeriesResult:
    anomaly_score: FloatArray  # ensemble, in [0, 1)
    scores: dict[str, FloatArray]  # detector or rule name -> normalised score (1.0 = threshold)
    anomalies: list[Anomaly] = field(default_factory=list)


def parse_indicator(text: str, where: str) -> Indicator:
    parts = str(text).split()
    if len(parts) != 3 or parts[1] not in (">=", "<="):
        raise RuleConfigError(f"{where} = {text!r}: expected 'variable >= number' or 'variable <= number'")
    try:
        level = float(parts[2])
    except ValueError:
        raise RuleConfigError(f"{where} = {text!r}: {parts[2]!r} is not a number") from None
    return Indicator(parts[0], parts[1], level)


class RuleSet:
    """Builds the rule detectors for a variable from the `rules` config table."""

    def __init__(self, rules: Mapping[str, Any]) -> None:
        self.rules = rules
        self.composite_tables = dict(rules.get("composite", {}))
        self.new_composites()  # fail at start on a bad table
        # Build every table once now so a bad one fails at start, not mid-stream.
        for variable in set(rules.get("bands", {})) | set(rules.get("rapid_change", {})):
            self.for_variable(variable)

    def new_composites(self) -> list[CompositeRule]:
        """Fresh composite rules (they keep per-station state)."""
        return [self._composite(name, t) for name, t in self.composite_tables.items()]

    def for_variable(self, variable: str) -> list[Detector]:
        out: list[Detector] = []
        pt = self.rules.get("pressure_tendency", {})
        if variable in pt.get("variables", ()):
            out.append(PressureTendency(pt.get("drop_hpa", 3.0), pt.get("hours", 3.0), pt.get("rise_hpa") or None))
        gust = self.rules.get("gust", {})
        if variable in gust.get("variables", ()):
            out.append(GustLimit(gust.get("limit_mps", 15.0)))
        rc = self.rules.get("rapid_change", {}).get(variable)
        if rc is not None:
            where = f"rules.rapid_change.{variable}"
            try:
                out.append(RapidChange(float(rc["max_change"]), float(rc.get("per_minutes", 60.0))))
            except (KeyError, TypeError, ValueError) as exc:
                raise RuleConfigError(f"{where} = {rc!r}: expected max_change and per_minutes ({exc})") from None
        bands = self.rules.get("bands", {}).get(variable)
        if bands is not None:
            out.append(self._bands(variable, bands))
        return out

    @staticmethod
    def _bands(variable: str, table: Mapping[str, Any]) -> ThresholdBands:
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
        except (KeyError, TypeError, ValueError) as exc:
            raise RuleConfigError(f"{where} = {dict(table)!r}: {exc}") from None

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
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RuleConfigError):
                raise
            raise RuleConfigError(f"{where}: {exc}") from None


class SeriesDetectors:
    """The ensemble and the rules of one (station, variable)."""

    def __init__(self, params: EnsembleParams, rules: list[Detector]) -> None:
        self.ensemble = Ensemble(params)
        self.rules = rules
        self.count = 0
        self.last_value = float("nan")
        self.last_ts = float("nan")


class DetectorBank:
    def __init__(
        self,
        params: EnsembleParams | None = None,
        rules: Mapping[str, Any] | None = None,
        units: Mapping[str, str] | None = None,
    ) -> None:
        self.params = params or EnsembleParams()
        self.rule_set = RuleSet(rules or {})
        self.units = dict(units or {})
        self.series: dict[tuple[str, str], SeriesDetectors] = {}
        self._composites: dict[str, list[CompositeRule]] = {}

    def get(self, station: str, variable: str) -> SeriesDetectors:
        key = (station, variable)
        det = self.series.get(key)
        if det is None:
            det = SeriesDetectors(self.params, self.rule_set.for_variable(variable))
            self.series[key] = det
        return det

    def set_thresholds(self, **params: float) -> None:
        """z, L, h, k for every series now and later; state is kept."""
        known = {"z": "z", "L": "L", "h": "h", "k": "k"}
        for key in params:
            if key not in known:
                raise AttributeError(f"unknown threshold {key!r}")
        for det in self.series.values():
            det.ensemble.set_params(**params)
        self.params = replace(self.params, **params)

    def step_series(self, station: str, variable: str, times: FloatArray, values: FloatArray) -> SeriesResult:
        """Score one variable's new values (finite only, in time order)."""
        det = self.get(station, variable)
        ens = det.ensemble
        raw = ens.step(values, times)
        result = SeriesResult(to_unit_score(raw), {"ensemble": raw})
        unit = self.units.get(variable, "")
        for i in np.flatnonzero(raw >= 1.0):
            result.anomalies.append(
                _ensemble_anomaly(
                    ens, int(i), float(times[i]), station, variable, float(values[i]), float(raw[i]), unit
                )
            )
        for rule in det.rules:
            scores = rule.step(values, times)
            result.scores[rule.name] = scores
            for i in np.flatnonzero(scores >= 1.0):
                result.anomalies.append(
                    _rule_anomaly(
                        rule, int(i), float(times[i]), station, variable, float(values[i]), float(scores[i]), unit
                    )
                )
        if values.size:
            det.count += int(values.size)
            det.last_value, det.last_ts = float(values[-1]), float(times[-1])
        return result

    def step_value(self, station: str, variable: str, t: float, value: float) -> ValueResult:
        """step_series for one value, in plain floats (the live path)."""
        det = self.get(station, variable)
        ens = det.ensemble
        raw = ens.step_one(value, t)
        unit = self.units.get(variable, "")
        anomalies = []
        if raw >= 1.0:
            anomalies.append(_ensemble_anomaly(ens, 0, t, station, variable, value, raw, unit))
        scores = {"ensemble": raw}
        for rule in det.rules:
            score = scores[rule.name] = rule.step_one(value, t)
            if score >= 1.0:
                anomalies.append(_rule_anomaly(rule, 0, t, station, variable, value, score, unit))
        det.count += 1
        det.last_value, det.last_ts = value, t
        return ValueResult(to_unit_score_one(raw), scores, anomalies)

    def _station_composites(self, station: str) -> list[CompositeRule]:
        rules = self._composites.get(station)
        if rules is None:
            rules = self._composites[station] = self.rule_set.new_composites()
        return rules

    def step_composites_one(self, station: str, t: float, values: Mapping[str, float]) -> list[Anomaly]:
        """step_composites for one message."""
        return self._composite_anomalies(station, values, lambda rule: rule.step_one(dict(values), t), lambda i: t)

    def step_composites(self, station: str, times: FloatArray, columns: Mapping[str, FloatArray]) -> list[Anomaly]:
        """Cross-variable rules on one station's rows (NaN = not in that row)."""
        return self._composite_anomalies(
            station, columns, lambda rule: rule.step(dict(columns), times), lambda i: float(times[i])
        )

    def _composite_anomalies(self, station: str, present: Mapping[str, Any], step: Any, time_of: Any) -> list[Anomaly]:
        out = []
        for rule in self._station_composites(station):
            if not any(v in present for v in rule.variables):
                continue
            score, _count = step(rule)
            for i in np.flatnonzero(np.atleast_1d(score) >= 1.0):
                s = float(np.atleast_1d(score)[i])
                out.append(
                    Anomaly(
                        time_of(i), station, rule.name, float("nan"), rule.name, rule.severity, s, rule.reason(int(i))
                    )
                )
        return out


def _ensemble_anomaly(
    ens: Ensemble, i: int, t: float, station: str, variable: str, value: float, score: float, unit: str
) -> Anomaly:
    """The anomaly for value i of the ensemble's last step (batch or single value)."""
    best = COMPONENTS[int(ens.detail["best"][i])]
    return Anomaly(
        t, station, variable, value, "ensemble/" + best, severity_for(score), score, ens.reason(i, value, unit)
    )


def _rule_anomaly(
    rule: Detector, i: int, t: float, station: str, variable: str, value: float, score: float, unit: str
) -> Anomaly:
    """The anomaly for value i of a rule's last step."""
    return Anomaly(
        t, station, variable, value, rule.name, _rule_severity(rule, score, value), score, rule.reason(i, value, unit)
    )


def _rule_severity(rule: Detector, score: float, value: float) -> str:
    if isinstance(rule, ThresholdBands):
        return rule.severity(score, value)
    if isinstance(rule, GustLimit):
        return rule.severity(score)
    return severity_for(score)
