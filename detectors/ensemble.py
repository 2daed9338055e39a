"""The default ensemble: one anomaly_score in [0, 1) per value.

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

The combined score s is the largest weighted component; anomaly_score =
s^2 / (1 + s^2) maps the threshold (s = 1) to 0.5, twice the threshold to
0.8, and reaches 0.99 only near ten times it, so the score keeps ranking
anomalies well above the alarm level instead of saturating at 1.
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
from detectors.zscore import RollingZScore

COMPONENTS = ("spike", "shift", "level", "drift", "burst")


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

    def __init__(self, window: int = 192, ratio: float = 3.0, lam: float = 0.15) -> None:
        super().__init__()
        self.ratio = float(ratio)
        self.min_periods = max(8, window // 4)
        self._long = RollingMoments(window)
        self._short = Ewma(lam)

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        count, mean, var = self._long.step(x)
        dev = x - mean
        short = self._short.step(np.where(count >= 1, dev * dev, 0.0))
        floor = np.maximum(np.abs(mean) * 1e-6, 1e-9)
        floor = floor * floor
        ratio = np.sqrt(short / np.maximum(var, floor))
        ratio = warm_where(count, self.min_periods, ratio)
        self.detail = {"ratio": ratio}
        return ratio / self.ratio

    def _step_one(self, x: float, t: float | None) -> float:
        count, mean, var = self._long.push(x)
        dev = x - mean
        short = self._short.push(dev * dev if count >= 1 else 0.0)
        floor = abs(mean) * 1e-6
        floor = floor if floor >= 1e-9 else 1e-9
        floor = floor * floor
        ratio = math.sqrt(short / (var if var >= floor else floor)) if count >= self.min_periods else 0.0
        self.detail = {"ratio": [ratio]}
        return ratio / self.ratio

    def reason(self, i: int, value: float, unit: str) -> str:
        return (
            f"variance burst: recent spread {self.detail['ratio'][i]:.1f}x the usual "
            f"(limit {self.ratio:g}x)"
        )


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
    # The level view fires on daily swings if held to the same z as the
    # residual views; these weights were tuned on bench/quality.py.
    weight_spike: float = 0.7
    weight_shift: float = 0.9
    weight_level: float = 0.7
    weight_drift: float = 1.0
    weight_burst: float = 1.0


class Ensemble(Detector):
    name = "ensemble"
    threshold_name = "z"

    def __init__(self, params: EnsembleParams | None = None) -> None:
        super().__init__()
        p = params or EnsembleParams()
        self.params = p
        self.z = p.z
        self._smooth1 = Ewma(p.forecast_lam)
        self._smooth2 = Ewma(p.forecast_lam)
        self._last_forecast: float | None = None
        self.spike = RollingZScore(window=p.window, z=p.z)
        self.shift = Cusum(k=p.k, h=p.h, window=p.window)
        self.level = RollingZScore(window=p.level_window, z=p.z)
        self.drift = EwmaChart(lam=p.lam, L=p.L, window=p.level_window)
        self.burst = VarianceBurst(window=p.level_window, ratio=p.burst_ratio)
        self._weights_l = [p.weight_spike, p.weight_shift, p.weight_level, p.weight_drift, p.weight_burst]
        self._trend_gain = p.forecast_lam / (1.0 - p.forecast_lam)

    @property
    def components(self) -> dict[str, Detector]:
        return {
            "spike": self.spike,
            "shift": self.shift,
            "level": self.level,
            "drift": self.drift,
            "burst": self.burst,
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

    def residuals(self, x: FloatArray) -> FloatArray:
        """x_t minus the forecast made before x_t was seen.

        Brown's double exponential smoothing: level 2*s1 - s2 plus trend
        lam/(1-lam)*(s1 - s2). Unlike a single EWMA it does not lag a rising
        or falling series, so a daily swing leaves no bias in the residuals
        for the CUSUM to accumulate.
        """
        s1 = self._smooth1.step(x)
        s2 = self._smooth2.step(s1)
        ahead = (2.0 * s1 - s2) + self._trend_gain * (s1 - s2)
        prev = np.empty_like(ahead)
        prev[0] = x[0] if self._last_forecast is None else self._last_forecast
        prev[1:] = ahead[:-1]
        self._last_forecast = float(ahead[-1])
        return x - prev

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        if x.size == 0:
            self.detail = {}
            return np.zeros(0)
        resid = self.residuals(x)
        parts = (
            self.spike.step(resid),
            self.shift.step(resid),
            self.level.step(x),
            self.drift.step(resid),
            self.burst.step(resid),
        )
        weighted = [part * w for part, w in zip(parts, self._weights_l, strict=True)]
        # The first of equal maxima, as the one-value path picks it (argmax over a stacked
        # array walks memory across rows and cost more than all of this).
        combined = weighted[0]
        best = np.zeros(x.size)
        for i in range(1, len(weighted)):
            higher = weighted[i] > combined
            combined = np.where(higher, weighted[i], combined)
            best[higher] = float(i)
        self._set_detail(weighted, best, combined, x - resid, resid)
        return combined

    def _set_detail(self, weighted: list, best: Any, combined: Any, forecast: Any, resid: Any) -> None:
        """What reasons and charts read, for both paths (arrays, or one-element lists)."""
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
            level_mean=self.level.detail["mean"],
            level_sigma=self.level.detail["sigma"],
            ewma=self.drift.detail["ewma"],
            drift_mean=self.drift.detail["mean"],
            drift_limit=self.drift.detail["limit"],
            burst_ratio=self.burst.detail["ratio"],
        )

    def _step_one(self, x: float, t: float | None) -> float:
        s1 = self._smooth1.push(x)
        s2 = self._smooth2.push(s1)
        prev = x if self._last_forecast is None else self._last_forecast
        self._last_forecast = (2.0 * s1 - s2) + self._trend_gain * (s1 - s2)
        resid = x - prev
        parts = (
            self.spike._step_one(resid, None),
            self.shift._step_one(resid, None),
            self.level._step_one(x, None),
            self.drift._step_one(resid, None),
            self.burst._step_one(resid, None),
        )
        weighted = [p * w for p, w in zip(parts, self._weights_l, strict=True)]
        best = 0
        for i in range(1, len(weighted)):
            if weighted[i] > weighted[best]:  # argmax keeps the first maximum
                best = i
        combined = weighted[best]
        self._set_detail([[w] for w in weighted], [float(best)], [combined], [x - resid], [resid])
        return combined

    def anomaly_score(self, values: object, times: object | None = None) -> FloatArray:
        """One score in [0, 1) per value; 0.5 is the alarm level."""
        return to_unit_score(self.step(values, times))

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
        else:
            text = f"spread {d['burst_ratio']:.1f}x the usual (limit {self.burst.ratio:g}x)"
        others = [name for name in self.fired(i) if name != best]
        return text + (f" (also {', '.join(others)})" if others else "")
