"""What a scored batch is (`BatchResult`): what every sink receives from the engine.

Its own small module so a process that only stores batches (the store's writer process,
`mass_tui.sinks.offload`) unpickles them without importing the engine, its detectors, alerts
and decoders: that took ~0.1 s of a core at each bulk replay's start, beside the engine's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from detectors.base import Anomaly
    from mass_tui.alerts.manager import AlertEvent
    from sources.batch import ObservationBatch


@dataclass
class SeriesTrace:
    """One (station, variable)'s part of a scored batch, with the detector detail the charts draw."""

    station: str
    variable: str
    times: np.ndarray
    values: np.ndarray
    score: np.ndarray  # anomaly_score per value, in [0, 1)
    detail: dict[str, Any]  # the ensemble's per-value views (Ensemble.detail)
    rules: np.ndarray | None  # the highest rule score per value (1.0 = fired), None without rules


@dataclass
class BatchResult:
    """A scored batch: what every sink receives, in one direction (decode, score, alert, sinks)."""

    batch: ObservationBatch
    anomalies: list[Anomaly]
    rejected: int
    alerts: list[AlertEvent] = field(default_factory=list)
    seconds: float = 0.0  # to score and store it
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # variable -> anomaly_score per row (NaN: absent)
    series: list[SeriesTrace] = field(default_factory=list)  # only when a sink wants_series
    totals: dict[str, int] = field(default_factory=dict)  # running counters a status line shows
    started: float = 0.0  # time.perf_counter() when scoring began
    muted: dict[int, str] = field(default_factory=dict)  # anomaly index -> why alerts of it are muted (a silence...)
    fields_rejected: int = 0  # single fields quarantined in this batch (rejected counts whole messages)
    reasons: dict[str, int] = field(default_factory=dict)  # "message:code" / "field:code" -> count, this batch
    late: int = 0
    conflicts: int = 0
    out_of_order: int = 0
    duplicates: int = 0  # readings dropped whole: already stored with the same values


ScoredBatch = BatchResult
