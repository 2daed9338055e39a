"""Episodes: one announcement per ongoing condition, not one per reading.

A stretch is a run of elevated readings (surprise >= `low`, i.e. rarer than
1 in 100) with gaps of at most `quiet` readings. Within a stretch:

- the reading that first reaches the alarm level opens an episode (its
  onset) and is announced; a later reading that raises the severity
  (warning -> critical) is announced as an escalation; nothing else is;
- a reading keeps its full score only when it is a new record of the
  stretch (50 % more surprising than any before it), the onset or an
  escalation; the others are shown at half their score, below the alarm
  level: the same condition, already announced. So the stored score of a
  long condition does not flag every reading, at any threshold.

The episode ends with its stretch: `quiet` readings with nothing elevated.
A new series first learns: for its first `learn_points` readings and
`learn_seconds` of data time nothing is announced and every elevated
reading keeps half its score (a first working morning is new to it, not
anomalous).
A level that holds becomes the baselines' new normal within the long window
(the detectors' windows fill with it), its stretch ends and a later change
is a new episode.

Decisions depend on readings up to the current one only, and the loop runs
over elevated readings only (about 1 % of them), in both the batch and the
one-value path, so the two agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from detectors._blocks import FloatArray

NONE, ONSET, ESCALATION = 0, 1, 2
DISCOUNT = 0.5  # score multiplier of a reading inside an announced stretch that sets no record
RECORD = 1.5  # a record must be this many times the stretch's peak surprise


TOP = 0.9999  # the highest unit score: stored with 4 decimals, a score never reads 1.0


def unit_score(surprise: FloatArray, alarm: float) -> FloatArray:
    """Surprise (-log10 p) to [0, 1): u = S / alarm, u^2 / (1 + u^2); 0.5 at the alarm, 0.8 at twice
    it, at most TOP."""
    u = surprise / alarm
    u2 = u * u
    return np.minimum(u2 / (1.0 + u2), TOP)


def unit_score_one(surprise: float, alarm: float) -> float:
    u = surprise / alarm
    u2 = u * u
    s = u2 / (1.0 + u2)
    return s if s <= TOP else TOP


def severity_of(score: float) -> str:
    """Severity of a unit score: warning from 0.5 (the alarm), critical from 0.8 (twice the alarm)."""
    return "critical" if score >= 0.8 else "warning"


@dataclass(slots=True)
class EpisodeState:
    start: float  # data time of the onset
    peak: float  # highest unit score so far
    severity: str


class EpisodeTracker:
    """Per series: which readings open or escalate an episode, and the score each keeps.

    `alarm` and `low` are surprises (-log10 p); `quiet` is in readings.
    The unit score is on the scale of the `alarm` given at construction
    (`scale`: 0.5 there, 0.8 at twice it); `set_levels()` later moves the
    onset level (`alarm`) and the critical level (`critical`, surprise; by
    default the unit score's 0.8) without changing that scale, so stored
    scores stay comparable while what opens and escalates an episode moves.
    """

    __slots__ = ("alarm", "scale", "critical", "low", "quiet", "learn_points", "learn_seconds", "_first", "_seen",
                 "_last", "_peak", "episode")

    def __init__(self, alarm: float = 4.0, low: float = 2.0, quiet: int = 12, learn_points: int = 0,
                 learn_seconds: float = 0.0) -> None:
        self.alarm = float(alarm)
        self.scale = float(alarm)
        self.critical: float | None = None  # None: critical from unit score 0.8 (surprise twice the scale)
        self.low = float(low)
        self.quiet = int(quiet)
        self.learn_points = int(learn_points)
        self.learn_seconds = float(learn_seconds)
        self._first = math.nan  # data time of the first reading
        self._seen = 0  # readings before this call
        self._last = -(1 << 62)  # position of the last elevated reading
        self._peak = 0.0  # the stretch's highest surprise
        self.episode: EpisodeState | None = None

    def set_levels(self, alarm: float, critical: float | None = None) -> None:
        """Onset at surprise `alarm`, critical from surprise `critical` (None: unit score 0.8); the
        unit score's scale and the tracker's state are kept. Raises ValueError when alarm <= low."""
        if not alarm > self.low:
            raise ValueError(f"alarm surprise {alarm!r} must be above the elevated level {self.low!r}")
        self.alarm = float(alarm)
        self.critical = None if critical is None else max(float(critical), self.alarm)

    def _severity(self, sur: float, score: float) -> str:
        if self.critical is None:
            return severity_of(score)
        return "critical" if sur >= self.critical else "warning"

    def _visit(self, pos: int, sur: float, score: float, t: float) -> tuple[int, bool]:
        """(flag, keeps its full score) for one elevated reading."""
        if pos - self._last > self.quiet:  # a new stretch
            self._peak = 0.0
            self.episode = None
        self._last = pos
        full = sur >= self._peak * RECORD
        if sur > self._peak:
            self._peak = sur
        flag = NONE
        ep = self.episode
        if pos < self.learn_points or t - self._first < self.learn_seconds:
            return NONE, False
        if ep is None:
            if sur >= self.alarm:
                self.episode = EpisodeState(t, score, self._severity(sur, score))
                flag = ONSET
        else:
            if score > ep.peak:
                ep.peak = score
            sev = self._severity(sur, score)
            if sev == "critical" and ep.severity != "critical":
                ep.severity = sev
                flag = ESCALATION
        return flag, full or flag != NONE

    def step(self, surprise: FloatArray, times: FloatArray) -> tuple[FloatArray, np.ndarray, list[tuple]]:
        """(stored score, flag per reading, [(index, start, peak, severity)] for flagged readings)."""
        score = unit_score(surprise, self.scale)
        flags = np.zeros(surprise.size, dtype=np.int8)
        marks = []
        pos0 = self._seen
        if pos0 == 0 and surprise.size:
            self._first = float(times[0])
        for i in np.flatnonzero(surprise >= self.low).tolist():
            flag, full = self._visit(pos0 + i, float(surprise[i]), float(score[i]), float(times[i]))
            if not full:
                score[i] *= DISCOUNT
            if flag:
                flags[i] = flag
                ep = self.episode
                assert ep is not None
                marks.append((i, ep.start, ep.peak, ep.severity))
        self._seen = pos0 + surprise.size
        return score, flags, marks

    def push(self, surprise: float, t: float) -> tuple[float, int, tuple | None]:
        """step() for one reading: (stored score, flag, mark or None)."""
        score = unit_score_one(surprise, self.scale)
        pos = self._seen
        if pos == 0:
            self._first = t
        self._seen = pos + 1
        if not surprise >= self.low:
            return score, NONE, None
        flag, full = self._visit(pos, surprise, score, t)
        if not full:
            score *= DISCOUNT
        if flag:
            ep = self.episode
            assert ep is not None
            return score, flag, (0, ep.start, ep.peak, ep.severity)
        return score, NONE, None

    @property
    def open(self) -> bool:
        return self.episode is not None and self._seen - self._last <= self.quiet


RULE_GAP_SECONDS = 3600.0  # a rule that has not fired for an hour of data time starts a new episode


class RuleEpisodes:
    """Episodes of a rule: runs of readings at or over its threshold (score >= 1) with gaps of at
    most `quiet` readings and RULE_GAP_SECONDS of data time (an hour, as alerts and the UI group).
    Every such reading is an anomaly (a rule is a limit the user set); they share the episode's
    id, start and peak."""

    __slots__ = ("quiet", "_seen", "_last", "_last_t", "episode")

    def __init__(self, quiet: int = 12) -> None:
        self.quiet = int(quiet)
        self._seen = 0
        self._last = -(1 << 62)
        self._last_t = -math.inf
        self.episode: EpisodeState | None = None

    def visit(self, i: int, score: float, t: float, severity: str) -> EpisodeState:
        """The episode of firing reading i of the current call (in order), `score` on the unit scale."""
        pos = self._seen + i
        if self.episode is None or pos - self._last > self.quiet or t - self._last_t > RULE_GAP_SECONDS:
            self.episode = EpisodeState(t, score, severity)
        elif score > self.episode.peak:
            self.episode.peak = score
        self._last, self._last_t = pos, t
        return self.episode

    def advance(self, n: int) -> None:
        self._seen += n


def rule_unit_score(score: float) -> float:
    """A rule's score (1.0 = its threshold) on the unit scale: 0.5 at the threshold, 0.8 at twice it."""
    if math.isnan(score):
        return score
    s2 = score * score
    s = s2 / (1.0 + s2)
    return s if s <= TOP else TOP
