"""The consumer side: decode + validate, score with the detector bank, store.

The engine works on batches. Live sources hand it one message at a time,
replay and backlog catch-up hand it thousands; both go through the same
code, and the detectors give the same results either way.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from typing import Any

import numpy as np
import orjson

from detectors.bank import DetectorBank, RuleConfigError, effective_labels
from detectors.base import Anomaly
from detectors.ensemble import EnsembleParams
from mass_tui.alerts.manager import AlertEvent
from mass_tui.alerts.service import AlertService
from mass_tui.config import Config, ConfigError
from mass_tui.sinks import Sink, SinkSet
from mass_tui.sinks.jsonl import JsonlSink
from mass_tui.store import ALERTS, REJECTED, STREAM, JsonlStore, last_records, read_recent
from sources.batch import ObservationBatch, decode_batch
from sources.labels import station_labels
from sources.schema import InvalidMessage, Observation, Rejection, iso_utc, parse_time, validate
from sources.variables import REGISTRY

log = logging.getLogger(__name__)

# Messages per station remembered for dropping duplicates (a re-poll, a batch re-read after a crash:
# the latest ones). About 110 bytes each: 2,000 stations keep 0.4 GiB at 2,048, 4.4 GiB at 20,000.
_SEEN_PER_STATION = 2_048


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
        stuck_factor=d["stuck_factor"],
        alarm_rarity=d["alarm_rarity"],
        episode_quiet=d["episode_quiet_points"],
    )


def build_bank(config: Config) -> DetectorBank:
    d = config.get("detectors")
    try:
        return DetectorBank(
            ensemble_params(config),
            config.get("rules"),
            units={name: var.unit for name, var in REGISTRY.items()},
            max_series=d["max_series"],
            idle_seconds=d["idle_hours"] * 3600.0,
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
    duplicates: int = 0


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


ScoredBatch = BatchResult


class Engine:
    """Decode, validate, score, then hand each scored batch to every sink.

    Stages run in one direction: decoding and validation, duplicate removal,
    the detector bank, the alert manager (which adds its notices to the
    batch), then the sinks (`self.sinks`: the JSONL store first when a store
    is given, then whatever was added: the UI's live state, a database).
    """

    def __init__(self, config: Config, store: JsonlStore | None = None, alerts: AlertService | None = None,
                 sinks: Sequence[Sink] = ()) -> None:
        self.config = config
        self.bank = build_bank(config)
        self.store = store
        self.alerts = alerts
        self.sinks = SinkSet([JsonlSink(store)] if store is not None else [])
        for sink in sinks:
            self.sinks.add(sink)
        self.counters = Counters()
        self._warming = False
        # station -> labels (sources.labels): what rule matchers, silences and grouping select on.
        self.labels: dict[str, dict[str, str]] = {}
        self._configured_kind = {str(s.get("name")): str(s["kind"]) for s in config.get("stations")
                                 if isinstance(s, dict) and s.get("kind")}
        self._threshold_request: dict[str, float] | None = None
        # (ts, source) of each station's recent observations: a message seen
        # before (a re-poll, a re-read after a crash) is counted, not stored twice.
        self._seen: dict[str, dict[int, None]] = {}

    def warm(self, hours: float | None = None) -> int:
        """Feed the last `hours` of the stored stream to the detectors (not stored again, no alerts),
        and reopen the alert episodes of that span, so a restart does not go blind."""
        hours = self.config.get("store.warm_hours") if hours is None else hours
        if self.store is None or hours <= 0:
            return 0
        newest = _newest_ts(self.store)
        if newest is None:
            return 0
        since = newest - hours * 3600.0
        stats: dict[str, int] = {}
        observations = []
        for record in read_recent(self.store, STREAM, since, stats):
            record.pop("anomaly_score", None)
            try:
                observations.append(validate(record))
            except (InvalidMessage, ValueError, OverflowError):
                stats["invalid"] = stats.get("invalid", 0) + 1
        self._warming = True
        try:
            self.process(observations)
        finally:
            self._warming = False
        if self.alerts is not None:
            self.alerts.manager.restore(read_recent(self.store, ALERTS, since))
        if stats:
            log.warning("warm start skipped stored lines: %s", stats)
        log.info("warm start: %d observations since %s", len(observations), iso_utc(since))
        return len(observations)

    # --- input -----------------------------------------------------------
    def ingest(
        self,
        raws: Sequence[bytes],
        *,
        default_station: str | None = None,
        default_source: str = "unknown",
    ) -> BatchResult:
        """Decode, validate, score and store a batch of wire messages."""
        batch, bad = decode_batch(
            raws, default_station=default_station, default_source=default_source,
            ignored=self.counters.ignored_fields,
        )
        self.quarantine(bad)
        return self.process_batch(batch, rejected=len(bad))

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
    def process(self, observations: Sequence[Observation], rejected: int = 0) -> BatchResult:
        return self.process_batch(ObservationBatch.from_observations(observations), rejected)

    def request_thresholds(self, **thresholds: float) -> None:
        """Ask for new z / h from another thread (the UI); applied before the next batch, state kept."""
        self._threshold_request = thresholds

    def process_batch(self, batch: ObservationBatch, rejected: int = 0) -> BatchResult:
        """Score and store valid observations, in order; each station's rows in time order."""
        started = time.perf_counter()
        request, self._threshold_request = self._threshold_request, None
        if request:
            self.bank.set_thresholds(**request)
        batch = self._drop_duplicates(batch)
        n = len(batch)
        if n == 0:
            if self.store is not None:
                self.store.flush()  # the rejections of an all-bad batch
            return BatchResult(batch, [], rejected)
        traces: list[SeriesTrace] | None = [] if self.sinks.wants_series and not self._warming else None
        by_station: dict[str, list[int]] = {}
        for i, station in enumerate(batch.station):
            rows = by_station.get(station)
            if rows is None:
                by_station[station] = [i]
            else:
                rows.append(i)
        self._update_labels(batch, by_station)
        batch, by_station, refused = self._admit(batch, by_station)
        rejected += refused
        n = len(batch)
        if n == 0:
            if self.store is not None:
                self.store.flush()
            return BatchResult(batch, [], rejected)
        scores = {name: np.full(n, np.nan) for name in batch.columns if REGISTRY[name].scored}
        anomalies: list[Anomaly] = []
        for station, rows in by_station.items():
            if len(rows) == 1:
                anomalies.extend(self._score_row(station, rows[0], batch, scores, traces))
            else:
                anomalies.extend(self._score_rows(station, rows, batch, scores, traces))
        anomalies.sort(key=lambda a: a.ts)
        if self._warming:
            return BatchResult(batch, anomalies, rejected)

        c = self.counters
        c.observations += n
        c.anomalies += len(anomalies)
        c.stations.update(by_station)
        c.variables.update(batch.columns)
        lo, hi = float(batch.ts.min()), float(batch.ts.max())
        c.first_ts = lo if c.first_ts is None else min(c.first_ts, lo)
        c.last_ts = hi if c.last_ts is None else max(c.last_ts, hi)

        events: list[AlertEvent] = []
        if self.alerts is not None:
            clocks = {station: float(batch.ts[rows].max()) for station, rows in by_station.items()}
            events = self.alerts.observe(anomalies, clocks)
        result = BatchResult(batch, anomalies, rejected, events, scores=scores, series=traces,
                             totals={"rejected": c.rejected, "alerts": self.alerts.sent_events if self.alerts else 0},
                             started=started)
        self.sinks.write(result)
        result.seconds = time.perf_counter() - started
        return result

    def sync(self) -> None:
        """Make every durable sink's data safe; the transport position may be committed after this."""
        self.sinks.sync()

    def _update_labels(self, batch: ObservationBatch, by_station: dict[str, list[int]]) -> None:
        """Each station's labels from its latest row in the batch (its source and tags)."""
        for station, rows in by_station.items():
            last = rows[-1]
            extra = batch.extras.get(last)
            tags = extra[2] if extra is not None else None
            known = self.labels.get(station)
            if known is not None and known.get("source") == batch.source[last] and not tags:
                continue
            self.labels[station] = station_labels(station, batch.source[last], tags,
                                                  self._configured_kind.get(station))

    def _admit(self, batch: ObservationBatch, by_station: dict[str, list[int]]
               ) -> tuple[ObservationBatch, dict[str, list[int]], int]:
        """Quarantine the rows of new stations the detector bank has no room for (detectors.max_series)."""
        if not self.bank.max_series:
            return batch, by_station, 0
        scored = [name for name in batch.columns if REGISTRY[name].scored]
        refused: list[int] = []
        reasons: list[Rejection] = []
        pending = 0  # series of new stations admitted earlier in this batch, not yet allocated
        newest = float(batch.ts.max())
        for station, rows in by_station.items():
            idx = np.array(rows)
            new = sum(1 for name in scored if (station, name) not in self.bank.series
                      and not np.isnan(batch.columns[name][idx]).all())
            why = self.bank.room_for(station, new, newest, pending)
            if why is None:
                if station not in self.bank.stations:
                    pending += new
            else:
                refused.extend(rows)
                reasons.extend(Rejection(why, orjson.dumps(batch.observation(i).to_wire())) for i in rows)
                # nothing of a refused station stays behind: a flood of new names costs no memory
                self._seen.pop(station, None)
                self.labels.pop(station, None)
        for station in self.bank.drain_evicted():
            self._seen.pop(station, None)
        if not refused:
            return batch, by_station, 0
        if not self._warming:
            self.quarantine(reasons)
        keep = np.setdiff1d(np.arange(len(batch)), np.array(refused))
        batch = batch.select(keep)
        groups: dict[str, list[int]] = {}
        for i, station in enumerate(batch.station):
            groups.setdefault(station, []).append(i)
        return batch, groups, 0 if self._warming else len(refused)

    def _drop_duplicates(self, batch: ObservationBatch) -> ObservationBatch:
        """Drop messages identical in station, time, source and values to one already processed."""
        seen_by_station = self._seen
        ts = batch.ts.tolist()
        # One number per row that changes with any value; a variable the row lacks adds
        # nothing, so the number does not depend on what else is in the batch.
        fingerprint = np.zeros(len(batch))
        for name, col in batch.columns.items():
            fingerprint += np.where(np.isnan(col), 0.0, col) * _weight(name)
        prints = fingerprint.tolist()
        dup = []
        # A hash per message, not the tuple: the per-station memory this costs is most of a station's.
        keys = [hash(key) for key in zip(ts, batch.source, prints, strict=True)]
        for i, (station, key) in enumerate(zip(batch.station, keys, strict=True)):
            seen = seen_by_station.get(station)
            if seen is None:
                seen = seen_by_station[station] = {}
            if key in seen:
                dup.append(i)
            else:
                seen[key] = None
        for station in set(batch.station):  # only the stations this batch added to
            seen = seen_by_station[station]
            excess = len(seen) - _SEEN_PER_STATION
            if excess > 0:  # dicts keep insertion order: the oldest go
                for old in list(islice(seen, excess)):
                    del seen[old]
        if not dup:
            return batch
        if not self._warming:
            self.counters.duplicates += len(dup)
        keep = np.setdiff1d(np.arange(len(batch)), np.array(dup))
        return batch.select(keep)

    def _score_rows(
        self, station: str, rows: list[int], batch: ObservationBatch, scores: dict[str, np.ndarray],
        traces: list[SeriesTrace] | None,
    ) -> list[Anomaly]:
        whole = len(rows) == len(batch)
        idx = None if whole else np.array(rows)
        times = batch.ts if idx is None else batch.ts[idx]
        columns = batch.columns if idx is None else {k: c[idx] for k, c in batch.columns.items()}
        found: list[Anomaly] = []
        labels = effective_labels(self.labels.get(station, {}), columns)
        for name, col in columns.items():
            if name not in scores:
                continue
            present = ~np.isnan(col)
            if not present.any():
                continue
            everything = bool(present.all())
            t_in, v_in = (times, col) if everything else (times[present], col[present])
            result = self.bank.step_series(station, name, t_in, v_in, labels)
            found.extend(result.anomalies)
            if traces is not None:
                rules = [v for k, v in result.scores.items() if k != "ensemble"]
                traces.append(SeriesTrace(station, name, t_in, v_in, result.anomaly_score, result.detail,
                                          np.max(rules, axis=0) if rules else None))
            where = present if idx is None else idx[present]
            scores[name][where] = result.anomaly_score
        found.extend(self.bank.step_composites(station, times, columns, labels))
        self._relation_scores(scores, idx, None)
        return found

    def _score_row(
        self, station: str, row: int, batch: ObservationBatch, scores: dict[str, np.ndarray],
        traces: list[SeriesTrace] | None,
    ) -> list[Anomaly]:
        """A station with one message in the batch (the live case): plain floats, no numpy."""
        found: list[Anomaly] = []
        ts = float(batch.ts[row])
        values = {}
        for name, col in batch.columns.items():
            value = float(col[row])
            if value == value:
                values[name] = value
        labels = effective_labels(self.labels.get(station, {}), values)
        for name, value in values.items():
            if name not in scores:
                continue
            result = self.bank.step_value(station, name, ts, value, labels)
            found.extend(result.anomalies)
            if traces is not None:
                detail = self.bank.get(station, name).ensemble.detail
                rules = [v for k, v in result.scores.items() if k != "ensemble"]
                traces.append(SeriesTrace(station, name, np.array([ts]), np.array([value]),
                                          np.array([result.anomaly_score]), detail,
                                          np.array([max(rules)]) if rules else None))
            scores[name][row] = result.anomaly_score
        found.extend(self.bank.step_composites_one(station, ts, values, labels))
        self._relation_scores(scores, None, row)
        return found

    def _relation_scores(self, scores: dict[str, np.ndarray], idx: np.ndarray | None, row: int | None) -> None:
        """The relation view's score counts for the variable it blames (the higher score stays)."""
        rel = self.bank.relation_scores
        if rel is None:
            return
        values, names = rel
        for k, name in enumerate(names):
            col = scores.get(name)
            v = values[k]
            if col is None or v != v:
                continue
            at = row if row is not None else (k if idx is None else int(idx[k]))
            if not col[at] >= v:
                col[at] = v

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
        if c.duplicates:
            out["duplicates"] = c.duplicates
        if c.ignored_fields:
            out["ignored_fields"] = dict(sorted(c.ignored_fields.items()))
        out.update(extra)
        return out


@lru_cache(maxsize=256)
def _weight(name: str) -> float:
    """A weight per variable that is the same in every process (str hashes are not)."""
    return 1.6180339887 + zlib.crc32(name.encode()) / 2**32


def _newest_ts(store: JsonlStore) -> float | None:
    """The time of the last complete record of the stored stream (only the files' tails are read)."""
    for path in reversed(store.files(STREAM)):
        for record in last_records(path):
            try:
                return parse_time(record.get("ts"))
            except ValueError:
                continue
    return None
