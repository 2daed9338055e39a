"""Alerts wired together from the configuration.

    anomalies + readings ─▶ episodes (manager: pending, recovery, repeats, acks)
    readings + wall clock ─▶ no-data and source-down conditions (nodata, tick)
        ─▶ muted? (stages.Muters: inhibit, mute times, silences) ─▶ alerts.jsonl
        ─▶ wait and group ─▶ dedup ─▶ one queue per channel, retried ─▶ alerts.jsonl (delivery)

The engine calls `observe()` once per scored batch (its thread); a ticker
thread calls `tick()` every second for what the wall clock decides (live
no-data, a source down, groups whose wait is over while data stopped).
Both hold one lock. Open episodes, cooldowns and the notification log are
saved to the SQLite alert state after each call, so they survive
`kill -9`; silences and acknowledgements are read from it whenever another
process (`mass silence`, `mass ack`, the UI) changed it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from detectors.base import Anomaly
from mass_tui.alerts.channels import (
    Channel,
    ChannelError,
    EmailChannel,
    ExecChannel,
    SlackChannel,
    SmsChannel,
    WebhookChannel,
)
from mass_tui.alerts.dispatch import Dispatcher
from mass_tui.alerts.journal import Journal
from mass_tui.alerts.manager import AlertConfigError, AlertEvent, AlertManager, AlertRule, rules_from_config
from mass_tui.alerts.matchers import MatcherError
from mass_tui.alerts.message import format_notice
from mass_tui.alerts.model import Notification
from mass_tui.alerts.mute_times import MuteTimeError, mute_times_from_config
from mass_tui.alerts.nodata import Condition, NoDataTracker
from mass_tui.alerts.readings import Readings
from mass_tui.alerts.stages import (
    DedupStage,
    GroupStage,
    InhibitError,
    Inhibitor,
    InhibitRule,
    Muters,
    Silencer,
    TimeMuter,
    inhibit_rules_from_config,
)
from mass_tui.alerts.state import AlertState
from mass_tui.config import Config, ConfigError
from mass_tui.logs import EVENTS
from sources.variables import REGISTRY

log = logging.getLogger(__name__)

NO_DATA = "no-data"
SOURCE_DOWN = "source-down"
TICK_SECONDS = 1.0
REFRESH_SECONDS = 0.25  # a silence added from the command line applies within this (of wall time)


def build_channels(config: Config) -> list[Channel]:
    a = config.get("alerts")
    timeout = a["timeout_seconds"]
    channels: list[Channel] = []
    try:
        email = {"host": a["smtp_host"], "port": a["smtp_port"], "sender": a["email_from"],
                 "user": config.secret("SMTP_USER"), "password": config.secret("SMTP_PASS"), "timeout": timeout}
        if a["smtp_host"] and a["email_to"]:
            channels.append(EmailChannel(recipients=a["email_to"], **email))
        if a["sms_enabled"]:
            if not a["smtp_host"]:
                raise ChannelError("SMS_ENABLED needs SMTP_HOST: the SMS goes through an email gateway")
            channels.append(SmsChannel(a["sms_to"], a["sms_carrier"], **email))
        if url := config.secret("SLACK_WEBHOOK_URL"):
            channels.append(SlackChannel(url, timeout))
        if url := config.secret("ALERT_WEBHOOK_URL"):
            channels.append(WebhookChannel(url, timeout, format=a["webhook_format"], external_url=a["external_url"]))
        if url := config.secret("CLOUDEVENTS_URL"):
            ch = WebhookChannel(url, timeout, format="cloudevents", external_url=a["external_url"])
            ch.name = "cloudevents"
            channels.append(ch)
        if a["exec_command"]:
            channels.append(ExecChannel(a["exec_command"], a["exec_timeout_seconds"], format=a["exec_format"],
                                        external_url=a["external_url"]))
    except ChannelError as exc:
        raise ConfigError(f"alerts: {exc}") from None
    return channels


def _parts(config: Config) -> tuple[list[AlertRule], list[Any], list[InhibitRule]]:
    a = config.get("alerts")
    try:
        return (rules_from_config(a["rules"]), mute_times_from_config(a["mute_times"]),
                inhibit_rules_from_config(a["inhibit_rules"]))
    except (AlertConfigError, MuteTimeError, InhibitError, MatcherError) as exc:
        raise ConfigError(str(exc)) from None


class AlertService:
    def __init__(self, config: Config, *, state: AlertState | None = None, journal: Journal | None = None,
                 channels: Sequence[Channel] | None = None, live: bool = False,
                 labels_of: Callable[[str], Mapping[str, str]] | None = None, ticker: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        a = config.get("alerts")
        rules, mute_times, inhibit_rules = _parts(config)
        self.config = config
        self.state = state
        self.journal = journal
        self.live = live
        self.clock = clock
        self._lock = threading.RLock()
        self._labels_of = labels_of or (lambda station: {"station": station})
        self.manager = AlertManager(
            rules, cooldown_s=a["cooldown_min"] * 60.0, repeat_s=a["repeat_min"] * 60.0,
            resolve_after_s=a["resolve_after_min"] * 60.0, notify_resolved=a["notify_resolved"],
            units={name: var.unit for name, var in REGISTRY.items()}, labels_of=self._station_labels)
        self.nodata = NoDataTracker(factor=a["no_data_factor"], min_seconds=a["no_data_min_minutes"] * 60.0,
                                    variables=a["no_data_variables"], live=live) if a["no_data"] else None
        self.source_down_s = a["source_down_min"] * 60.0
        self.muters = Muters(Inhibitor(inhibit_rules, self._firing_labels), TimeMuter(mute_times), Silencer(state))
        self.manager.mute = self.muters
        self.groups = GroupStage(a["group_by"], a["group_wait_seconds"])
        self.dedup = DedupStage(state)
        channel_list = build_channels(config) if channels is None else list(channels)
        if not channel_list:
            log.warning("alerts are enabled but no channel is configured: alerts are only logged and stored")
        self.dispatcher = self._dispatcher(channel_list)
        self.sources: list[Any] = []
        self.listeners: list[Callable[[str, Any], None]] = []  # ("notice", AlertEvent) / ("delivery", (ch, outcome))
        self.sent_events = 0  # notices that went out (not muted)
        self.muted_events = 0
        self.notifications = 0
        self._stop = threading.Event()
        self._closed = False
        self._next_refresh = 0.0
        if state is not None:
            restored = self.manager.restore(state.episodes(), state.cooldowns())
            self.manager.acked = set(state.acks())
            if self.nodata is not None:
                for ep in self.manager.active.values():
                    if ep.external and ep.rule == NO_DATA:
                        self.nodata.restore_silent(ep.station, ep.part, ep.worst.ts)
            if restored:
                log.info("alert state: %d open episode(s) restored from %s", restored, state.path)
        self._thread = threading.Thread(target=self._tick_loop, name="alert-clock", daemon=True)
        if ticker:
            self._thread.start()

    @classmethod
    def from_config(cls, config: Config, *, live: bool = False,
                    labels_of: Callable[[str], Mapping[str, str]] | None = None, **kw: Any) -> AlertService:
        state = AlertState.in_dir(config.db_dir)
        journal = Journal(config.db_dir, max_bytes=int(config.get("store.max_mb") * 1024 * 1024),
                          retention_days=config.get("store.retention_days"))
        try:
            return cls(config, state=state, journal=journal, live=live, labels_of=labels_of, **kw)
        except BaseException:
            state.close()
            journal.close()
            raise

    def _dispatcher(self, channels: list[Channel]) -> Dispatcher:
        a = self.config.get("alerts")
        return Dispatcher(channels, max_pending=a["max_pending"], max_attempts=a["max_attempts"],
                          retry_seconds=a["retry_seconds"], on_outcome=self._on_outcome, dedup=self.dedup)

    def set_labels(self, labels_of: Callable[[str], Mapping[str, str]]) -> None:
        self._labels_of = labels_of

    def _station_labels(self, station: str) -> Mapping[str, str]:
        return self._labels_of(station) or {"station": station}

    def _firing_labels(self) -> tuple[int, Iterable[tuple[str, dict[str, str]]]]:
        return self.manager.firing_version, ((ep.id, ep.labels) for ep in self.manager.firing())

    # --- the batch path ------------------------------------------------------------
    def observe(self, anomalies: Sequence[Anomaly], readings: Readings) -> tuple[list[AlertEvent], dict[int, str]]:
        """Notices of a scored batch, and why each muted anomaly (by index) is muted.

        `anomalies` in time order; `readings` the batch's reading times per series."""
        with self._lock:
            if self._closed:  # a batch finishing after close() (a UI stopping): nothing is sent any more
                return [], {}
            wall = self.clock()
            self._refresh()
            conditions = self.nodata.observe(readings, wall) if self.nodata is not None else []
            events: list[AlertEvent] = []
            marks: dict[int, str] = {}
            quiet = not self.muters.silencer.silences and not self.muters.time_muter.mute_times
            ci = 0
            for i, a in enumerate(anomalies):
                while ci < len(conditions) and conditions[ci].ts <= a.ts:
                    self._apply(conditions[ci], events)
                    ci += 1
                self.manager.on_anomaly(a, readings, events)
                if (not quiet or self.muters.inhibitor.sources()) and \
                        (why := self.muters.reason(self.anomaly_labels(a), a.ts)):
                    marks[i] = why
            for c in conditions[ci:]:
                self._apply(c, events)
            self.manager.settle(readings, events)
            data_clock = self._data_clock(readings)
            self.manager.repeat_conditions(data_clock, events)
            self._route(events, data_clock, wall)
            self._save()
        return events, marks

    def warm(self, readings: Readings) -> None:
        """Stored data replayed at start: no-data learns each series' interval and last reading."""
        if self.nodata is not None:
            with self._lock:
                if not self._closed:
                    self.nodata.warm(readings, self.clock())

    def anomaly_labels(self, a: Anomaly) -> dict[str, str]:
        """An anomaly's labels as an alert of it would have them (what silences match on)."""
        labels = dict(self._station_labels(a.station))
        labels.setdefault("station", a.station)
        station_labels = labels
        rule = next((r.name for r in self.manager.rules if r.matches(a, station_labels)), "")
        labels.update(severity=a.severity, detector=a.detector, variable=a.variable)
        if rule:
            labels.update(alertname=rule, rule=rule)
        return labels

    def _data_clock(self, readings: Readings) -> float:
        if self.nodata is not None and math.isfinite(self.nodata.data_clock):
            return self.nodata.data_clock
        return max(readings.clock.values(), default=-math.inf)

    def _apply(self, c: Condition, events: list[AlertEvent]) -> None:
        reason = c.reason(c.station)
        if c.opened:
            anomaly = Anomaly(c.since, c.station, c.variable, math.nan, NO_DATA, "warning", 1.0, reason)
            self.manager.open_condition(c.station, NO_DATA, c.variable, anomaly, c.ts, events)
        else:
            self.manager.close_condition(c.station, NO_DATA, c.variable, c.ts, reason, events)

    # --- the wall clock ------------------------------------------------------------------
    def watch_source(self, source: Any) -> None:
        """A live source whose state (`up`, `down_since`) alerts when down longer than source_down_min."""
        with self._lock:
            self.sources.append(source)

    def tick(self) -> list[AlertEvent]:
        with self._lock:
            if self._closed:
                return []
            wall = self.clock()
            self._refresh()
            events: list[AlertEvent] = []
            if self.nodata is not None:
                for c in self.nodata.wall_check(wall):
                    self._apply(c, events)
            for source in self.sources:
                self._check_source(source, wall, events)
            data_clock = self.nodata.data_clock if self.nodata is not None else -math.inf
            if self.live:
                self.manager.repeat_conditions(data_clock, events, wall=wall)
            self._route(events, data_clock, wall)
            self._save()
        return events

    def _check_source(self, source: Any, wall: float, events: list[AlertEvent]) -> None:
        st = source.state
        name = str(getattr(source, "name", "source"))
        key = (name, SOURCE_DOWN, "")
        down_since = st.down_since
        if st.up is False and down_since is not None and wall - down_since >= self.source_down_s:
            if key in self.manager.active:
                return
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(down_since))
            reason = f"source {name} down since {since} UTC: {st.last_error[:200]}"
            anomaly = Anomaly(down_since, name, "", math.nan, SOURCE_DOWN, "critical", 1.0, reason)
            self.manager.open_condition(name, SOURCE_DOWN, "", anomaly, down_since + self.source_down_s, events,
                                        labels={"source": name, "station": ""})
        elif st.up and key in self.manager.active:
            self.manager.close_condition(name, SOURCE_DOWN, "", wall, f"source {name} answers again", events)

    def _tick_loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the clock must keep going; the error is logged
                log.exception("alert clock")

    # --- stages after the manager ----------------------------------------------------------
    def _refresh(self) -> None:
        """Silences and acks changed by another process: looked for at most every REFRESH_SECONDS."""
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_SECONDS
        if self.state is not None and self.state.changed():
            self.muters.silencer.reload()
            acks = self.state.acks()
            new = set(acks) - self.manager.acked
            self.manager.acked = set(acks)
            for eid in sorted(new):
                ack = acks[eid]
                log.info("episode %s acknowledged by %s: %s", eid, ack.by or "?", ack.comment)
                if self.journal is not None:
                    from sources.schema import iso_utc

                    self.journal.record({"kind": "acknowledged", "at": iso_utc(ack.at), "episode": eid,
                                         "by": ack.by, "comment": ack.comment})

    def _route(self, events: list[AlertEvent], data_clock: float, wall: float) -> None:
        events.sort(key=lambda e: e.ts)
        if self.journal is not None:
            self.journal.notices(events)
        ready: list[Notification] = []
        for e in events:
            EVENTS.info(format_notice(e))
            if e.muted:
                self.muted_events += 1
            else:
                self.sent_events += 1
                ready.extend(self.groups.add(e, wall))
            for listener in self.listeners:
                listener("notice", e)
        ready.extend(self.groups.due(data_clock, wall))
        self._send(ready)

    def _send(self, notifications: list[Notification]) -> None:
        for n in notifications:
            self.notifications += 1
            self.dispatcher.submit(n)

    def _on_outcome(self, channel: str, notification: Notification, outcome: str, attempts: int, error: str) -> None:
        if outcome == "sent" and self.state is not None:
            self.state.log_sent(notification.ids, channel)
        if self.journal is not None:
            self.journal.delivery(channel, notification, outcome, attempts, error)
        for listener in self.listeners:
            listener("delivery", (channel, outcome))

    def _save(self) -> None:
        if self.state is None:
            return
        upserts, closed, cools = self.manager.changes()
        self.state.save(upserts, closed, cools)

    # --- reload, sync, close ---------------------------------------------------------------
    def reload(self, config: Config) -> None:
        """New rules, mute times, inhibitions, grouping and channels (SIGHUP); episodes and detector state stay.
        Raises ConfigError (and changes nothing) on a bad configuration."""
        rules, mute_times, inhibit_rules = _parts(config)
        channels = build_channels(config)
        a = config.get("alerts")
        with self._lock:
            self.config = config
            self.manager.set_rules(rules)
            self.manager.cooldown_s = a["cooldown_min"] * 60.0
            self.manager.repeat_s = a["repeat_min"] * 60.0
            self.manager.resolve_after_s = a["resolve_after_min"] * 60.0
            self.manager.notify_resolved = a["notify_resolved"]
            self.muters.time_muter.mute_times = mute_times
            self.muters.inhibitor.rules = inhibit_rules
            self.muters.silencer.reload()
            self._next_refresh = 0.0
            if self.state is not None:
                self.manager.acked = set(self.state.acks())
            self.groups.group_by = list(a["group_by"])
            self.groups.group_wait_s = a["group_wait_seconds"]
            self.source_down_s = a["source_down_min"] * 60.0
            old, self.dispatcher = self.dispatcher, self._dispatcher(channels)
        # The old queues finish in the background; their outcomes are still journaled and counted.
        threading.Thread(target=old.close, args=(a["timeout_seconds"] * 2,), name="alert-reload-drain",
                         daemon=True).start()
        self._retired = getattr(self, "_retired", []) + [old]
        log.info("alerts reloaded: %d rules, %d mute times, %d inhibit rules, channels %s", len(rules),
                 len(mute_times), len(inhibit_rules), ", ".join(ch.name for ch in channels) or "none")

    def sync(self) -> None:
        with self._lock:
            if self.journal is not None and not self._closed:
                self.journal.sync()

    def close(self, timeout: float = 10.0) -> dict[str, int]:
        """Send what is grouped, deliver for up to `timeout` s, count the rest as abandoned, close the files."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        with self._lock:
            if self._closed:
                return {}
            self._send(self.groups.flush())
            self._save()
            self._closed = True
        abandoned = self.dispatcher.close(timeout)
        for old in getattr(self, "_retired", []):
            if not old.closed:
                old.close(0.1)
        if self.journal is not None:
            self.journal.close()
        if self.state is not None:
            self.state.close()
        return abandoned

    def delivery_status(self) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for d in [*getattr(self, "_retired", []), self.dispatcher]:
            for name, st in d.status.items():
                mine = st.to_dict()
                if name in out:  # a channel before and after a reload: its counts add up
                    for k in ("sent", "failed", "retries", "dropped", "abandoned"):
                        mine[k] = int(mine[k]) + int(out[name][k])  # type: ignore[call-overload]
                out[name] = mine
        return out

    def summary(self) -> dict[str, Any]:
        return {"alerts": self.sent_events, "muted": self.muted_events, "notifications": self.notifications,
                "deliveries": self.delivery_status(),
                "open_episodes": sum(ep.state == "firing" for ep in self.manager.active.values())}
