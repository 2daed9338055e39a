"""The consumer side: decode + validate, score with the detector bank, store.

The engine works on batches. Live sources hand it one message at a time,
replay and backlog catch-up hand it thousands; both go through the same
code, and the detectors give the same results either way.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from detectors.bank import DetectorBank, RuleConfigError, RuleSet, SeriesRequest, effective_labels
from detectors.base import Anomaly
from detectors.ensemble import EnsembleParams
from detectors.matchers import KINDS, kind_evidence
from mass_tui.alerts.manager import AlertEvent
from mass_tui.alerts.readings import Readings
from mass_tui.config import Config, ConfigError, input_policy
from mass_tui.lateness import OrderCheck, Ordered
from mass_tui.quarantine_ledger import QuarantineLedger
from mass_tui.scored import BatchResult, ScoredBatch, SeriesTrace  # noqa: F401 - their home was here
from mass_tui.sinks import Sink, SinkSet
from mass_tui.sinks.jsonl import JsonlSink
from mass_tui.store import REJECTED, STREAM, JsonlStore, newest_ts, read_recent
from sources.batch import ObservationBatch, rows_by_station
from sources.decode import Decoded, Decoder, IgnoredCounts, Table
from sources.labels import station_labels
from sources.schema import FieldRejection, Observation, Rejection, iso_utc
from sources.text import safe_text
from sources.variables import REGISTRY

if TYPE_CHECKING:  # the alert stack (email, HTTP clients) is imported only by a run with alerts on
    from mass_tui.alerts.service import AlertService

log = logging.getLogger(__name__)


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
        learning_hours=d["learning_hours"],
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


IGNORED_LISTED = 20  # ignored field names a summary lists (the most frequent)


def ignored_summary(ignored: dict[str, int], limit: int = IGNORED_LISTED) -> tuple[dict[str, int], dict[str, int]]:
    """The summary's view of ignored field counts (name -> fields ignored): the `limit` most frequent
    names (ties by name), listed by name, and for the rest {"names": how many, "fields": their fields},
    empty when none is left out. A writer inventing a key per message would otherwise make the
    summary line as long as the recording's key list (200,000 names: 12 MB)."""
    if len(ignored) <= limit:
        return dict(sorted(ignored.items())), {}
    top = heapq.nsmallest(limit, ignored.items(), key=lambda kv: (-kv[1], kv[0]))
    listed = dict(sorted(top))
    return listed, {"names": len(ignored) - len(listed), "fields": sum(ignored.values()) - sum(listed.values())}


@dataclass
class Counters:
    observations: int = 0
    rejected: int = 0
    anomalies: int = 0
    ignored_fields: IgnoredCounts = field(default_factory=IgnoredCounts)
    stations: set[str] = field(default_factory=set)
    variables: set[str] = field(default_factory=set)
    first_ts: float | None = None
    last_ts: float | None = None
    duplicates: int = 0
    fields_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # code -> messages
    fields_rejected_by_reason: dict[str, int] = field(default_factory=dict)  # code -> fields
    late: int = 0  # readings stored but not scored: older than their series' latest
    conflicts: int = 0  # values quarantined as conflicting duplicates
    out_of_order: int = 0  # readings that arrived after a newer one of their series (late or reordered)
    missing: int = 0  # cells that held a missing marker (absent, not an error)
    already_quarantined: int = 0  # quarantine records a replay of the same file stored before




def unheard_kinds(config: Config, rule_set: RuleSet) -> list[str]:
    """A warning for each `[[stations]]` kind that no rule's match names and that mass never infers (a typo
    such as "weathr" quietly takes the station out of every rule that asks for a kind)."""
    out = []
    for k, station in enumerate(config.get("stations")):
        kind = station.get("kind") if isinstance(station, dict) else None
        if kind and rule_set.unheard_kind(str(kind)):
            out.append(f"stations[{k}].kind = {safe_text(kind, 40)!r} is a kind no rule's match names and none "
                       f"mass infers ({', '.join(sorted(KINDS))}): rules that ask for a kind pass "
                       f"{safe_text(station.get('name'), 40)} by")
    return out


def _seen_by(batch: ObservationBatch, by_station: dict[str, list[int]], times: dict[str, np.ndarray], now: float,
             station: str) -> float | None:
    """`station`'s latest reading at or before `now` in `batch`, or None; its sorted times kept in `times`."""
    t = times.get(station)
    if t is None:
        rows = by_station.get(station)
        if rows is None:
            return None
        t = times[station] = np.sort(batch.ts[np.asarray(rows)])
    if t[0] > now:
        return None
    return float(t[np.searchsorted(t, now, side="right") - 1])


class Engine:
    """Decode, validate, score, then hand each scored batch to every sink.

    Stages run in one direction: decoding and validation, duplicate removal,
    the detector bank, the alert manager (which adds its notices to the
    batch), then the sinks (`self.sinks`: the JSONL store first when a store
    is given, then whatever was added: the UI's live state, a database).
    """

    def __init__(self, config: Config, store: JsonlStore | None = None, alerts: AlertService | None = None,
                 sinks: Sequence[Sink] = (), store_sink: Sink | None = None) -> None:
        self.config = config
        self.bank = build_bank(config)
        self.store = store
        self.alerts = alerts
        # `store_sink` stands in for the JSONL sink (the store's sinks in a writer process, a bulk replay).
        if store_sink is None and store is not None:
            store_sink = JsonlSink(store)
        self.sinks = SinkSet([store_sink] if store_sink is not None else [])
        for sink in sinks:
            self.sinks.add(sink)
        self.counters = Counters()
        # A replay's file: its quarantine records name it, and what an earlier replay stored is not
        # stored again (`mass_tui.quarantine_ledger`); None for live sources.
        self.ledger: QuarantineLedger | None = None
        self._warming = False
        self._unchecked = False  # `_feed`: the batch skips the order check
        # station -> labels (sources.labels): what rule matchers, silences and grouping select on.
        self.labels: dict[str, dict[str, str]] = {}
        # station -> the variables it has given a value of: what a station of unknown kind is taken for
        # (`effective_labels`), so an empty column (an export's, listing every variable) says nothing
        self._reported: dict[str, set[str]] = {}
        self._made_for: dict[str, dict[str, str | None]] = {}  # station -> the matched labels its rules were made for
        self._told_kind: dict[str, str] = {}  # station -> the inferred kind the log said last
        self._configured_kind = {str(s.get("name")): str(s["kind"]) for s in config.get("stations")
                                 if isinstance(s, dict) and s.get("kind")}
        for warning in unheard_kinds(config, self.bank.rule_set):
            log.warning("%s", warning)
        if alerts is not None:
            alerts.set_labels(self.labels.get)
        if url := config.secret("CLOUDEVENTS_URL"):
            from mass_tui.sinks.cloudevents import CloudEventsSink

            self.sinks.add(CloudEventsSink(url, labels_of=self.labels.get,
                                           timeout=config.get("alerts.timeout_seconds")))
        self._threshold_request: dict[str, float] | None = None
        self.decoder = Decoder(input_policy(config))
        # Time order per series: late readings, duplicates (a re-poll, a re-read after a
        # crash, a file replayed again) and conflicting duplicates are sorted out before
        # scoring, against what the store holds (read at the first batch), not just this run.
        self.order = OrderCheck(store=store)
        self._pending: dict[str, int] = {}  # reasons quarantined since the last scored batch

    def warm(self, hours: float | None = None) -> int:
        """Feed the last `hours` of the stored stream to the detectors (not stored again, no alerts; the
        no-data check learns each series' interval from it), so a restart does not go blind. Open alert
        episodes come back from the alert state (SQLite), not from here."""
        hours = self.config.get("store.warm_hours") if hours is None else hours
        if self.store is None or hours <= 0:
            return 0
        newest = newest_ts(self.store)
        if newest is None:
            return 0
        since = newest - hours * 3600.0
        stats: dict[str, int] = {}
        records = []
        # each station's own last `hours`: one that lags the others is warmed up to where it stopped
        for record in read_recent(self.store, STREAM, since, stats, since_of=lambda last: last - hours * 3600.0):
            record.pop("anomaly_score", None)
            records.append(record)
        decoded = Decoder().decode_objects(records)
        if decoded.rejected:
            stats["invalid"] = stats.get("invalid", 0) + len(decoded.rejected)
        self._warming = True
        try:
            self.process_batch(decoded.batch)
        finally:
            self._warming = False
        if stats:
            log.warning("warm start skipped stored lines: %s", stats)
        log.info("warm start: %d observations since %s", len(decoded.batch), iso_utc(since))
        return len(decoded.batch)

    def _feed(self, batch: ObservationBatch) -> None:
        """Give the detectors stored readings they have not seen (`Ordered.unseen`: a replay run again
        after it stopped part way, whose detectors start cold), as a warm start does: scored, nothing
        stored, counted or alerted. The rows after them are then scored as by one run that never stopped."""
        pending, self._pending = self._pending, {}  # the reasons quarantined belong to the batch being fed from
        self._warming = self._unchecked = True
        try:
            self.process_batch(batch)
        finally:
            self._warming = self._unchecked = False
            self._pending = pending

    # --- input -----------------------------------------------------------
    def ingest(
        self,
        raws: Sequence[bytes],
        *,
        default_station: str | None = None,
        default_source: str = "unknown",
    ) -> BatchResult:
        """Decode, validate, score and store a batch of wire messages.

        A transport's metadata rides on `raws.meta` (one `MessageMeta` per message,
        `sources.kafka_transport`): the record key and time stand in for a station and a
        time the value lacks, and quarantine records keep topic, partition, offset and key.
        """
        return self.process_decoded(self.decode(raws, default_station=default_station,
                                                default_source=default_source))

    def decode(self, chunk: Sequence[bytes] | Table, *, default_station: str | None = None,
               default_source: str = "unknown") -> Decoded:
        """Decode wire messages or a table chunk with this engine's input policy (nothing is stored yet)."""
        if isinstance(chunk, Table):
            return self.decoder.decode_table(chunk, default_station=default_station, default_source=default_source,
                                             ignored=self.counters.ignored_fields)
        return self.decoder.decode(chunk, default_station=default_station, default_source=default_source,
                                   meta=getattr(chunk, "meta", None), ignored=self.counters.ignored_fields)

    def process_decoded(self, decoded: Decoded) -> BatchResult:
        """Quarantine what decoding set aside, then score and store the valid rows."""
        self.quarantine(decoded.quarantined)
        self.counters.missing += decoded.missing
        return self.process_batch(decoded.batch, rejected=len(decoded.rejected))

    def quarantine(self, records: Sequence[Rejection | FieldRejection]) -> None:
        """Write quarantine records to rejected.jsonl and count them by reason."""
        if not records:
            return
        c = self.counters
        for r in records:
            if isinstance(r, FieldRejection):
                c.fields_rejected += 1
                c.fields_rejected_by_reason[r.code] = c.fields_rejected_by_reason.get(r.code, 0) + 1
                key = f"field:{r.code}"
            else:
                c.rejected += 1
                c.rejected_by_reason[r.code] = c.rejected_by_reason.get(r.code, 0) + 1
                key = f"message:{r.code}"
            self._pending[key] = self._pending.get(key, 0) + 1
        if self.store is not None:
            now = time.time()
            written = [r.to_record(now) for r in records]
            if self.ledger is not None:  # compared as stored: secrets masked
                written = [record for record in map(self.store.redacted, written) if self.ledger.admit(record)]
                c.already_quarantined += len(records) - len(written)
            self.store.append(REJECTED, written)

    # --- scoring ---------------------------------------------------------
    def process(self, observations: Sequence[Observation], rejected: int = 0) -> BatchResult:
        return self.process_batch(ObservationBatch.from_observations(observations), rejected)

    def request_thresholds(self, **thresholds: float) -> None:
        """Ask for new alarm_rarity / critical_rarity (or z / h) from another thread (the UI); applied before
        the next batch, state kept."""
        self._threshold_request = thresholds

    def process_batch(self, batch: ObservationBatch, rejected: int = 0) -> BatchResult:
        """Score and store valid observations, in order; each station's rows in time order."""
        started = time.perf_counter()
        request, self._threshold_request = self._threshold_request, None
        if request:
            self.bank.set_thresholds(**request)
        refused = 0
        grouped: tuple[ObservationBatch, dict[str, list[int]]] | None = None  # rows_by_station of a batch
        if self.bank.max_series and len(batch) and not self._unchecked:  # `_feed`: admitted with their batch
            groups = rows_by_station(batch.station)
            batch, groups, refused = self._admit(batch, groups)
            grouped = (batch, groups)
        rejected += refused
        if self._unchecked:  # readings the order check handed back to be fed (`_feed`)
            ordered = Ordered(batch)
        else:
            ordered = self.order.check(batch, warming=self._warming, by_station=grouped[1] if grouped else None,
                                       unseen=self.ledger is not None)  # a replay (`replay_file` sets it)
            if ordered.unseen is not None:
                self._feed(ordered.unseen)
        batch, fed = ordered.batch, ordered.fed
        if not self._warming:
            c = self.counters
            c.duplicates += ordered.duplicates
            c.late += ordered.late
            c.out_of_order += ordered.late
            c.conflicts += ordered.conflicts
            if ordered.duplicates:
                log.info("%d readings already stored with the same values dropped as duplicates (%d so far)",
                         ordered.duplicates, c.duplicates)
            rejected += sum(isinstance(r, Rejection) for r in ordered.quarantined)
            self.quarantine(ordered.quarantined)
        reasons, self._pending = self._pending, {}
        fields_rejected = sum(v for k, v in reasons.items() if k.startswith("field:"))
        n = len(batch)
        if n == 0:
            if self.store is not None:
                self.store.flush()  # the rejections of an all-bad batch
            empty = BatchResult(batch, [], rejected, fields_rejected=fields_rejected, reasons=reasons,
                                late=ordered.late, conflicts=ordered.conflicts, out_of_order=ordered.late,
                                duplicates=0 if self._warming else ordered.duplicates, started=started)
            if not self._warming:  # a batch of duplicates or rejects still counts (the metrics)
                for sink in self.sinks:
                    if getattr(sink, "counts_empty", False):
                        sink.write(empty)
            return empty
        traces: list[SeriesTrace] | None = [] if self.sinks.wants_series and not self._warming else None
        # the order check hands back the same batch when it drops nothing: its groups hold
        by_station = grouped[1] if grouped is not None and grouped[0] is batch else rows_by_station(batch.station)
        self._update_labels(batch, by_station)
        scores = {name: np.full(n, np.nan) for name in batch.columns if REGISTRY[name].scored}
        # Per station, in order: its anomalies, traces and the variables it scored. A station with one
        # message takes the live path at once; the others are scored together (_score_rows).
        found: list[list[Anomaly]] = []
        traced: list[list[SeriesTrace]] = []
        scored: list[tuple[str, list[str]]] = []
        many: list[tuple[int, str, list[int]]] = []
        for station, rows in by_station.items():
            traced.append([])
            if len(rows) == 1 and fed is None:
                names: list[str] = []
                found.append(self._score_row(station, rows[0], batch, scores,
                                             traced[-1] if traces is not None else None, names))
                scored.append((station, names))
            else:
                many.append((len(found), station, rows))
                found.append([])
                scored.append((station, []))
        if many:
            parts = self._score_rows([(station, rows) for _, station, rows in many], batch, scores,
                                     traces is not None, fed, ordered.composite)
            for (slot, station, _), (part, part_traces, names) in zip(many, parts, strict=True):
                found[slot], traced[slot], scored[slot] = part, part_traces, (station, names)
            if len(many) < len(by_station) and self.bank.max_series:
                # the series in the order they were seen, as when every station was scored in turn
                self.bank.touch([(station, name) for station, names in scored for name in names])
        anomalies = [a for part in found for a in part]
        anomalies.sort(key=lambda a: a.ts)
        if traces is not None:
            traces.extend(t for part in traced for t in part)
        if self._warming:
            if self.alerts is not None:
                self.alerts.warm(Readings.of_batch(batch, by_station))
            return BatchResult(batch, anomalies, rejected)

        c = self.counters
        c.observations += n
        c.anomalies += len(anomalies)
        c.stations.update(by_station)
        c.variables.update(name for name, col in batch.columns.items()
                           if name not in c.variables and not np.isnan(col).all())  # an empty column: none
        lo, hi = float(batch.ts.min()), float(batch.ts.max())
        c.first_ts = lo if c.first_ts is None else min(c.first_ts, lo)
        c.last_ts = hi if c.last_ts is None else max(c.last_ts, hi)

        events: list[AlertEvent] = []
        muted: dict[int, str] = {}
        if self.alerts is not None:
            events, muted = self.alerts.observe(anomalies, Readings.of_batch(batch, by_station))
        result = BatchResult(batch, anomalies, rejected, events, scores=scores, series=traces,
                             totals={"rejected": c.rejected, "alerts": self.alerts.sent_events if self.alerts else 0,
                                     "fields_rejected": c.fields_rejected, "late": c.late},
                             started=started, fields_rejected=fields_rejected, reasons=reasons,
                             late=ordered.late, conflicts=ordered.conflicts, out_of_order=ordered.late, muted=muted,
                             duplicates=ordered.duplicates)
        self.sinks.write(result)
        result.seconds = time.perf_counter() - started
        return result

    def sync(self) -> None:
        """Make every durable sink's data safe; the transport position may be committed after this."""
        self.sinks.sync()
        if self.alerts is not None:
            self.alerts.sync()

    def _update_labels(self, batch: ObservationBatch, by_station: dict[str, list[int]]) -> None:
        """Each station's labels from its latest row in the batch (its source and tags)."""
        for station, rows in by_station.items():
            last = rows[-1]
            tags = batch.tags[last] if batch.tags is not None else None
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
        # Each station comes at its first reading; the others' readings up to then count as seen, as
        # one at a time they would (a batch of a flat-out replay spans months: its newest time made
        # every series idle, and each new station wiped the detectors of stations busy in the batch).
        times: dict[str, np.ndarray] = {}  # station -> its times in the batch, sorted (when asked for)
        for station, rows in by_station.items():
            idx = np.array(rows)
            new = sum(1 for name in scored if (station, name) not in self.bank.series
                      and not np.isnan(batch.columns[name][idx]).all())
            now = float(batch.ts[idx].min())
            why = self.bank.room_for(station, new, now, pending, partial(_seen_by, batch, by_station, times, now))
            if why is None:
                if station not in self.bank.stations:
                    pending += new
            else:
                refused.extend(rows)
                reasons.extend(Rejection(why, orjson.dumps(batch.observation(i).to_wire()), "series_cap")
                               for i in rows)
                # nothing of a refused station stays behind: a flood of new names costs no memory
                self.labels.pop(station, None)
                self._reported.pop(station, None)
                self._made_for.pop(station, None)
                self._told_kind.pop(station, None)
        for station in self.bank.drain_evicted():
            self.order.forget(station)
            self._reported.pop(station, None)
            self._made_for.pop(station, None)
            self._told_kind.pop(station, None)
        if not refused:
            return batch, by_station, 0
        if not self._warming:
            self.quarantine(reasons)
        keep = np.setdiff1d(np.arange(len(batch)), np.array(refused))
        batch = batch.select(keep)
        return batch, rows_by_station(batch.station), 0 if self._warming else len(refused)

    def _rule_labels(self, station: str, values: dict[str, np.ndarray] | dict[str, float]) -> Mapping[str, str]:
        """The labels `station`'s rules match on now (`effective_labels` of the variables it has given
        a value of); when they differ from those its rules were made for (a kind known only once the
        telling variable gives a value), the rules are fitted to them (`DetectorBank.relabel`)."""
        reported = self._report(station, values)
        labels = effective_labels(self.labels.get(station, {}), reported)
        # only the labels some matcher reads: a tag that changes every message (a sequence number)
        # must not refit a station's rules each batch
        read = {name: labels.get(name) for name in self.bank.rule_set.label_names}
        made = self._made_for.get(station)
        if made is not None and made != read:
            self.bank.relabel(station, labels, reported)
        kind = labels.get("kind")
        if kind is not None and self._told_kind.get(station) != kind and "kind" not in self.labels.get(station, {}):
            # the operator can see the guess, and so knows when to set tags.kind (README, Troubleshooting)
            self._told_kind[station] = kind
            log.info("station %s: kind %s, inferred from %s (a tags.kind in its messages overrides it)",
                     safe_text(station, 80), kind, ", ".join(kind_evidence(reported)[1]))
        self._made_for[station] = read
        return labels

    def _report(self, station: str, values: dict[str, np.ndarray] | dict[str, float]) -> set[str]:
        """The variables `station` has given a value of, with those among `values` (columns of its
        rows, NaN = none, or its values of one reading) that hold one."""
        reported = self._reported.setdefault(station, set())
        for name, value in values.items():
            if name not in reported and not np.isnan(value).all():
                reported.add(name)
        return reported

    def _score_rows(
        self, stations: list[tuple[str, list[int]]], batch: ObservationBatch, scores: dict[str, np.ndarray],
        trace: bool, fed: dict[str, np.ndarray] | None = None, composite: np.ndarray | None = None,
    ) -> list[tuple[list[Anomaly], list[SeriesTrace], list[str]]]:
        """Score the stations with several rows in the batch: (anomalies, traces, variables scored) per
        station. Their series step together where they can (DetectorBank.step_many: the series read at
        the same times, the same numbers as one by one), then each station's cross-variable views."""
        plans = []
        requests: list[SeriesRequest] = []
        for station, rows in stations:
            whole = len(rows) == len(batch)
            idx = None if whole else np.array(rows)
            times = batch.ts if idx is None else batch.ts[idx]
            columns = batch.columns if idx is None else {k: c[idx] for k, c in batch.columns.items()}
            if fed is not None:  # late values, and the values of a duplicate instant, are not scored
                columns = {k: np.where(fed[k] if idx is None else fed[k][idx], c, np.nan) for k, c in columns.items()}
            labels = self._rule_labels(station, columns)
            steps = []
            for name, col in columns.items():
                if name not in scores:
                    continue
                present = ~np.isnan(col)
                if not present.any():
                    continue
                everything = bool(present.all())
                t_in, v_in = (times, col) if everything else (times[present], col[present])
                self.bank.get(station, name, labels)  # allocated (and seen) in the order of old
                steps.append((name, present, t_in, v_in))
                requests.append(SeriesRequest(station, name, t_in, v_in, everything,
                                              None if everything else times, None if everything else present))
            plans.append((station, idx, times, columns, labels, steps))
        results = iter(self.bank.step_many(requests, detail=trace))
        out = []
        for station, idx, times, columns, labels, steps in plans:
            found: list[Anomaly] = []
            traces: list[SeriesTrace] = []
            for name, present, t_in, v_in in steps:
                result = next(results)
                found.extend(result.anomalies)
                if trace:
                    rules = [v for k, v in result.scores.items() if k != "ensemble"]
                    traces.append(SeriesTrace(station, name, t_in, v_in, result.anomaly_score, result.detail,
                                              np.max(rules, axis=0) if rules else None))
                where = present if idx is None else idx[present]
                scores[name][where] = result.anomaly_score
            sub = None  # the station's rows the cross-variable views see
            if composite is not None:
                take = composite if idx is None else composite[idx]
                if not take.all():
                    sub = np.flatnonzero(take)
                    times, columns = times[take], {k: c[take] for k, c in columns.items()}
            if times.size:
                found.extend(self.bank.step_composites(station, times, columns, labels))
                self._relation_scores(scores, idx, None, sub)
            out.append((found, traces, [step[0] for step in steps]))
        return out

    def _score_row(
        self, station: str, row: int, batch: ObservationBatch, scores: dict[str, np.ndarray],
        traces: list[SeriesTrace] | None, names: list[str] | None = None,
    ) -> list[Anomaly]:
        """A station with one message in the batch (the live case): plain floats, no numpy."""
        found: list[Anomaly] = []
        ts = float(batch.ts[row])
        values = {}
        for name, col in batch.columns.items():
            value = float(col[row])
            if value == value:
                values[name] = value
        labels = self._rule_labels(station, values)
        for name, value in values.items():
            if name not in scores:
                continue
            if names is not None:
                names.append(name)
            result = self.bank.step_value(station, name, ts, value, labels)
            found.extend(result.anomalies)
            if traces is not None:
                det = self.bank.get(station, name)
                detail = {**det.ensemble.detail, "surprise": det.model.detail.get("surprise")}
                rules = [v for k, v in result.scores.items() if k != "ensemble"]
                traces.append(SeriesTrace(station, name, np.array([ts]), np.array([value]),
                                          np.array([result.anomaly_score]), detail,
                                          np.array([max(rules)]) if rules else None))
            scores[name][row] = result.anomaly_score
        found.extend(self.bank.step_composites_one(station, ts, values, labels))
        self._relation_scores(scores, None, row)
        return found

    def _relation_scores(self, scores: dict[str, np.ndarray], idx: np.ndarray | None, row: int | None,
                         sub: np.ndarray | None = None) -> None:
        """The relation view's score counts for the variable it blames (the higher score stays)."""
        rel = self.bank.relation_scores
        if rel is None:
            return
        values, blamed, names = rel
        for k, name in enumerate(names):
            col = scores.get(name)
            if col is None:
                continue
            hit = np.flatnonzero(blamed == k)
            if not hit.size:
                continue
            v = values[hit]
            if row is not None:
                at = np.full(hit.size, row)
            else:
                pos = hit if sub is None else sub[hit]
                at = pos if idx is None else idx[pos]
            # NaN (not scored) never replaces a score; a NaN score is replaced (`not col >= v`)
            keep = ~(col[at] >= v) & (v == v)
            col[at[keep]] = v[keep]

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
        out["duplicates"] = c.duplicates
        out["fields_rejected"] = c.fields_rejected
        out["late"] = c.late
        out["conflicts"] = c.conflicts
        out["out_of_order"] = c.out_of_order
        if c.rejected_by_reason:
            out["rejected_by_reason"] = dict(sorted(c.rejected_by_reason.items()))
        if c.fields_rejected_by_reason:
            out["fields_rejected_by_reason"] = dict(sorted(c.fields_rejected_by_reason.items()))
        if c.missing:
            out["missing"] = c.missing
        if c.already_quarantined:
            out["already_quarantined"] = c.already_quarantined
        local = self.decoder.local
        if local.repeated or local.skipped:
            out["tz_repeated"], out["tz_skipped"] = local.repeated, local.skipped
        if c.ignored_fields:
            listed, other = ignored_summary(c.ignored_fields)
            out["ignored_fields"] = listed
            untracked = c.ignored_fields.untracked
            if untracked:  # names past the counter's limit: their fields counted, the names not kept
                other["untracked_fields"] = untracked
            if other:
                out["ignored_fields_other"] = other
                log.info("ignored fields: %d names%s, %d fields in all; the summary lists the %d most frequent",
                         len(c.ignored_fields), " kept (later names counted without them)" if untracked else "",
                         sum(c.ignored_fields.values()) + untracked, len(listed))
        out.update(extra)
        return out

