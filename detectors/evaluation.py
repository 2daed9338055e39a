"""Scoring detectors against labelled data: the NAB v1.1 score, event precision and recall.

The Numenta Anomaly Benchmark score (Lavin and Ahmad 2015, "Evaluating
Real-time Anomaly Detection Algorithms: the Numenta Anomaly Benchmark",
IEEE ICMLA; the rules as implemented in NAB v1.1's `nab/sweeper.py`):

- Each labelled anomaly has a window (first, last row). The first 15 % of a
  file (at most 750 rows) is probationary: detections there do not count.
- A row is a detection when its score is at or above the threshold.
- A detection inside a window is worth `A_TP * sigma(y) / sigma(-1)` with
  y = -(last - i + 1) / width the relative position (-1 at the window's
  start, 0 at its end) and sigma(y) = 2 / (1 + e^(5y)) - 1, the scaled
  sigmoid; only the best (earliest) detection of a window counts. A window
  without one costs `A_FN`.
- A detection outside every window is a false positive worth
  `A_FP * sigma(y)` with y its distance past the end of the previous
  window in that window's widths (sigma = -1 from 3 widths on, and before
  the first window), so a detection just after a window costs little.
- One threshold for the whole corpus, the one that maximises the summed
  raw score; the result is normalised to 100 * (S - S_null) / (S_perfect -
  S_null), where the null detector flags nothing (-A_FN per window) and the
  perfect one flags the first row of each window (A_TP per window).

Profiles (NAB's `config/profiles.json`): standard A_TP = 1, A_FP = 0.11,
A_FN = 1; reward_low_FP_rate A_FP = 0.22; reward_low_FN_rate A_FN = 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}

PROBATIONARY = -2  # window index of a probationary row
OUTSIDE = -1  # window index of a row outside every window


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid: 0.987 at y = -1 (a window's start), 0 at its end, -1 from y >= 3."""
    if y >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probationary_length(n: int, fraction: float = 0.15) -> float:
    return min(math.floor(fraction * n), fraction * 5000)


def row_weights(n: int, windows: Sequence[tuple[int, int]], profile: str = "standard",
                probation: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """(weight, window index) per row: what a detection on that row would add, and which
    window it falls in (OUTSIDE, PROBATIONARY or 0..). Windows are (first, last) row indices,
    inclusive, in time order and not overlapping."""
    cost = PROFILES[profile]
    max_tp = scaled_sigmoid(-1.0)
    weight = np.empty(n)
    where = np.full(n, OUTSIDE, dtype=np.int64)
    prev_last: int | None = None
    prev_width = 0.0
    bounds = sorted(windows)
    k = 0
    for i in range(n):
        while k < len(bounds) and bounds[k][1] < i:
            prev_last, prev_width = bounds[k][1], float(bounds[k][1] - bounds[k][0] + 1)
            k += 1
        if k < len(bounds) and bounds[k][0] <= i <= bounds[k][1]:
            first, last = bounds[k]
            width = float(last - first + 1)
            weight[i] = scaled_sigmoid(-(last - i + 1) / width) * cost["tp"] / max_tp
            where[i] = k
        else:
            y = 3.0 if prev_last is None else abs(prev_last - i) / float(prev_width - 1 if prev_width > 1 else 1)
            weight[i] = scaled_sigmoid(y) * cost["fp"]
    where[: int(probationary_length(n, probation))] = PROBATIONARY
    return weight, where


@dataclass
class NabFile:
    name: str
    scores: np.ndarray  # anomaly score per row, in [0, 1]
    windows: list[tuple[int, int]]


@dataclass
class NabResult:
    score: float  # normalised: 0 = the null detector, 100 = perfect
    threshold: float
    raw: float
    null: float
    perfect: float
    per_file: dict[str, float]  # raw score of each file at the corpus threshold
    detected: int  # windows with a detection
    windows: int
    false_positives: int  # rows flagged outside every window (probation excluded)


def _file_curve(f: NabFile, thresholds: np.ndarray, profile: str, probation: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Raw score, windows detected and false-positive rows of one file at each threshold (descending)."""
    cost = PROFILES[profile]
    weight, where = row_weights(f.scores.size, f.windows, profile, probation)
    scores = np.nan_to_num(f.scores, nan=-np.inf)
    neg = -thresholds  # ascending, for searchsorted
    outside = where == OUTSIDE
    s_out = np.sort(scores[outside])[::-1]
    w_out = weight[outside][np.argsort(scores[outside], kind="stable")[::-1]]
    fp_cum = np.concatenate(([0.0], np.cumsum(w_out)))
    count_out = np.searchsorted(-s_out, neg, side="right")  # rows with score >= threshold
    total = fp_cum[count_out]
    detected = np.zeros(thresholds.size)
    counted = 0
    for k in range(len(f.windows)):
        inside = where == k
        if not inside.any():
            continue  # a window wholly inside the probationary period is not scored
        counted += 1
        order = np.argsort(scores[inside], kind="stable")[::-1]
        s_in = scores[inside][order]
        best = np.maximum.accumulate(weight[inside][order])
        n_det = np.searchsorted(-s_in, neg, side="right")
        part = np.where(n_det > 0, best[np.maximum(n_det - 1, 0)], -cost["fn"])
        total = total + part
        detected += n_det > 0
    return total, detected, count_out.astype(float), counted


def nab_score(files: Sequence[NabFile], profile: str = "standard", probation: float = 0.15,
              max_thresholds: int = 20000) -> NabResult:
    """The normalised NAB score of a corpus at its best single threshold (see the module docstring)."""
    cost = PROFILES[profile]
    every = np.concatenate([np.nan_to_num(f.scores, nan=0.0) for f in files]) if files else np.zeros(0)
    cand = np.unique(every)
    if cand.size > max_thresholds:
        cand = np.unique(np.quantile(every, np.linspace(0.0, 1.0, max_thresholds)))
    thresholds = np.concatenate(([1.1], cand[::-1]))
    total = np.zeros(thresholds.size)
    detected = np.zeros(thresholds.size)
    fps = np.zeros(thresholds.size)
    curves = []
    windows = 0
    for f in files:
        curve, det, fp, counted = _file_curve(f, thresholds, profile, probation)
        curves.append(curve)
        total += curve
        detected += det
        fps += fp
        windows += counted
    best = int(np.argmax(total))  # the first maximum: the highest threshold that reaches it
    null = -cost["fn"] * windows
    perfect = cost["tp"] * windows
    norm = 100.0 * (total[best] - null) / (perfect - null) if perfect != null else 0.0
    return NabResult(
        score=float(norm),
        threshold=float(thresholds[best]),
        raw=float(total[best]),
        null=null,
        perfect=perfect,
        per_file={f.name: float(c[best]) for f, c in zip(files, curves, strict=True)},
        detected=int(detected[best]),
        windows=windows,
        false_positives=int(fps[best]),
    )


def nab_windows(length: int, anomalies: Sequence[int], fraction: float = 0.10) -> list[tuple[int, int]]:
    """NAB's window rule for labelled points: windows together cover `fraction` of the file,
    each centred on its anomaly and cut at the file's ends (overlapping ones merged)."""
    if not anomalies:
        return []
    width = int(fraction * length / len(anomalies))
    out: list[tuple[int, int]] = []
    for a in sorted(anomalies):
        first, last = max(0, a - width // 2), min(length - 1, a + width // 2)
        if out and first <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


# --- events and episodes --------------------------------------------------------------------------------------

def episodes(times: np.ndarray, gap_seconds: float) -> list[tuple[float, float]]:
    """Alarm times grouped into episodes: (first, last), a new one after a silence longer than gap_seconds."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    if t.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(t) >= gap_seconds)
    starts = np.concatenate(([t[0]], t[breaks + 1]))
    ends = np.concatenate((t[breaks], [t[-1]]))
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


@dataclass
class EventScore:
    events: int
    detected: int
    episodes: int
    true_episodes: int
    delays: list[float]  # per detected event: first alarm time minus the event's start (seconds or rows)

    @property
    def recall(self) -> float:
        return self.detected / self.events if self.events else float("nan")

    @property
    def precision(self) -> float:
        return self.true_episodes / self.episodes if self.episodes else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_episodes(self) -> int:
        return self.episodes - self.true_episodes

    def __add__(self, other: EventScore) -> EventScore:
        return EventScore(self.events + other.events, self.detected + other.detected,
                          self.episodes + other.episodes, self.true_episodes + other.true_episodes,
                          self.delays + other.delays)


def event_score(alarm_times: np.ndarray, events: Sequence[tuple[float, float]], gap: float,
                slack: float = 0.0) -> EventScore:
    """Events (start, end) against alarm times on one axis (seconds or row numbers).

    An event is detected by an alarm in [start, end + slack]; an episode (alarms less than
    `gap` apart) is true when it overlaps some [start, end + slack]. Delay: first alarm minus start.
    """
    t = np.sort(np.asarray(alarm_times, dtype=np.float64))
    eps = episodes(t, gap)
    delays = []
    detected = 0
    for start, end in events:
        lo = np.searchsorted(t, start, side="left")
        if lo < t.size and t[lo] <= end + slack:
            detected += 1
            delays.append(float(t[lo] - start))
    true = sum(any(s <= end + slack and e >= start for start, end in events) for s, e in eps)
    return EventScore(len(events), detected, len(eps), true, delays)
