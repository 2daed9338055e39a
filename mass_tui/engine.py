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
        anomalies: list[Anomaly] = []

        by_station: dict[str, list[int]] = defaultdict(list)
        for i, obs in enumerate(observations):
            by_station[obs.station].append(i)
        for station, rows in by_station.items():
            anomalies.extend(self._score_station(station, rows, observations, anomaly_scores))
        anomalies.sort(key=lambda a: a.ts)

        c = self.counters
        c.observations += n
        c.anomalies += len(anomalies)
        c.stations.update(by_station)
        ts = [o.ts for o in observations]
        c.first_ts = min(ts) if c.first_ts is None else min(c.first_ts, min(ts))
        c.last_ts = max(ts) if c.last_ts is None else max(c.last_ts, max(ts))

        if self.store is not None:
            self.store.append_lines(STREAM, self._stream_lines(observations, anomaly_scores))
            self.store.append(ANOMALIES, (a.to_record() for a in anomalies))
            self.store.flush()
        return BatchResult(observations, anomalies, rejected)

    @staticmethod
    def _stream_lines(observations: list[Observation], anomaly_scores: list[dict[str, float]]) -> list[bytes]:
        """The stored form: the flat observation plus anomaly_score per variable."""
        iso: dict[float, str] = {}
        dumps = orjson.dumps
        lines = []
        for obs, scores in zip(observations, anomaly_scores, strict=True):
            stamp = iso.get(obs.ts)
            if stamp is None:
                stamp = iso[obs.ts] = iso_utc(obs.ts)
            record: dict[str, Any] = {"ts": stamp, "station": obs.station, "source": obs.source}
            if obs.lat is not None:
                record["lat"], record["lon"] = obs.lat, obs.lon
            if obs.tags:
                record["tags"] = obs.tags
            record.update(obs.values)
            record["anomaly_score"] = scores
            lines.append(dumps(record))
        return lines

    def _score_station(
        self,
        station: str,
        rows: list[int],
        observations: list[Observation],
        anomaly_scores: list[dict[str, float]],
    ) -> list[Anomaly]:
        if len(rows) == 1:
            return self._score_one(station, rows[0], observations[rows[0]], anomaly_scores)
        mine = [observations[i] for i in rows]
        count = len(mine)
        times = np.fromiter((o.ts for o in mine), dtype=np.float64, count=count)
        names: dict[str, None] = {}
        for o in mine:
            names.update(dict.fromkeys(o.values))
        nan = float("nan")
        columns = {
            name: np.fromiter((o.values.get(name, nan) for o in mine), dtype=np.float64, count=count)
            for name in names
        }
        self.counters.variables.update(columns)
        found: list[Anomaly] = []
        for name, col in columns.items():
            if not REGISTRY[name].scored:
                continue
            present = np.flatnonzero(~np.isnan(col))
            result = self.bank.step_series(station, name, times[present], col[present])
            found.extend(result.anomalies)
            rounded = (np.rint(result.anomaly_score * 10000.0) / 10000.0).tolist()
            for j, score in zip(present.tolist(), rounded, strict=True):
                anomaly_scores[rows[j]][name] = score
        found.extend(self.bank.step_composites(station, times, columns))
        return found

    def _score_one(
        self, station: str, row: int, obs: Observation, anomaly_scores: list[dict[str, float]]
    ) -> list[Anomaly]:
        """_score_station for a station with one message in the batch (the live case)."""
        found: list[Anomaly] = []
        scores = anomaly_scores[row]
        self.counters.variables.update(obs.values)
        for name, value in obs.values.items():
            if not REGISTRY[name].scored:
                continue
            result = self.bank.step_value(station, name, obs.ts, value)
            found.extend(result.anomalies)
            s = result.anomaly_score
            scores[name] = s if s != s else round(s * 10000.0) / 10000.0
        found.extend(self.bank.step_composites_one(station, obs.ts, obs.values))
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
