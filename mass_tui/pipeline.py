"""Producer and consumer, wired from the configuration, in one process or apart.

The producer polls a source and appends to the transport; the consumer
reads the transport, scores, stores (fsync), then commits its position.
Both run as threads with a shared stop event, so the UI and the headless
service drive them the same way. The transport can be switched while
running: the consumer commits and closes one and opens the other, and the
detector state, which lives in the engine, is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mass_tui.config import Config, ConfigError
from mass_tui.engine import BatchResult, Engine
from mass_tui.logs import NOTICE
from mass_tui.store import LABELS, REJECTED, JsonlStore, StoreWriteError
from sources.base import Source
from sources.file_transport import FileAppender, FileTail
from sources.http_sources import Backoff, OpenMeteoSource, OpenWeatherMapSource
from sources.simulator import Simulator
from sources.text import safe_text

log = logging.getLogger(__name__)

TRANSPORTS = ("file", "kafka")
SOURCES = ("open-meteo", "openweathermap", "simulator", "simulator:building", "simulator:smoke")


def make_source(config: Config, name: str, *, seed: int = 7, max_speed: bool = False) -> Source:
    stations = config.get("stations")
    poll = config.get("source.poll_seconds")
    limits = {"deadline": config.get("source.fetch_deadline_seconds"),
              "max_body": int(config.get("source.max_body_mb") * 2**20)}
    if name in ("open-meteo", "openweathermap"):
        import httpx  # here: a replay or a simulator does not load it (50 ms of every start)
    if name == "open-meteo":
        client = httpx.Client(timeout=10.0, headers={"User-Agent": "mass-monitor"})
        return OpenMeteoSource(client, stations, base=config.get("source.api_base"),
                               air_base=config.get("source.air_api_base") or None, interval=poll, **limits)
    if name == "openweathermap":
        key = config.secret("OPENWEATHER_API_KEY")
        if not key:
            raise ConfigError("source openweathermap: OPENWEATHER_API_KEY is not set (put it in .env)")
        client = httpx.Client(timeout=10.0)
        return OpenWeatherMapSource(client, stations, api_key=key, base=config.get("source.owm_base"),
                                    units=config.get("source.owm_units"), interval=poll, **limits)
    if name.startswith("simulator"):
        scenario = name.partition(":")[2] or "building"
        if scenario not in ("building", "smoke"):
            raise ConfigError(f"source = {name!r}: expected one of {', '.join(SOURCES)}")
        start = None if max_speed else time.time()
        step = 300.0 if scenario == "building" else 10.0  # building sensors report every 5 min, smoke every 10 s
        return Simulator(scenario, seed=seed, start=start, interval=0.0 if max_speed else step, step_seconds=step)
    raise ConfigError(f"source = {name!r}: expected one of {', '.join(SOURCES)}")


def transport_file(config: Config):
    return config.data_dir / "transport" / "observations.jsonl"


def make_sink(config: Config, transport: str, *, stop: threading.Event | None = None,
              deadline: float | None = None) -> Any:
    """The producer's transport. On Kafka the broker is asked first (`ensure_topic`: up to 5 s, never
    past `deadline` (monotonic) or a set `stop`); raises `BrokerUnavailable` if it does not answer."""
    if transport == "file":
        # Sealed at the store's file size; the consumer deletes what it has stored.
        return FileAppender(transport_file(config), max_bytes=int(config.get("store.max_mb") * 2**20))
    from sources.kafka_transport import KafkaSink, ensure_topic

    k = config.get("kafka")
    ensure_topic(k["bootstrap_servers"], k["topic"], stop=stop, deadline=deadline)
    return KafkaSink(k["bootstrap_servers"], k["topic"], k["client_id"])


def make_consumer(config: Config, transport: str, *, stop: threading.Event | None = None,
                  deadline: float | None = None) -> Any:
    """The consumer's transport, the broker asked as by `make_sink`."""
    if transport == "file":
        return FileTail(transport_file(config))
    from sources.kafka_transport import KafkaSource, ensure_topic

    k = config.get("kafka")
    ensure_topic(k["bootstrap_servers"], k["topic"], stop=stop, deadline=deadline)
    return KafkaSource(k["bootstrap_servers"], k["topic"], k["group_id"], k["client_id"])


def open_retrying(open_transport: Callable[[], Any], stop: threading.Event, *, deadline: float | None = None,
                  on_retry: Callable[[str], None] | None = None) -> Any | None:
    """open_transport(), retried with backoff while the Kafka broker does not answer;
    None when stopped (or past `deadline`, a monotonic time) first. `open_transport` should itself
    give up at `stop` and `deadline` (`make_sink(..., stop=, deadline=)`): an attempt is not cut short here."""
    from sources.kafka_transport import BrokerUnavailable

    delay = 1.0
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        try:
            return open_transport()
        except BrokerUnavailable as exc:
            log.warning("%s; retrying in %.0f s", exc, delay)
            if on_retry is not None:
                on_retry(str(exc))
            wait = delay if deadline is None else min(delay, deadline - time.monotonic())
            if wait <= 0 or stop.wait(wait):
                return None
            delay = min(delay * 2.0, 30.0)
    return None


def _deliver(sink: Any, messages: list[bytes], stations: list[str], stop: threading.Event,
             on_error: Callable[[str], None] | None = None) -> bool:
    """Append to the transport, retrying with backoff while it refuses (disk full, read-only, a Kafka
    queue that stays full); the messages are held meanwhile. False if stopped before they went."""
    from sources.kafka_transport import BrokerUnavailable, QueueFull

    delay = 1.0
    while messages:
        try:
            sink.append(messages, stations)
            return True
        except (OSError, BufferError, BrokerUnavailable) as exc:
            if isinstance(exc, QueueFull):  # the first `sent` were queued: keep only the rest
                messages, stations = messages[exc.sent:], stations[exc.sent:]
            why = f"{exc}; {len(messages)} messages held, retry in {delay:.0f} s"
            if isinstance(exc, OSError):
                NOTICE.error("%s", why)
            else:
                log.warning("%s", why)
            if on_error is not None:
                on_error(str(exc))
            if stop.wait(delay):
                log.error("stopped with %d messages not handed to the transport", len(messages))
                return False
            delay = min(delay * 2.0, 30.0)
    return True


def run_producer(source: Source, sink: Any, stop: threading.Event, *, store: JsonlStore | None = None,
                 max_messages: int | None = None, max_speed: bool = False,
                 on_poll: Callable[[Source, int], None] | None = None,
                 on_transport_error: Callable[[str], None] | None = None) -> int:
    """Poll until stopped (or max_messages); returns how many messages were appended.

    Any exception out of a poll marks the source down with its error and is retried with backoff
    (1 s doubling to 5 min): a bad response never ends the producer. `on_poll(source, sent)`
    follows every poll, failed ones included (the `mass_source_up` gauge follows it).
    """
    sent = 0
    backoff = Backoff(base=1.0, cap=300.0)
    labels = getattr(source, "labels", None)
    if labels and store is not None:
        store.append(LABELS, (lb.to_record() for lb in labels))
        store.flush()
    while not stop.is_set():
        try:
            poll = source.poll()
        except Exception as exc:  # noqa: BLE001 - any failure of a source is a down source, retried
            delay = backoff.next()
            source.state.mark_down(f"{type(exc).__name__}: {exc}", delay)
            log.error("source %s failed (%s); retry in %.1f s", source.name, source.state.last_error, delay,
                      exc_info=True)
            if on_poll is not None:
                on_poll(source, sent)
            stop.wait(delay)
            continue
        backoff.reset()
        messages, stations = poll.messages, poll.stations
        if max_messages is not None:
            messages, stations = messages[: max_messages - sent], stations[: max_messages - sent]
        if not _deliver(sink, messages, stations, stop, on_transport_error):
            break
        sent += len(messages)
        if poll.rejected and store is not None:
            now = time.time()
            store.append(REJECTED, (r.to_record(now) for r in poll.rejected))
            store.flush()
        if on_poll is not None:
            on_poll(source, sent)
        if max_messages is not None and sent >= max_messages:
            break
        if getattr(source.state, "stopped", False):
            log.error("source %s stopped: %s", source.name, source.state.last_error)
            break
        stop.wait(0.0 if max_speed else source.next_delay())
    sink.flush()
    return sent


class Pipeline:
    """The consumer loop, with a producer thread when a source is given."""

    def __init__(self, config: Config, engine: Engine, store: JsonlStore, transport: str = "file") -> None:
        if transport not in TRANSPORTS:
            raise ConfigError(f"transport = {transport!r}: expected file or kafka")
        self.config = config
        self.engine = engine
        self.store = store
        self.transport = transport
        self.requested = transport
        self.consumer: Any = None
        self.stop = threading.Event()
        self.producer_thread: threading.Thread | None = None
        self.produced = 0
        self.source: Source | None = None
        self.paused = threading.Event()
        self.transport_error = ""  # why the transport cannot be reached, while it cannot
        self.store_error = ""  # why the store cannot be written, while it cannot (position kept)
        self.producer_sink: Any = None  # the producer's transport (its delivery state for the status)
        self._producer_done = float("-inf")  # monotonic time the producer thread finished
        self.notices: list[str] = []  # what a user should hear once (a refused switch)
        self.on_idle: Callable[[], None] | None = None
        # why run() ended: "max_seconds", "caught_up" (until_idle), or "stop" (a signal, the UI, an error)
        self.ended = ""

    def switch_transport(self, transport: str | None = None) -> str:
        """Ask the consumer (and producer) to move to the other transport at the next batch."""
        target = transport or ("kafka" if self.requested == "file" else "file")
        if target not in TRANSPORTS:
            raise ValueError(f"unknown transport {target!r}")
        self.requested = target
        return target

    def start_producer(self, source: Source, *, max_messages: int | None = None, max_speed: bool = False,
                       on_poll: Callable[[Source, int], None] | None = None) -> None:
        self.source = source
        if self.engine.alerts is not None and not max_speed:
            self.engine.alerts.watch_source(source)  # a source down too long alerts

        def polled(src: Source, sent: int) -> None:
            self.produced = sent
            if on_poll is not None:
                on_poll(src, sent)

        def work() -> None:
            # Only noted here: the consumer's thread publishes it (and owns the consumer).
            sink = open_retrying(lambda: make_sink(self.config, self.transport, stop=self.stop), self.stop,
                                 on_retry=lambda why: setattr(self, "transport_error", safe_text(why)))
            if sink is None:
                return
            switching = _SwitchingSink(self, sink)
            self.producer_sink = sink
            try:
                self.produced = run_producer(source, switching, self.stop, store=self.store,
                                             max_messages=max_messages, max_speed=max_speed, on_poll=polled)
            except Exception:  # noqa: BLE001 - a dead producer is reported, the consumer goes on
                log.exception("producer stopped")
            finally:
                switching.close()
                self._producer_done = time.monotonic()

        self.producer_thread = threading.Thread(target=work, name="producer", daemon=True)
        self.producer_thread.start()

    def run(self, *, max_seconds: float | None = None, on_batch: Callable[[BatchResult], None] | None = None,
            idle_wait: float = 0.2, until_idle: bool = False, on_idle: Callable[[], None] | None = None) -> None:
        """Consume until stopped. `on_batch` follows each stored batch; `on_idle` each read that
        found nothing, so what is shown (a source that went down) does not wait for data.

        The position is committed only after the batch is stored and fsynced. While the store
        cannot be written (disk full, read-only) the batch in hand is held and retried with
        backoff (1 s doubling to 30 s), nothing more is read, and the position stays where it
        was; the problem is said once on stderr and in the log. An exception out of the engine
        ends the run without committing: the batch is read again after a restart.
        """
        started = time.monotonic()
        deadline = None if max_seconds is None else started + max_seconds
        self.on_idle = on_idle
        idle_told = 0.0
        self.ended = "stop"
        try:
            self.consumer = open_retrying(
                lambda: make_consumer(self.config, self.transport, stop=self.stop, deadline=deadline),
                self.stop, deadline=deadline, on_retry=self._unreachable)
            if self.consumer is None:  # stopped (or out of time) while the broker never answered
                if not self.stop.is_set():
                    self.ended = "max_seconds"
                return
            self.transport_error = ""
            while not self.stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    self.ended = "max_seconds"
                    break
                if self.paused.is_set():
                    self.stop.wait(0.1)
                    continue
                if self.requested != self.transport:
                    self._swap()
                lines = self.consumer.read(4096)
                self.consumer.update_lag()
                if not lines:
                    if on_idle is not None and time.monotonic() - idle_told >= 0.5:
                        idle_told = time.monotonic()  # Kafka reads come back empty 50 times a second
                        on_idle()
                    if until_idle and (self.producer_thread is None or not self.producer_thread.is_alive()) \
                            and self.consumer.caught_up(since=self._producer_done + 0.5):
                        self.ended = "caught_up"
                        break
                    if self.transport == "file":
                        self.stop.wait(idle_wait)
                    continue
                result: BatchResult | None
                try:
                    result = self.engine.ingest(lines, default_source=self.transport)
                except StoreWriteError:
                    result = None  # scored; the store holds its lines until the disk takes them
                if not self._store(deadline):
                    break  # stopped (or out of time) while the store could not be written: nothing committed
                if on_batch is not None and result is not None:
                    on_batch(result)
        finally:
            self.stop.set()
            if self.producer_thread is not None:
                self.producer_thread.join(15)
            self.store.flush()
            if self.consumer is not None:
                self.consumer.close()  # commits nothing that was not stored

    def _store(self, deadline: float | None = None) -> bool:
        """engine.sync() and then the transport's commit (only now: what was read is stored), retried
        with backoff while the store or the position file cannot be written; False if stopped or out
        of time (`deadline`, monotonic) first, or at once after a failed fsync: no retry can store
        for sure after one (`mass_tui.store.sync_lost`), so the run ends (ended "store_lost") for a
        restart to read again from the position kept."""
        delay = 1.0
        failed_at: float | None = None
        while True:
            try:
                self.engine.sync()
                self.consumer.commit()
            except OSError as exc:  # StoreWriteError, or the position file on a full disk
                if failed_at is None:
                    failed_at = time.monotonic()
                if not isinstance(exc, StoreWriteError):
                    exc = StoreWriteError(Path(exc.filename or "the position file"), exc)
                self.store_error = f"{exc}; position kept at {self.consumer.committed_text()}"
                if exc.lost:
                    NOTICE.error("%s; stopping", self.store_error)
                    self.ended = "store_lost"
                    return False
                NOTICE.error("%s; retry in %.0f s", self.store_error, delay)
                if self.on_idle is not None:
                    self.on_idle()
                wait = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
                if self.stop.wait(wait):
                    return False
                if deadline is not None and time.monotonic() >= deadline:
                    self.ended = "max_seconds"
                    return False
                delay = min(delay * 2.0, 30.0)
                continue
            if failed_at is not None:
                NOTICE.warning("storing again after %.0f s (%s)", time.monotonic() - failed_at, self.store_error)
                self.store_error = ""
            return True

    def _swap(self) -> None:
        from sources.kafka_transport import BrokerUnavailable

        target = self.requested
        try:
            consumer = make_consumer(self.config, target)
        except BrokerUnavailable as exc:  # the switch is refused; the current transport goes on
            self.requested = self.transport
            log.warning("%s; staying on the %s transport", exc, self.transport)
            self.notices.append(f"{exc}: staying on the {self.transport} transport")
            if self.on_idle is not None:
                self.on_idle()
            return
        log.info("switching transport %s -> %s (detector state kept)", self.transport, target)
        self.consumer.commit()
        self.consumer.close()
        self.consumer, self.transport, self.transport_error = consumer, target, ""

    def transport_status(self) -> str:
        """Why the transport (or the store) does not work right now, or "" while it does."""
        if self.store_error:
            return self.store_error
        if self.transport_error:
            return self.transport_error
        sink = self.producer_sink
        sink_state = getattr(sink, "state", None)
        if sink_state is not None and sink_state.up is False and time.time() - getattr(sink, "error_at", 0.0) < 15.0:
            return f"Kafka producer down: {sink_state.last_error[:80]} (messages wait in its queue)"
        consumer = self.consumer
        state = getattr(consumer, "state", None)
        # librdkafka repeats its error at every failed reconnect (10 s apart at most), so an
        # error older than that means the broker is back, even if no message came since.
        if state is not None and state.up is False and time.time() - getattr(consumer, "error_at", 0.0) < 15.0:
            since = time.strftime("%H:%M:%S", time.localtime(state.down_since)) if state.down_since else "?"
            return f"Kafka down since {since}: {state.last_error[:80]} (reconnecting)"
        return ""

    def _unreachable(self, why: str) -> None:
        self.transport_error = safe_text(why)
        if self.on_idle is not None:
            self.on_idle()


class _SwitchingSink:
    """The producer's sink, reopened on the pipeline's current transport when it changes."""

    def __init__(self, pipeline: Pipeline, sink: Any) -> None:
        self.pipeline = pipeline
        self.sink = sink
        self.kind = pipeline.transport
        self._refused: str | None = None  # a transport that could not be opened

    # In one process, a producer at full speed must not run ahead of the consumer without
    # bound (the file transport would fill the disk): it waits while this far behind.
    MAX_LAG = 32 * 1024 * 1024  # bytes of the file transport; Kafka reports messages, compared the same

    def append(self, messages: list[bytes], keys: list[str] | None = None) -> None:
        pipeline = self.pipeline
        while (consumer := pipeline.consumer) is not None and not pipeline.stop.is_set() \
                and consumer.lag_bytes() > self.MAX_LAG:
            pipeline.stop.wait(0.05)
        target = self.pipeline.requested
        if target != self.kind and target != self._refused:
            from sources.kafka_transport import BrokerUnavailable

            try:
                sink = make_sink(self.pipeline.config, target)
            except BrokerUnavailable:
                self._refused = target  # the consumer refuses the switch too; no retry per message
            else:
                self.sink.flush()
                self.sink.close()
                self.sink, self.kind = sink, target
                self.pipeline.producer_sink = sink
        if target == self.kind:
            self._refused = None
        self.sink.append(messages, keys)

    def flush(self, timeout: float = 10.0) -> int:
        return self.sink.flush(timeout)

    def close(self) -> None:
        try:
            self.sink.close()
        except Exception:  # noqa: BLE001 - closing the producer's transport must not hide the run's outcome
            log.exception("closing the %s producer", self.kind)
