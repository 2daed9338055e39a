"""The Kafka transport (confluent-kafka): keyed producer, group consumer with explicit commits.

Keys are station names, so one station's messages stay in order on one
partition and its detector state lives on one consumer of the group. The
consumer commits only when the caller says the batch is stored (at least
once). The blocking client stays off any event loop: callers run it in a
thread with short timeouts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sources.base import SourceState
from sources.schema import MessageMeta, Messages

log = logging.getLogger(__name__)


class BrokerUnavailable(ConnectionError):
    """The Kafka broker did not answer (down, wrong address): retry later, do not crash."""


def ensure_topic(bootstrap: str, topic: str, partitions: int = 4, timeout: float = 5.0) -> None:
    """Create the topic with `partitions` if it does not exist yet."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        meta = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
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
    """The producer side: idempotent, keyed by station, delivery reports counted."""

    def __init__(self, bootstrap: str, topic: str, client_id: str = "mass") -> None:
        self.topic = topic
        self.delivered = 0
        self.failed = 0
        self.last_error = ""
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
        })

    def _report(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            self.last_error = str(err)
            log.error("kafka delivery failed: %s", err)

    def append(self, messages: list[bytes], keys: list[str] | None = None) -> None:
        for i, value in enumerate(messages):
            key = keys[i].encode() if keys else None
            while True:
                try:
                    self._producer.produce(self.topic, value=value, key=key, on_delivery=self._report)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for outstanding deliveries; returns how many are still in flight."""
        return self._producer.flush(timeout)

    def close(self) -> None:
        self.flush()


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
        }
        config.update(extra or {})
        self._consumer = Consumer(config)
        self._consumer.subscribe([topic])
        self._offsets: dict[int, int] = {}

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
        """Commit what read() returned so far: call after it is stored.

        Asynchronous by default: a commit that fails or is lost in a crash
        only means re-reading a batch the engine then counts as duplicates.
        """
        if not self._offsets:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in self._offsets.items()]
        self._consumer.commit(offsets=offsets, asynchronous=not wait)
        self._offsets.clear()

    def lag(self) -> dict[int, int]:
        """Messages behind the end of the log, per assigned partition (never negative)."""
        out = {}
        for tp in self._consumer.assignment():
            try:
                low, high = self._consumer.get_watermark_offsets(tp, cached=True) or (0, 0)
                pos = self._consumer.position([tp])[0].offset
            except KafkaException:
                continue
            out[tp.partition] = max(0, high - (pos if pos >= 0 else low))
        return out

    def lag_bytes(self) -> int:
        return sum(self.lag().values())

    def close(self) -> None:
        self.commit(wait=True)
        self._consumer.close()
