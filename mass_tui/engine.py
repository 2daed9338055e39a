"""The consumer side: decode + validate, score with the detector bank, store.

The engine works on batches. Live sources hand it one message at a time,
replay and backlog catch-up hand it thousands; both go through the same
code, and the detectors give the same results either way.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from detectors.bank import DetectorBank, RuleConfigError
from detectors.base import Anomaly
from detectors.ensemble import EnsembleParams
from mass_tui.config import Config, ConfigError
from mass_tui.store import ANOMALIES, REJECTED, STREAM, JsonlStore
from sources.schema import InvalidMessage, Observation, Rejection, decode, iso_utc, validate
from sources.variables import REGISTRY


def ensemble_params(config: Config) -> EnsembleParams:
    d = config.get("detectors")
    return EnsembleParams(
        window=d["window_points"],
        level_window=d["level_window_points"],
        z=d["z"],
        lam=d["ewma_lambda"],
        L=d["ewma_L"],
        k=d["cusum_k"],
        h=d["cusum_h"],
        forecast_lam=d["forecast_lambda"],
        burst_ratio=d["burst_ratio"],
    )


def build_bank(config: Config) -> DetectorBank:
    try:
        return DetectorBank(
            ensemble_params(config),
            config.get("rules"),
            units={name: var.unit for name, var in REGISTRY.items()},
        )
    except RuleConfigError as exc:
        raise ConfigError(str(exc)) from None
    except ValueError as exc:  # a detector rejected a parameter
        raise ConfigError(f"detectors: {exc}") from None


@dataclass
class Counters:
    observations: int = 0
    rejected: int = 0
    anomalies: int = 0
    ignored_fields: dict[str, int] = field(default_factory=dict)
    stations: set[str] = field(default_factory=set)
    variables: set[str] = field(default_factory=set)
    first_ts: float | None = None
    last_ts: float | None = None


@dataclass
class BatchResult:
    observations: list[Observation]
    anomalies: list[Anomaly]
    rejected: int


class Engine:
    def __init__(self, config: Config, store: JsonlStore | None = None) -> None:
        self.config = config
        self.bank = build_bank(config)
        self.store = store
        self.counters = Counters()

    # --- input -----------------------------------------------------------
    def ingest(
        self,
        raws: Sequence[bytes],
        *,
        default_station: str | None = None,
        default_source: str = "unknown",
    ) -> BatchResult:
        """Decode, validate, score and store a batch of wire messages."""
        good: list[Observation] = []
        bad: list[Rejection] = []
        ignored = self.counters.ignored_fields
        for raw in raws:
            item = decode(raw, default_station=default_station, default_source=default_source, ignored=ignored)
            (good if isinstance(item, Observation) else bad).append(item)  # type: ignore[arg-type]
        self.quarantine(bad)
        return self.process(good, rejected=len(bad))

    def ingest_objects(
        self, items: Iterable[tuple[dict[str, Any], bytes]], *, default_station: str | None = None,
        default_source: str = "unknown",
    ) -> BatchResult:
        """Like `ingest` for messages already parsed (CSV rows): (object, raw line) pairs."""
        good: list[Observation] = []
        bad: list[Rejection] = []
        for obj, raw in items:
            try:
                good.append(
                    validate(obj, default_station=default_station, default_source=default_source,
                             ignored=self.counters.ignored_fields)
                )
            except (InvalidMessage, ValueError, OverflowError) as exc:
                bad.append(Rejection(str(exc), raw))
        self.quarantine(bad)
        return self.process(good, rejected=len(bad))

    def quarantine(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        self.counters.rejected += len(rejections)
        if self.store is not None:
            now = time.time()
            self.store.append(REJECTED, (r.to_record(now) for r in rejections))

    # --- scoring ---------------------------------------------------------
    def process(self, observations: list[Observation], rejected: int = 0) -> BatchResult:
        if not observations:
            if self.store is not None:
                self.store.flush()
            return BatchResult([], [], rejected)
        n = len(observations)
        anomaly_scores: list[dict[str, float]] = [{} for _ in range(n)]
        detail: list[dict[str, dict[str, float]]] = [{} for _ in range(n)]
        anomalies: list[Anomaly] = []

        by_station: dict[str, list[int]] = defaultdict(list)
        for i, obs in enumerate(observations):
            by_station[obs.station].append(i)
        for station, rows in by_station.items():
            anomalies.extend(self._score_station(station, rows, observations, anomaly_scores, detail))
        anomalies.sort(key=lambda a: a.ts)

        c = self.counters
        c.observations += n
        c.anomalies += len(anomalies)
        c.stations.update(by_station)
        ts = [o.ts for o in observations]
        c.first_ts = min(ts) if c.first_ts is None else min(c.first_ts, min(ts))
        c.last_ts = max(ts) if c.last_ts is None else max(c.last_ts, max(ts))

        if self.store is not None:
            self.store.append_lines(STREAM, [
                orjson.dumps({**obs.to_wire(), "anomaly_score": anomaly_scores[i], "scores": detail[i]})
                for i, obs in enumerate(observations)
            ])
            self.store.append(ANOMALIES, (a.to_record() for a in anomalies))
            self.store.flush()
        return BatchResult(observations, anomalies, rejected)

    def _score_station(
        self,
        station: str,
        rows: list[int],
        observations: list[Observation],
        anomaly_scores: list[dict[str, float]],
        detail: list[dict[str, dict[str, float]]],
    ) -> list[Anomaly]:
        times = np.fromiter((observations[i].ts for i in rows), dtype=np.float64, count=len(rows))
        columns: dict[str, np.ndarray] = {}
        for j, i in enumerate(rows):
            for name, value in observations[i].values.items():
                col = columns.get(name)
                if col is None:
                    col = columns[name] = np.full(len(rows), np.nan)
                col[j] = value
        self.counters.variables.update(columns)
        found: list[Anomaly] = []
        for name, col in columns.items():
            if not REGISTRY[name].scored:
                continue
            present = np.flatnonzero(~np.isnan(col))
            result = self.bank.step_series(station, name, times[present], col[present])
            found.extend(result.anomalies)
            score_list = np.round(result.anomaly_score, 4).tolist()
            per_detector = {k: np.round(v, 3).tolist() for k, v in result.scores.items()}
            for k, j in enumerate(present.tolist()):
                i = rows[j]
                anomaly_scores[i][name] = score_list[k]
                detail[i][name] = {det: vals[k] for det, vals in per_detector.items()}
        found.extend(self.bank.step_composites(station, times, columns))
        return found

    def summary(self, **extra: Any) -> dict[str, Any]:
        c = self.counters
        out: dict[str, Any] = {
            "observations": c.observations,
            "rejected": c.rejected,
            "anomalies": c.anomalies,
            "stations": len(c.stations),
            "variables": sorted(c.variables),
            "first_ts": iso_utc(c.first_ts) if c.first_ts is not None else None,
            "last_ts": iso_utc(c.last_ts) if c.last_ts is not None else None,
        }
        if c.ignored_fields:
            out["ignored_fields"] = dict(sorted(c.ignored_fields.items()))
        out.update(extra)
        return out
