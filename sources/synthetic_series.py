"""Seeded sensor-like series with injected, labelled anomalies.

Used to tune and score the detectors (bench/quality.py) and in tests: a
daily cycle, slow weather-like wander and autocorrelated noise, with spikes,
level shifts, drifts and variance bursts at known positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("spike", "shift", "drift", "burst")


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    start: int  # first index of the event
    end: int  # last index that counts as detecting it

    def to_record(self) -> dict[str, object]:
        return {"kind": self.kind, "start": self.start, "end": self.end}


def make_series(
    seed: int,
    n: int = 24 * 90,
    step_seconds: float = 3600.0,
    n_events: int = 8,
    kinds: tuple[str, ...] = KINDS,
) -> tuple[np.ndarray, np.ndarray, list[Event]]:
    """(times, values, events) for one synthetic series."""
    rng = np.random.default_rng(seed)
    per_day = 86400.0 / step_seconds
    t = 1.7e9 + np.arange(n) * step_seconds
    noise_sd = rng.uniform(0.2, 1.0)
    ar = rng.uniform(0.0, 0.7)
    noise = np.empty(n)
    noise[0] = rng.normal(0, noise_sd)
    shocks = rng.normal(0, noise_sd * np.sqrt(1 - ar * ar), n)
    for i in range(1, n):
        noise[i] = ar * noise[i - 1] + shocks[i]
    daily = rng.uniform(0.0, 6.0) * noise_sd * np.sin(2 * np.pi * np.arange(n) / per_day + rng.uniform(0, 6.3))
    wander = np.cumsum(rng.normal(0, noise_sd * 0.05, n))
    x = rng.uniform(-10, 30) + daily + wander + noise

    events: list[Event] = []
    slots = np.linspace(int(per_day * 7), n - int(per_day * 2), n_events).astype(int)
    for slot in slots:
        kind = kinds[int(rng.integers(len(kinds)))]
        start = int(slot + rng.integers(-int(per_day), int(per_day)))
        sign = rng.choice((-1.0, 1.0))
        if kind == "spike":
            x[start] += sign * rng.uniform(5, 9) * noise_sd
            events.append(Event(kind, start, start + 1))
        elif kind == "shift":
            x[start:] += sign * rng.uniform(4, 7) * noise_sd
            events.append(Event(kind, start, start + int(per_day / 4)))
        elif kind == "drift":
            length = int(per_day * rng.uniform(0.5, 1.5))
            ramp = np.linspace(0, sign * rng.uniform(6, 10) * noise_sd, length)
            x[start : start + length] += ramp
            x[start + length :] += ramp[-1]
            events.append(Event(kind, start, start + length))
        else:  # burst
            length = int(per_day * rng.uniform(0.25, 0.5))
            x[start : start + length] += rng.normal(0, noise_sd * rng.uniform(4, 6), length)
            events.append(Event(kind, start, start + length))
    return t, x, events


def episodes(alarm: np.ndarray, merge_gap: int = 3) -> list[tuple[int, int]]:
    """Runs of alarms as (first, last) index, merging runs closer than merge_gap."""
    idx = np.flatnonzero(alarm)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > merge_gap)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]]))
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def event_scores(
    alarm: np.ndarray, windows: list[tuple[int, int]], merge_gap: int = 3
) -> tuple[int, int, int, int]:
    """(events detected, events, alarm episodes inside a window, alarm episodes).

    An event is detected by any alarm inside its window; an episode counts
    as true when it overlaps a window. Recall = detected/events, precision =
    true episodes/episodes.
    """
    detected = sum(bool(alarm[a : b + 1].any()) for a, b in windows)
    eps = episodes(alarm, merge_gap)
    true = sum(any(s <= b and e >= a for a, b in windows) for s, e in eps)
    return detected, len(windows), true, len(eps)


# --- a varied corpus in the NAB layout (one labelled anomaly point per event, NAB windows) ----------------------

CORPUS_BASES = ("smooth", "spiky", "counts", "weekly", "square", "walk", "quantized")
CORPUS_ANOMALIES = ("spike", "shift", "drift", "burst", "flatline", "pattern", "dropout", "spikes")


@dataclass(frozen=True, slots=True)
class CorpusSeries:
    name: str
    t: np.ndarray
    x: np.ndarray
    anomalies: list[int]  # row of each labelled anomaly's start
    kinds: list[str]


def _base(kind: str, rng: np.random.Generator, n: int, per_day: float) -> tuple[np.ndarray, float]:
    """(values, noise scale) of an ordinary series of this kind."""
    i = np.arange(n)
    phase = rng.uniform(0, 2 * np.pi)
    day = np.sin(2 * np.pi * i / per_day + phase)
    if kind == "smooth":
        sd = rng.uniform(0.2, 2.0)
        ar = rng.uniform(0.0, 0.8)
        e = rng.normal(0, sd * np.sqrt(1 - ar * ar), n)
        noise = np.empty(n)
        noise[0] = e[0]
        for k in range(1, n):
            noise[k] = ar * noise[k - 1] + e[k]
        x = rng.uniform(-20, 80) + rng.uniform(0, 6) * sd * day + np.cumsum(rng.normal(0, sd * 0.03, n)) + noise
        return x, sd
    if kind == "spiky":  # a busy machine metric: heavy tails, spikes as part of normal life
        level = rng.uniform(5, 60)
        sd = level * rng.uniform(0.02, 0.1)
        x = level + sd * rng.standard_t(3, n) + rng.uniform(0, 3) * sd * day
        burst = rng.random(n) < rng.uniform(0.002, 0.02)
        x[burst] += np.abs(rng.normal(0, sd * rng.uniform(3, 8), burst.sum()))
        return np.round(np.maximum(x, 0.0), 3), sd
    if kind == "counts":  # events per interval: mostly small, often 0
        lam = rng.uniform(0.3, 15) * (1.0 + 0.9 * day)
        return rng.poisson(lam).astype(float), float(np.sqrt(lam.mean()) + 0.5)
    if kind == "weekly":  # a daily and weekly rhythm (traffic, a building)
        sd = rng.uniform(0.5, 3.0)
        week = np.where(((i / per_day) % 7) < 5, 1.0, rng.uniform(0.2, 0.6))
        x = rng.uniform(10, 50) + 8 * sd * np.clip(day, 0, None) * week + rng.normal(0, sd, n)
        return x, sd
    if kind == "square":  # a process that switches between two levels on schedule
        sd = rng.uniform(0.5, 2.0)
        on = ((i % per_day) / per_day) < rng.uniform(0.3, 0.6)
        return rng.uniform(0, 40) + rng.uniform(5, 15) * sd * on + rng.normal(0, sd, n), sd
    if kind == "walk":  # a random walk with noise (a price, a speed)
        sd = rng.uniform(0.2, 1.0)
        return rng.uniform(20, 100) + np.cumsum(rng.normal(0, sd * 0.3, n)) + rng.normal(0, sd, n), sd
    # quantized: a slow signal read by a coarse sensor
    step = rng.choice([0.1, 0.5, 1.0])
    sd = step * rng.uniform(0.3, 2.0)
    x = rng.uniform(10, 30) + 3 * sd * day + np.cumsum(rng.normal(0, sd * 0.05, n)) + rng.normal(0, sd, n)
    return np.round(x / step) * step, max(sd, step)


def _inject(kind: str, x: np.ndarray, at: int, sd: float, rng: np.random.Generator, per_day: float) -> None:
    n = x.size
    sign = rng.choice((-1.0, 1.0))
    if kind == "spike":
        x[at] += sign * rng.uniform(6, 12) * sd
    elif kind == "shift":
        x[at:] += sign * rng.uniform(4, 8) * sd
    elif kind == "drift":
        length = min(n - at, int(per_day * rng.uniform(0.5, 2.0)))
        ramp = np.linspace(0, sign * rng.uniform(6, 12) * sd, length)
        x[at : at + length] += ramp
        x[at + length :] += ramp[-1]
    elif kind == "burst":
        length = min(n - at, int(per_day * rng.uniform(0.2, 0.6)) + 3)
        x[at : at + length] += rng.normal(0, sd * rng.uniform(4, 7), length)
    elif kind == "flatline":
        length = min(n - at, int(per_day * rng.uniform(0.3, 1.0)) + 5)
        x[at : at + length] = x[at]
    elif kind == "pattern":  # the usual rhythm stops: the series sits at its mean for a while
        length = min(n - at, int(per_day * rng.uniform(0.5, 1.5)) + 5)
        x[at : at + length] = np.mean(x[max(0, at - int(per_day)) : at]) + rng.normal(0, sd * 0.3, length)
    elif kind == "dropout":
        length = min(n - at, int(per_day * rng.uniform(0.05, 0.3)) + 2)
        x[at : at + length] = 0.0
    else:  # spikes: spike density rises for a while
        length = min(n - at, int(per_day * rng.uniform(0.5, 1.5)) + 5)
        hit = at + np.flatnonzero(rng.random(length) < 0.15)
        x[hit] += sign * rng.uniform(4, 8, hit.size) * sd


def make_corpus_series(seed: int, base: str | None = None, n: int | None = None) -> CorpusSeries:
    """One labelled series of the design corpus: a base kind, 0 to 3 anomalies after the first 20 %."""
    rng = np.random.default_rng(seed)
    base = base or CORPUS_BASES[int(rng.integers(len(CORPUS_BASES)))]
    step = float(rng.choice([300.0, 600.0, 3600.0]))
    per_day = 86400.0 / step
    n = n or int(rng.integers(3000, 9000))
    t = 1.6e9 + np.arange(n) * step
    x, sd = _base(base, rng, n, per_day)
    count = int(rng.choice([0, 1, 1, 2, 2, 3]))
    anomalies: list[int] = []
    kinds: list[str] = []
    if count:
        slots = np.linspace(int(0.2 * n), int(0.95 * n), count + 1).astype(int)
        for a, b in zip(slots[:-1], slots[1:], strict=True):
            at = int(rng.integers(a, max(a + 1, b - int(per_day))))
            kind = CORPUS_ANOMALIES[int(rng.integers(len(CORPUS_ANOMALIES)))]
            if base == "counts" and kind in ("flatline", "dropout"):
                kind = "spikes"
            _inject(kind, x, at, sd, rng, per_day)
            anomalies.append(at)
            kinds.append(kind)
    if base in ("counts", "spiky"):
        x = np.maximum(x, 0.0)
    return CorpusSeries(f"{base}-{seed}", t, x, anomalies, kinds)
