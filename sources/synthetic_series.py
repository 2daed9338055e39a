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
