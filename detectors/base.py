"""What every detector shares: the batch API, scores, severities, anomalies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from detectors._blocks import FloatArray, as_float_array, finite_positions, scatter, usable

SEVERITIES = ("info", "warning", "critical")


def severity_for(score: float) -> str:
    """Severity of a raw normalised score (1.0 = threshold; critical from twice it). Calibrated scores
    use `detectors.episodes.severity_of` (0.5 and 0.8 on the unit scale, the same points)."""
    return "critical" if score >= 2.0 else "warning"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One flagged reading.

    `episode` groups the anomalies of one ongoing condition (one station,
    variable and detector family) so that the UI and alerts show one event,
    not one row per reading: its id ("station/variable/family@onset"), the
    data time it started and the highest score seen in it so far. "" / NaN
    while no episode is known. `score` is on the unit scale, in [0, 1): the
    calibrated anomaly_score for the statistical views, s^2 / (1 + s^2) of
    the rule's own score (1.0 at its threshold) for a rule.
    """

    ts: float
    station: str
    variable: str
    value: float
    detector: str
    severity: str
    score: float
    reason: str
    episode: str = ""
    episode_start: float = math.nan
    episode_peak: float = math.nan

    def to_record(self) -> dict[str, object]:
        record: dict[str, object] = {
            "ts": _iso(self.ts),
            "station": self.station,
            "variable": self.variable,
            "value": self.value,
            "detector": self.detector,
            "severity": self.severity,
            "score": round(self.score, 4),
            "reason": self.reason,
        }
        if self.episode:
            record["episode"] = {"id": self.episode, "start": _iso(self.episode_start),
                                 "peak": round(self.episode_peak, 4)}
        return record

    def __reduce__(self) -> tuple[type[Anomaly], tuple]:
        # The dataclass default pickles through `fields()` per object: a replay that flags most readings
        # sends hundreds of thousands of these to the store's writer process (`mass_tui.sinks.offload`).
        return Anomaly, (self.ts, self.station, self.variable, self.value, self.detector, self.severity,
                         self.score, self.reason, self.episode, self.episode_start, self.episode_peak)


@lru_cache(maxsize=4096)
def _cached_iso(ts: float) -> str:
    from sources.schema import iso_utc  # local: detectors import nothing at load time

    return iso_utc(ts)


def _iso(ts: float) -> str:
    """`sources.schema.iso_utc`, cached: an episode's anomalies repeat its start, and the variables
    flagged at one reading its time (NaN, unequal to itself, is not cached)."""
    if ts != ts:
        from sources.schema import iso_utc

        return iso_utc(ts)
    return _cached_iso(ts)


class Detector:
    """A streaming detector over one series.

    `step(values, times)` takes any number of values (times in epoch
    seconds, optional for detectors that ignore them), returns one score per
    value and carries its state to the next call. A score is normalised so
    that 1.0 is the current threshold; NaN marks a missing input value, and
    is the score of an unusable one (NaN, infinite, |value| > 1e12, or a time
    that is NaN or past +-1e11 s), which leaves the state as it was.
    After a step, `detail` holds per-value arrays (the statistic, baseline,
    ...) for reasons and charts.
    """

    name = "detector"
    #: the threshold parameter a user tunes at run time
    threshold_name = "threshold"

    def __init__(self) -> None:
        self.detail: dict[str, FloatArray] = {}

    def step(self, values: object, times: object | None = None) -> FloatArray:
        x = as_float_array(values)
        if x.size == 1 and self._has_scalar_path:
            v = float(x[0])
            t = None if times is None else float(as_float_array(times)[0])
            if usable(v, t):
                # One value: plain floats, the same operations in the same
                # order as the numpy path (property tests hold them equal),
                # without ~40 numpy calls' overhead.
                return np.array([self._step_one(v, t)])
        t = None if times is None else as_float_array(times)
        # NaN, infinities, magnitudes past MAX_ABS and unusable times are missing readings: the
        # detector never sees them, so one cannot poison the state the others are scored on.
        mask = finite_positions(x, t)
        self.detail = {}
        if mask is None:
            scores = self._step(x, t)
        else:
            scores = self._step(x[mask], None if t is None else t[mask])
            self.detail = {k: scatter(mask, x.size, v) for k, v in self.detail.items()}
        return scatter(mask, x.size, scores)

    def step_one(self, value: float, t: float | None = None) -> float:
        """step() for a single value, returning a float (NaN for a missing or unusable value, see step())."""
        if not usable(value, t):
            self.detail = {}
            return math.nan
        if self._has_scalar_path:
            return self._step_one(value, t)
        return float(self.step([value], None if t is None else [t])[0])

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        raise NotImplementedError

    def _step_one(self, x: float, t: float | None) -> float:
        raise NotImplementedError

    @property
    def _has_scalar_path(self) -> bool:
        return type(self)._step_one is not Detector._step_one

    @property
    def threshold(self) -> float:
        return float(getattr(self, self.threshold_name))

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.set_params(**{self.threshold_name: value})

    def set_params(self, **params: float) -> None:
        """Change parameters at run time without losing state."""
        for key, value in params.items():
            if not hasattr(self, key):
                raise AttributeError(f"{self.name} has no parameter {key!r}")
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{self.name}.{key} must be a positive number, got {value!r}")
            setattr(self, key, float(value))

    def reason(self, i: int, value: float, unit: str) -> str:
        """One line of why value i of the last step was flagged."""
        return f"{self.name} score {self.detail.get('score', [np.nan])[i]:.2f}"
