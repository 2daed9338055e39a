"""The default ensemble: one raw score per value, the largest of several views.

A plain rolling z-score on the raw series fails two ways on weather and
building data: a daily cycle inflates its sigma, so spikes hide inside the
swing, and a level shift or slow drift keeps it firing (or never firing).
The ensemble therefore looks at the series through several lenses, each a
detector from this package with its own threshold (score 1.0):

- spike:  rolling z-score of the one-step forecast residual. An EWMA
          forecast follows daily cycles, so the residual is mostly noise and
          a spike stands out against it.
- shift:  two-sided CUSUM on the same residuals: a run of residuals on one
          side (a level shift, a fast drift) accumulates until it crosses h.
- level:  rolling z-score of the value over a long window: a big excursion
          from where the series has been (a failure, a storm).
- drift:  EWMA control chart of the residuals against their long window: a
          small persistent bias that no single reading shows. (On the raw
          value it fired on every daily swing of building data.)
- burst:  short-term residual variance over the long-term one: a sensor or
          a gusty spell that turns noisy.
- stuck:  a run of identical readings far longer than the series' usual
          run (detectors.stuck).

Given times, a daily profile per day type (detectors.seasonal) is taken out
first, with the weight its out-of-sample fit earns. The raw score is the
largest weighted view (1.0 = a view at its threshold); `detectors.series`
calibrates it on the series' own history into the stored anomaly_score.
`to_unit_score` below is the plain map s^2 / (1 + s^2) (1 -> 0.5, 2 -> 0.8)
kept for uncalibrated scores (a plain z-score, the UI's what-if).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors._blocks import Ewma, FloatArray, RollingMoments, warm_where
from detectors.base import Detector
from detectors.cusum import Cusum
from detectors.ewma import EwmaChart
from detectors.seasonal import DailyProfile
from detectors.stuck import StuckRun
from detectors.zscore import RollingZScore

COMPONENTS = ("spike", "shift", "level", "drift", "burst", "stuck")


def to_unit_score(s: FloatArray) -> FloatArray:
    """Map a normalised score (1.0 = threshold) to [0, 1): 1 -> 0.5, 2 -> 0.8."""
    s2 = np.square(np.nan_to_num(s, nan=0.0, posinf=1e6))
    out = s2 / (1.0 + s2)
    return np.where(np.isnan(s), np.nan, out)


def to_unit_score_one(s: float) -> float:
    """to_unit_score for one value, with the same arithmetic."""
    if s != s:
        return s
    s = 1e6 if s == math.inf else s
    s2 = s * s
    return s2 / (1.0 + s2)


class VarianceBurst(Detector):
    """sqrt(short-term variance / long-term variance) of a series, over `ratio`."""

    name = "burst"
    threshold_name = "ratio"

    def __init__(self, window: int = 192, ratio: float = 3.0, lam: float = 0.15, moments: bool = True) -> None:
        super().__init__()
        self.ratio = float(ratio)
        self.min_periods = max(8, window // 4)
        self._long = RollingMoments(window) if moments else None
        self._short = Ewma(lam)

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        assert self._long is not None
        return self.score_from(x, *self._long.step(x))

    def score_from(self, x: FloatArray, count: FloatArray, mean: FloatArray, var: FloatArray,
                   floor: FloatArray | None = None) -> FloatArray:
        return VarianceBurst.score_rows([self], x[None, :], count, mean[None, :], var[None, :],
                                        None if floor is None else floor[None, :])[0]

    @staticmethod
    def score_rows(group: list[VarianceBurst], x: FloatArray, count: FloatArray, mean: FloatArray,
                   var: FloatArray, floor: FloatArray | None = None) -> FloatArray:
        """`score_from` for several detectors with the same ratio and min_periods and EWMAs in the same
        phase, at once: x, mean, var, floor (len(group), n), count (n,)."""
        head = group[0]
        dev = x - mean
        short = Ewma.step_rows([det._short for det in group], np.where(count >= 1, dev * dev, 0.0))
        low = np.maximum(np.abs(mean) * 1e-6, 1e-9)
        if floor is not None:
            low = np.maximum(low, floor)
        low = low * low
        ratio = np.sqrt(short / np.maximum(var, low))
        ratio = warm_where(count, head.min_periods, ratio)
        for v, det in enumerate(group):
            det.detail = {"ratio": ratio[v]}
        return ratio / head.ratio

    def _step_one(self, x: float, t: float | None) -> float:
        assert self._long is not None
        return self.score_one_from(x, *self._long.push(x))

    def score_one_from(self, x: float, count: float, mean: float, var: float, floor: float = 0.0) -> float:
        dev = x - mean
        short = self._short.push(dev * dev if count >= 1 else 0.0)
        low = abs(mean) * 1e-6
        low = low if low >= 1e-9 else 1e-9
        low = low if low >= floor else floor
        low = low * low
        ratio = math.sqrt(short / (var if var >= low else low)) if count >= self.min_periods else 0.0
        self.detail = {"ratio": [ratio]}
        return ratio / self.ratio

    def reason(self, i: int, value: float, unit: str) -> str:
        return (
            f"variance burst: recent spread {self.detail['ratio'][i]:.1f}x the usual "
            f"(limit {self.ratio:g}x)"
        )


def decimal_resolution(value: float) -> float:
    """The step of the last decimal a value is written with (21.3 -> 0.1, 450 -> 1), at most 6 decimals."""
    for k in range(7):
        scaled = value * 10.0**k
        if abs(scaled - round(scaled)) <= 1e-9 * max(1.0, abs(scaled)):
            return 10.0**-k
    return 1e-6


@dataclass(frozen=True, slots=True)
class EnsembleParams:
    window: int = 48  # points in the short baseline (WINDOW_POINTS)
    level_window: int = 192  # points in the long baseline
    z: float = 3.0
    lam: float = 0.2  # EWMA chart smoothing
    L: float = 3.0
    k: float = 0.5
    h: float = 5.0
    forecast_lam: float = 0.7
    burst_ratio: float = 3.0
    stuck_factor: float = 3.0  # a run this many times the usual longest run
    # The level view fires on daily swings if held to the same z as the
    # residual views; these weights were tuned on bench/quality.py.
    weight_spike: float = 0.7
    weight_shift: float = 0.9
    weight_level: float = 0.7
    weight_drift: float = 1.0
    weight_burst: float = 1.0
    weight_stuck: float = 1.0
    views: tuple[str, ...] = COMPONENTS  # the views the combined score takes its maximum over
    # Calibration and episodes (detectors.calibration, detectors.episodes)
    alarm_rarity: float = 1e4  # anomaly_score 0.5: as rare as 1 in this many readings of the series
    episode_quiet: int = 12  # readings with nothing elevated that end an episode
    learning_hours: float = 24.0  # a new series announces nothing for this long (and level_window readings)


class Ensemble(Detector):
    """The views of one series; `step` returns the combined raw score (1.0 = a view at its threshold).

    The views share three rolling windows: the short and the long one of the
    forecast residuals, and the long one of the values. Every standard
    deviation has a floor of half the series' resolution, the smallest
    change between two readings seen so far (before any change: the step of
    the first reading's last decimal), so a flat or quantized series that
    moves by one step scores a z of 2, not 10^8.
    """

    name = "ensemble"
    threshold_name = "z"

    def __init__(self, params: EnsembleParams | None = None) -> None:
        super().__init__()
        p = params or EnsembleParams()
        unknown = set(p.views) - set(COMPONENTS)
        if unknown or not p.views:
            raise ValueError(f"views = {p.views!r}: expected some of {', '.join(COMPONENTS)}")
        self.params = p
        self.z = p.z
        self._smooth1 = Ewma(p.forecast_lam)
        self._smooth2 = Ewma(p.forecast_lam)
        self._last_forecast: float | None = None
        self._short = RollingMoments(p.window)  # of the residuals: spike, shift
        self._long = RollingMoments(p.level_window)  # of the residuals: drift, burst
        self._values = RollingMoments(p.level_window)  # of the values: level
        self.spike = RollingZScore(window=p.window, z=p.z, moments=False)
        self.shift = Cusum(k=p.k, h=p.h, window=p.window, moments=False)
        self.level = RollingZScore(window=p.level_window, z=p.z, moments=False)
        self.drift = EwmaChart(lam=p.lam, L=p.L, window=p.level_window, moments=False)
        self.burst = VarianceBurst(window=p.level_window, ratio=p.burst_ratio, moments=False)
        self.stuck = StuckRun(factor=p.stuck_factor)
        self.seasonal = DailyProfile()
        weights = dict(zip(COMPONENTS, (p.weight_spike, p.weight_shift, p.weight_level, p.weight_drift,
                                        p.weight_burst, p.weight_stuck), strict=True))
        # A view left out still runs (its detail feeds the charts) but weighs 0 in the maximum.
        self._weights_l = [weights[c] if c in p.views else 0.0 for c in COMPONENTS]
        self._trend_gain = p.forecast_lam / (1.0 - p.forecast_lam)
        self._res = math.inf  # smallest non-zero change between readings so far
        self._res0 = math.nan  # the first reading's decimal step, until a change is seen
        self._prev = math.nan

    @property
    def components(self) -> dict[str, Detector]:
        return {
            "spike": self.spike,
            "shift": self.shift,
            "level": self.level,
            "drift": self.drift,
            "burst": self.burst,
            "stuck": self.stuck,
        }

    def set_params(self, **params: float) -> None:
        """z, L, h, k or burst ratio; each goes to the components that use it."""
        routes = {
            "z": (self.spike, self.level),
            "L": (self.drift,),
            "h": (self.shift,),
            "k": (self.shift,),
            "ratio": (self.burst,),
        }
        for key, value in params.items():
            if key not in routes:
                raise AttributeError(f"ensemble has no parameter {key!r}")
            for det in routes[key]:
                det.set_params(**{key: value})
            if key == "z":
                self.z = float(value)

    @property
    def h(self) -> float:
        return self.shift.h

    def resolution(self, x: FloatArray) -> FloatArray:
        """The series' resolution before each value (see the class docstring)."""
        return Ensemble._resolution_rows([self], x[None, :])[0]

    @staticmethod
    def _resolution_rows(group: list[Ensemble], x: FloatArray) -> FloatArray:
        size, n = x.shape
        for v, ens in enumerate(group):
            if ens._res0 != ens._res0:
                ens._res0 = decimal_resolution(float(x[v, 0]))
        prev = np.empty((size, n))
        prev[:, 0] = [ens._prev for ens in group]
        prev[:, 1:] = x[:, :-1]
        change = np.abs(x - prev)
        change[~(change > 0.0)] = np.inf  # no change, or no previous reading
        running = np.empty((size, n + 1))
        running[:, 0] = [ens._res for ens in group]
        running[:, 1:] = change
        smallest = np.minimum.accumulate(running, axis=1)
        for ens, res, last in zip(group, smallest[:, -1].tolist(), x[:, -1].tolist(), strict=True):
            ens._res, ens._prev = res, last
        before = smallest[:, :-1]
        return np.where(before == np.inf, np.array([[ens._res0] for ens in group]), before)

    def residuals(self, x: FloatArray) -> FloatArray:
        """x_t minus the forecast made before x_t was seen.

        Brown's double exponential smoothing: level 2*s1 - s2 plus trend
        lam/(1-lam)*(s1 - s2). Unlike a single EWMA it does not lag a rising
        or falling series, so a daily swing leaves no bias in the residuals
        for the CUSUM to accumulate.
        """
        return Ensemble._residual_rows([self], x[None, :])[0]

    @staticmethod
    def _residual_rows(group: list[Ensemble], x: FloatArray) -> FloatArray:
        s1 = Ewma.step_rows([ens._smooth1 for ens in group], x)
        s2 = Ewma.step_rows([ens._smooth2 for ens in group], s1)
        ahead = (2.0 * s1 - s2) + group[0]._trend_gain * (s1 - s2)
        prev = np.empty_like(ahead)
        prev[:, 0] = [x[v, 0] if ens._last_forecast is None else ens._last_forecast for v, ens in enumerate(group)]
        prev[:, 1:] = ahead[:, :-1]
        for ens, last in zip(group, ahead[:, -1].tolist(), strict=True):
            ens._last_forecast = last
        return x - prev

    def phase(self) -> tuple:
        """What `step_rows` needs equal across the ensembles it steps together: the parameters and the
        positions of the rolling windows and EWMAs (the same when the series read as many values)."""
        return (self.params, self.spike.z, self.level.z, self.shift.k, self.shift.h, self.drift.L, self.burst.ratio,
                self._short.phase(), self._long.phase(), self._values.phase(), self._smooth1.phase(),
                self._smooth2.phase(), self.drift._ewma.phase(), self.burst._short.phase())

    def _step(self, x: FloatArray, t: FloatArray | None, seasonal: FloatArray | None = None) -> FloatArray:
        """`seasonal`: the daily profile's offsets for these values when they were already computed
        (`detectors.seasonal.step_profiles`, with the station's other series), else the profile steps here."""
        if x.size == 0:
            self.detail = {}
            return np.zeros(0)
        return Ensemble.step_rows([self], x[None, :], t, None if seasonal is None else seasonal[None, :])[0]

    @staticmethod
    def step_rows(group: list[Ensemble], x: FloatArray, t: FloatArray | None,
                  seasonal: FloatArray | None = None) -> FloatArray:
        """The combined raw score of several series read at the same times, at once: x (len(group), n)
        of usable values, ensembles of the same `phase`; `seasonal` (len(group), n): their daily
        profiles' offsets when already computed. Each row is what its ensemble's own step gives (the
        same operations on the same operands), and each ensemble gets its own detail."""
        size, n = x.shape
        head = group[0]
        floor = Ensemble._resolution_rows(group, x)
        floor *= 0.5
        if t is None:
            offset: FloatArray = np.zeros((size, n))
            y = x
        else:
            offset = np.stack([ens.seasonal.step(x[v], t) for v, ens in enumerate(group)]) if seasonal is None \
                else seasonal
            y = x - offset
        resid = Ensemble._residual_rows(group, y)
        short = RollingMoments.step_rows([ens._short for ens in group], resid)
        long = RollingMoments.step_rows([ens._long for ens in group], resid)
        spike, z = RollingZScore.score_rows([ens.spike for ens in group], resid, *short, floor=floor)
        # The CUSUM standardises the same residuals on the same window: the spike view's z, when it
        # warms up as soon (the same min_periods), is its input to the number.
        shift_z = z if head.shift.min_periods == head.spike.min_periods else None
        parts = (
            spike,
            Cusum.score_rows([ens.shift for ens in group], resid, *short, floor=floor, z=shift_z),
            RollingZScore.score_rows([ens.level for ens in group], y,
                                     *RollingMoments.step_rows([ens._values for ens in group], y), floor=floor)[0],
            EwmaChart.score_rows([ens.drift for ens in group], resid, *long, floor=floor),
            VarianceBurst.score_rows([ens.burst for ens in group], resid, *long, floor=floor),
            np.stack([ens.stuck._step(x[v], t) for v, ens in enumerate(group)]),
        )
        # x * 1.0 is x, bit for bit: a view of weight 1 is kept as it is (each view's array is its own)
        weighted = [part if w == 1.0 else part * w for part, w in zip(parts, head._weights_l, strict=True)]
        # The first of equal maxima, as the one-value path picks it (argmax over a stacked
        # array walks memory across rows and cost more than all of this), in place.
        combined = weighted[0].copy()
        best = np.zeros((size, n))
        higher = np.empty((size, n), dtype=bool)
        for i in range(1, len(weighted)):
            np.greater(weighted[i], combined, out=higher)
            np.copyto(combined, weighted[i], where=higher)
            np.copyto(best, float(i), where=higher)
        forecast = x - resid
        for v, ens in enumerate(group):
            ens._set_detail([part[v] for part in weighted], best[v], combined[v], forecast[v], resid[v], offset[v])
        return combined

    def _set_detail(self, weighted: list, best: Any, combined: Any, forecast: Any, resid: Any,
                    seasonal: Any) -> None:
        """What reasons and charts read, for both paths (arrays, or one-element lists); means and
        forecasts are in the reading's own terms (the seasonal offset added back)."""
        mean = self.level.detail["mean"]
        level_mean = mean + seasonal if isinstance(seasonal, np.ndarray) else [mean[0] + seasonal[0]]
        self.detail = {name: weighted[i] for i, name in enumerate(COMPONENTS)}
        self.detail.update(
            best=best,
            combined=combined,
            forecast=forecast,
            resid=resid,
            resid_z=self.spike.detail["z"],
            cusum_up=self.shift.detail["up"],
            cusum_down=self.shift.detail["down"],
            level_z=self.level.detail["z"],
            level_mean=level_mean,
            seasonal=seasonal,
            level_sigma=self.level.detail["sigma"],
            ewma=self.drift.detail["ewma"],
            drift_mean=self.drift.detail["mean"],
            drift_limit=self.drift.detail["limit"],
            burst_ratio=self.burst.detail["ratio"],
            run=self.stuck.detail["run"],
            usual_run=self.stuck.detail["usual"],
        )

    def _step_one(self, x: float, t: float | None) -> float:
        if self._res0 != self._res0:
            self._res0 = decimal_resolution(x)
        res = self._res
        floor = 0.5 * (self._res0 if res == math.inf else res)
        change = abs(x - self._prev)
        if change > 0.0 and change < res:
            self._res = change
        self._prev = x
        offset = 0.0 if t is None else self.seasonal.push(x, t)
        y = x - offset
        s1 = self._smooth1.push(y)
        s2 = self._smooth2.push(s1)
        prev = y if self._last_forecast is None else self._last_forecast
        self._last_forecast = (2.0 * s1 - s2) + self._trend_gain * (s1 - s2)
        resid = y - prev
        cs, ms, vs = self._short.push(resid)
        cl, ml, vl = self._long.push(resid)
        parts = (
            self.spike.score_one_from(resid, cs, ms, vs, floor),
            self.shift.score_one_from(resid, cs, ms, vs, floor),
            self.level.score_one_from(y, *self._values.push(y), floor),
            self.drift.score_one_from(resid, cl, ml, vl, floor),
            self.burst.score_one_from(resid, cl, ml, vl, floor),
            self.stuck._step_one(x, t),
        )
        weighted = [p * w for p, w in zip(parts, self._weights_l, strict=True)]
        best = 0
        for i in range(1, len(weighted)):
            if weighted[i] > weighted[best]:  # argmax keeps the first maximum
                best = i
        combined = weighted[best]
        self._set_detail([[w] for w in weighted], [float(best)], [combined], [x - resid], [resid], [offset])
        return combined

    def fired(self, i: int) -> list[str]:
        """Components at or over their threshold at value i of the last step."""
        return [name for name in COMPONENTS if self.detail[name][i] >= 1.0]

    def reason(self, i: int, value: float, unit: str) -> str:
        d = {key: float(arr[i]) for key, arr in self.detail.items()}
        best = COMPONENTS[int(d["best"])]
        u = f" {unit}" if unit else ""
        if best == "spike":
            text = (
                f"{value:.4g}{u} is {d['resid']:+.3g}{u} off the forecast {d['forecast']:.4g}{u}, "
                f"{abs(d['resid_z']):.1f} times the usual error (z {self.spike.z:g})"
            )
        elif best == "shift":
            word, s = ("upward", d["cusum_up"]) if d["cusum_up"] >= d["cusum_down"] else (
                "downward", d["cusum_down"])
            text = f"sustained {word} shift, CUSUM {s:.1f} over h={self.shift.h:g}"
        elif best == "level":
            text = (
                f"{value:.4g}{u} is {abs(d['level_z']):.1f} σ "
                f"{'above' if d['level_z'] > 0 else 'below'} the long-run mean "
                f"{d['level_mean']:.4g}{u}"
            )
        elif best == "drift":
            # The drift view watches the forecast errors, so its EWMA is an error, not a reading.
            side = "above" if d["ewma"] > d["drift_mean"] else "below"
            text = (
                f"readings keep running {side} the forecast: the errors' EWMA {d['ewma']:+.3g}{u} "
                f"is past its limit ±{d['drift_limit']:.3g}{u}"
            )
        elif best == "burst":
            text = f"spread {d['burst_ratio']:.1f}x the usual (limit {self.burst.ratio:g}x)"
        else:
            text = (
                f"{value:.4g}{u} repeated {int(d['run'])} readings in a row, far longer than "
                f"its usual run of {max(int(d['usual_run']), self.stuck.min_usual)} (stuck sensor?)")
        others = [name for name in self.fired(i) if name != best]
        return text + (f" (also {', '.join(others)})" if others else "")
