"""The alarm threshold on the calibrated scale, in words, and what would fire at it.

A reading alarms when it is rarer than 1 in `alarm_rarity` readings of its
own series (its calibrated surprise S = -log10 p reaches log10 of it:
`detectors.episodes`, README "How detection works"); the stored
anomaly_score keeps its scale (0.5 = `detectors.alarm_rarity`), so a
threshold of 1 in R reads as the score u²/(1+u²), u = log10 R / log10
alarm_rarity. `alarm_count` replays the detectors' own episode logic over
a series' stored surprises: the readings that would open or escalate an
episode at the given levels, which is what the engine announces and alerts.
Pure functions, no Textual.
"""

from __future__ import annotations

import math

import numpy as np

from detectors.episodes import EpisodeTracker, unit_score_one
from detectors.series import LOW_RARITY

STEP = math.sqrt(10.0)  # one key press: half a decade of rarity
MIN_RARITY = 10 ** 2.5  # above LOW_RARITY (1 in 100 readings only marks a reading "elevated")
MAX_RARITY = 1e12  # as detectors.alarm_rarity allows


def rarity_words(rarity: float) -> str:
    """ "1 in 10,000", "1 in 31,623", "1 in 10^9" (beyond a million readings, in powers of ten)."""
    if rarity < 1e6:
        return f"1 in {rarity:,.0f}"
    exp = math.log10(rarity)
    return f"1 in 10^{exp:.0f}" if abs(exp - round(exp)) < 0.01 else f"1 in 10^{exp:.1f}"


def step_rarity(rarity: float, up: bool, floor: float = MIN_RARITY) -> float:
    """The next rarity half a decade rarer (`up`) or commoner, within [floor, MAX_RARITY], rounded so
    that steps come back to where they began."""
    exp = math.log10(rarity) + (0.5 if up else -0.5)
    exp = round(exp * 2) / 2
    return float(min(MAX_RARITY, max(floor, 10.0 ** exp)))


def threshold_score(rarity: float, base_rarity: float) -> float:
    """The stored anomaly_score a reading of rarity 1 in `rarity` gets, on the scale where
    `base_rarity` is 0.5."""
    return unit_score_one(math.log10(rarity), math.log10(base_rarity))


def alarm_count(surprise: np.ndarray, times: np.ndarray, *, alarm_rarity: float, critical_rarity: float | None,
                base_rarity: float, quiet: int, learn_points: int = 0, learn_seconds: float = 0.0) -> int:
    """How many of these readings (one series, oldest first; NaN = not elevated) would be announced:
    episode onsets at 1 in `alarm_rarity` and escalations at 1 in `critical_rarity` (None: the
    default, unit score 0.8), as the engine's `EpisodeTracker` decides. `learn_*`: the series'
    learning span, when these readings start at its first one."""
    tracker = EpisodeTracker(math.log10(base_rarity), math.log10(LOW_RARITY), quiet, learn_points, learn_seconds)
    tracker.set_levels(math.log10(alarm_rarity), None if critical_rarity is None else math.log10(critical_rarity))
    sur = np.nan_to_num(np.asarray(surprise, dtype=np.float64), nan=0.0)
    _score, flags, _marks = tracker.step(sur, np.asarray(times, dtype=np.float64))
    return int(np.count_nonzero(flags))
