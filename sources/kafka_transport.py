"""The Kafka transport (confluent-kafka): keyed producer, group consumer with explicit commits.

Keys are station names, so one station's messages stay in order on one
partition and its detector state lives on one consumer of the group. The
consumer commits only when the caller says the batch is stored (at least
once). The blocking client stays off any event loop: callers run it in a
thread with short timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sources.base import SourceState
from sources.schema import MessageMeta, Messages

log = logging.getLogger(__name__)
# librdkafka's own log lines go through logging (rate-limited, into the log file) instead of
# straight to stderr, where they would scroll over the terminal UI.
LIBRDKAFKA = logging.getLogger("librdkafka")


class BrokerUnavailable(ConnectionError):
    """The Kafka broker did not answer (down, wrong address): retry later, do not crash."""


# How long one metadata request may block before a stop or a deadline is looked at again.
ASK_SLICE = 0.5


def ensure_topic(bootstrap: str, topic: str, partitions: int = 4, timeout: float = 5.0, *,
                 stop: threading.Event | None = None, deadline: float | None = None) -> None:
    """Create the topic with `partitions` if it does not exist yet.

    Waits for the broker up to `timeout` s, and never past `deadline` (monotonic) or a set `stop`:
    the metadata request is asked in slices of ASK_SLICE s, so a stop (a signal, --max-seconds)
    is not held up by a broker that does not answer. Raises `BrokerUnavailable` if it did not answer.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": LIBRDKAFKA})
    end = time.monotonic() + timeout if deadline is None else min(time.monotonic() + timeout, deadline)
    while True:
        asked = time.monotonic()
        wait = max(0.05, min(ASK_SLICE, end - asked))  # a zero timeout only reads what is cached
        try:
            meta = admin.list_topics(timeout=wait)
            break
        except KafkaException as exc:
            now = time.monotonic()
            if now >= end or (stop is not None and stop.is_set()):
                raise BrokerUnavailable(f"Kafka broker {bootstrap} does not answer ({exc.args[0].str()})") from None
            rest = min(wait - (now - asked), end - now)  # an answer that came at once: no busy loop
            if rest > 0 and (stop.wait(rest) if stop is not None else time.sleep(rest)):
                raise BrokerUnavailable(f"Kafka broker {bootstrap} does not answer ({exc.args[0].str()})") from None
    if topic in meta.topics and not meta.topics[topic].error:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for fut in futures.values():
        try:
            fut.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


class KafkaSink:
    """The producer side: idempotent, keyed by station, every delivery report counted.

    `produced` counts the messages handed to librdkafka, `delivered` and
    `failed` their delivery reports; `undelivered` is what has no success
    report (failed, or still queued when the last flush gave up). `state` is
    down while the broker is unreachable or deliveries fail, as librdkafka
    reports it (its `error_cb` and delivery reports), and up again at the next
    delivery.
    """

    # How long append() waits for room in librdkafka's queue before giving the rest back.
    QUEUE_WAIT = 1.0

    def __init__(self, bootstrap: str, topic: str, client_id: str = "mass") -> None:
        self.topic = topic
        self.produced = 0
        self.delivered = 0
        self.failed = 0
        self.last_error = ""
        self.state = SourceState("kafka producer")
        self.error_at = 0.0
        self._waited_out: int | None = None  # `produced` when a flush last waited its whole time in vain
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
            "error_cb": self._on_error,
            "logger": LIBRDKAFKA,
        })

    @property
    def undelivered(self) -> int:
        return self.produced - self.delivered

    def _on_error(self, err: KafkaError) -> None:
        self.error_at = time.time()
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE) or err.fatal():
            self.state.mark_down(str(err), None)
            log.warning("kafka producer: %s (librdkafka reconnects with backoff)", err)

    def _report(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered += 1
            if self.state.up is not True:
                self.state.mark_up()
        else:
            self.failed += 1
            self.last_error = str(err)
            self.state.mark_down(f"delivery failed: {err}", None)
            log.error("kafka delivery failed: %s", err)

    def append(self, messages: list[bytes], keys: list[str] | None = None) -> None:
        """Queue messages for delivery. If librdkafka's queue stays full for QUEUE_WAIT seconds
        (the broker is gone), raises `QueueFull` saying how many were queued: the caller keeps
        the rest and tries again."""
        for i, value in enumerate(messages):
            key = keys[i].encode() if keys else None
            waited = 0.0
            while True:
                try:
                    self._producer.produce(self.topic, value=value, key=key, on_delivery=self._report)
                    self.produced += 1
                    break
                except BufferError:  # local queue full: let deliveries drain
                    if waited >= self.QUEUE_WAIT:
                        raise QueueFull(i, f"Kafka producer queue full ({len(self._producer)} messages "
                                           f"waiting; broker down?)") from None
                    self._producer.poll(0.05)
                    waited += 0.05
        self._producer.poll(0)

    @property
    def broker_down(self) -> bool:
        """librdkafka said the broker cannot be reached (or a delivery failed), and no delivery since."""
        return self.state.up is False

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to `timeout` s for outstanding deliveries; returns how many are still in flight.
        While the broker is known down (`broker_down`) it does not wait: the delivery reports
        already in are taken, and what is left is counted undelivered (a stop is not held up by
        a broker that is gone)."""
        self._producer.poll(0)  # the error and delivery reports already in, so `broker_down` is current
        if self.broker_down:
            timeout = 0.0
        left = self._producer.flush(timeout)
        # a flush that waited its whole time in vain: what it waited for is not coming (broker gone)
        self._waited_out = self.produced if left and timeout > 0 else None
        return left

    def close(self, timeout: float = 10.0) -> int:
        """Flush (up to `timeout` s); returns how many messages remain undelivered. Right after a
        flush that waited its whole time for the same messages (`mass produce` flushes before it
        closes), only the delivery reports already in are taken: waiting again doubled the exit
        of a producer stopped while the broker was down (10 s + 10 s)."""
        self.flush(0.0 if self._waited_out == self.produced else timeout)
        return self.undelivered

    def summary(self) -> dict[str, Any]:
        return {"produced": self.produced, "delivered": self.delivered, "failed": self.failed,
                "undelivered": self.undelivered, "state": self.state.to_dict()}


class QueueFull(BufferError):
    """The producer's queue stayed full: `sent` messages of the batch were queued, the rest were not."""

    def __init__(self, sent: int, message: str) -> None:
        super().__init__(message)
        self.sent = sent


def _meta(msg: Any) -> MessageMeta:
    kind, stamp = msg.timestamp()
    return MessageMeta(topic=msg.topic() or "", partition=msg.partition(), offset=msg.offset(), key=msg.key(),
                       timestamp_ms=stamp if kind != TIMESTAMP_NOT_AVAILABLE and stamp > 0 else None)


class KafkaSource:
    """The consumer side, with the same read/commit/lag/close surface as FileTail."""

    def __init__(self, bootstrap: str, topic: str, group_id: str, client_id: str = "mass",
                 extra: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self.state = SourceState("kafka")
        self.error_at = 0.0  # wall time of librdkafka's last error report
        config = {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "client.id": client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # A group's first assignment follows session.timeout.ms; these keep start-up quick.
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 10,  # latency follows it; 0 or 1 starves the fetcher
            "fetch.queue.backoff.ms": 10,
            "error_cb": self._on_error,
            "logger": LIBRDKAFKA,
        }
        config.update(extra or {})
        self._consumer = Consumer(config)
        self._consumer.subscribe([topic])
        self._offsets: dict[int, int] = {}  # partition -> next offset, read but not yet committed
        self._committed: dict[int, int] = {}  # partition -> next offset, committed after storing
        self._lag = 0
        self._lag_at = float("-inf")
        self._caught_up = False

    def _on_error(self, err: KafkaError) -> None:
        st = self.state
        st.last_error = str(err)
        self.error_at = time.time()
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            if st.up is not False:
                st.down_since = time.time()
            st.up = False
            st.failures += 1
            log.warning("kafka: %s (librdkafka reconnects with backoff)", err)

    def read(self, max_lines: int = 1000, timeout: float = 0.02) -> Messages:
        """Messages available now, as a list of values whose `.meta` holds each one's topic,
        partition, offset, key and record timestamp (the engine takes the key as station and
        the timestamp as time when the value lacks them, and keeps them in quarantine records)."""
        # consume() waits its whole timeout unless the batch fills: a short
        # timeout keeps a trickle of messages from waiting for company.
        msgs = self._consumer.consume(num_messages=max_lines, timeout=timeout)
        out = Messages()
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self._on_error(err)
                continue
            out.append(msg.value() or b"")
            out.meta.append(_meta(msg))
            self._offsets[msg.partition()] = msg.offset() + 1
        if out:
            self.state.up, self.state.down_since = True, None
            self.state.last_ok = time.time()
        return out

    def commit(self, wait: bool = False) -> None:
        """Commit what read() returned so far: call after it is stored, and only then.

        Asynchronous by default: a commit that fails or is lost in a crash
        only means re-reading a batch the engine then counts as duplicates.
        """
        if not self._offsets:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in self._offsets.items()]
        self._committed.update(self._offsets)
        self._offsets.clear()
        try:
            self._consumer.commit(offsets=offsets, asynchronous=not wait)
        except KafkaException as exc:  # nothing to commit, or the broker is gone: read again later
            log.warning("kafka commit failed: %s", exc)

    def committed_text(self) -> str:
        """The committed offsets, for a person: `topic T offsets {partition: next offset}`."""
        return f"topic {self.topic} offsets {dict(sorted(self._committed.items()))}"

    def lag(self) -> dict[int, int]:
        """Messages behind the end of the log, per assigned partition (never negative).
        Uses the consumer handle: call from the consumer's thread only (`update_lag`)."""
        return {p: behind for p, (behind, _known) in self._lag_detail().items()}

    def _lag_detail(self) -> dict[int, tuple[int, bool]]:
        """partition -> (messages behind, whether the end of its log is known yet)."""
        out = {}
        for tp in self._consumer.assignment():
            try:
                low, high = self._consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
                pos = self._consumer.position([tp])[0].offset
            except KafkaException:
                continue
            known = high >= 0 and (pos >= 0 or high == low)  # no fetch answered yet: the end is unknown
            out[tp.partition] = (max(0, high - (pos if pos >= 0 else low)), known)
        return out

    def update_lag(self, every: float = 0.5) -> None:
        """Publish the lag (at most every `every` s); the consumer's thread calls this between
        reads. No other thread touches the handle: it blocks while the consumer polls."""
        now = time.monotonic()
        if now - self._lag_at < every:
            return
        self._lag_at = now
        try:
            detail = self._lag_detail()
        except KafkaException:
            return
        self._lag = sum(behind for behind, _known in detail.values())
        self._caught_up = bool(detail) and self._lag == 0 and all(known for _behind, known in detail.values())

    def lag_bytes(self) -> int:
        """The lag in messages, as last published by the consumer's thread (any thread may ask)."""
        return self._lag

    def caught_up(self, since: float = float("-inf")) -> bool:
        """Partitions assigned, the end of each known and nothing behind, as published by an update
        made after `since` (monotonic; a producer that just finished: its last messages count)."""
        return self._caught_up and self._lag_at >= since

    def close(self) -> None:
        """Leave the group. Commits only what `commit()` was called for (stored), synchronously, so
        a batch read but not stored (the engine raised, a stop while the disk was full) is read again.

        While the broker is known down (librdkafka reported it, and no message came since) there is
        no final commit: it cannot reach the coordinator, and librdkafka's close then waited for it
        (6 s and more, past --max-seconds). The positions committed after earlier batches stand, so
        at most the last batch is read again (counted as duplicates, not stored twice)."""
        if self.state.up is False:
            if self._committed:
                log.warning("kafka broker down at close: no final commit (the last batch may be read again)")
            self._offsets.clear()
            self._consumer.close()
            return
        try:
            assigned = {tp.partition for tp in self._consumer.assignment()}
        except KafkaException:
            assigned = set()
        # Partitions another consumer of the group took over are its to commit now.
        offsets = [TopicPartition(self.topic, p, o) for p, o in self._committed.items() if p in assigned]
        if offsets:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                log.warning("kafka final commit failed (the last batch may be read again): %s", exc)
        self._offsets.clear()
        self._consumer.close()
