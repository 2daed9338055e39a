"""One series' detection: a raw detector, calibrated on the series' own history, in episodes.

`SeriesModel` wraps any detector of this package (the ensemble by default):
its raw score (1.0 = nominal threshold) becomes a surprise S = -log10 p
under the distribution of the raw scores the series produced before
(`detectors.calibration`), then a unit score in [0, 1) with 0.5 at the
alarm rarity (1 reading in `alarm_rarity`), and readings are grouped into
episodes (`detectors.episodes`): the onset and escalations are marked, and
readings inside an announced condition keep half their score unless they
set a record. The same object serves `mass score`, the engine and the
benchmarks, so a stored anomaly_score means the same everywhere.
"""

from __future__ import annotations

import math

import numpy as np

from detectors._blocks import FloatArray
from detectors.base import Detector
from detectors.calibration import TailCalibrator
from detectors.episodes import EpisodeTracker

LOW_RARITY = 100.0  # readings rarer than 1 in this many are "elevated": they extend a stretch


class SeriesModel(Detector):
    """step(values, times) -> stored anomaly_score per value, in [0, 1).

    After a step: `detail` has "raw", "surprise" and "flags" (0, 1 = onset,
    2 = escalation) per value, `marks` lists (index, episode start, episode
    peak, severity) for each flagged value, indices counting finite values
    only, and `raw.detail` is the wrapped detector's own detail.
    """

    name = "calibrated"

    def __init__(self, raw: Detector, alarm_rarity: float = 1e4, quiet: int = 12, learn_points: int = 0,
                 learn_seconds: float = 0.0) -> None:
        super().__init__()
        if not alarm_rarity > LOW_RARITY:
            raise ValueError(f"alarm_rarity = {alarm_rarity!r}: expected a number of readings > {LOW_RARITY:g}")
        self.raw = raw
        self.threshold_name = raw.threshold_name
        self.calibrator = TailCalibrator()
        self.alarm = math.log10(alarm_rarity)
        self.episodes = EpisodeTracker(self.alarm, math.log10(LOW_RARITY), quiet, learn_points, learn_seconds)
        self.marks: list[tuple] = []

    def __getattr__(self, name: str):
        # Threshold parameters (z, h, ...) read through to the wrapped detector.
        if name in ("raw", "__setstate__"):
            raise AttributeError(name)
        return getattr(self.raw, name)

    def set_params(self, **params: float) -> None:
        self.raw.set_params(**params)

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        return self._calibrate(self.raw._step(x, t), x, t)

    def _calibrate(self, raw: FloatArray, x: FloatArray, t: FloatArray | None) -> FloatArray:
        return SeriesModel.calibrate_rows([self], raw[None, :], t)[0]

    @staticmethod
    def calibrate_rows(group: list[SeriesModel], raw: FloatArray, t: FloatArray | None) -> list[FloatArray]:
        """The stored score per value of several series from their raw scores (len(group), n), read at
        the same times, their calibrators having seen as many values (`TailCalibrator.step_rows`);
        each model's detail and marks as its own step sets them."""
        surprise = TailCalibrator.step_rows([m.calibrator for m in group], np.nan_to_num(raw, nan=0.0, posinf=1e6))
        times = np.full(raw.shape[1], np.nan) if t is None else t
        out = []
        for v, model in enumerate(group):
            score, flags, marks = model.episodes.step(surprise[v], times)
            model.marks = marks
            model.detail = {"raw": raw[v], "surprise": surprise[v], "flags": flags}
            out.append(score)
        return out

    def _step_one(self, x: float, t: float | None) -> float:
        raw = self.raw._step_one(x, t)
        r = raw if raw == raw else 0.0
        surprise = self.calibrator.push(r if r < 1e6 else 1e6)
        score, flag, mark = self.episodes.push(surprise, math.nan if t is None else t)
        self.marks = [mark] if mark is not None else []
        self.detail = {"raw": [raw], "surprise": [surprise], "flags": [flag]}
        return score

    def rarity(self, i: int) -> str:
        """'1 in N readings' for value i of the last step."""
        s = float(self.detail["surprise"][i])
        return f"1 in {10.0 ** s:,.0f} readings" if s < 15 else f"1 in 10^{s:.0f} readings"
