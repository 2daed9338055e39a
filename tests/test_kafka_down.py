"""A Kafka broker that is down (never up, or gone mid-run): `mass produce` still prints its summary,
and no stop path (--max-seconds, a signal, close) waits on a broker known to be down."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

import sources.kafka_transport as kt
from mass_tui.config import load_config
from mass_tui.service import run_consumer
from sources.kafka_transport import KafkaSink, KafkaSource, ensure_topic

from .conftest import ROOT, free_port
from .conftest import wait_for as _wait
from .kafka_broker import numbered_messages


def _gone() -> str:
    return f"127.0.0.1:{free_port()}"  # a loopback port nothing listens on


class _Spy:
    """The real client, noting the arguments of the calls named in `noted`."""

    def __init__(self, client, *noted: str) -> None:
        self.client = client
        self.calls: list[tuple[str, tuple, dict]] = []
        for name in noted:
            setattr(self, name, self._noting(name))

    def _noting(self, name: str):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return getattr(self.client, name)(*args, **kwargs)
        return call

    def __getattr__(self, name: str):
        return getattr(self.client, name)


def test_produce_prints_its_summary_when_the_broker_never_answers(tmp_path):
    """Before: exit 1 with nothing on stdout. Now the summary line, nothing produced or delivered, the
    transport state down with why, and exit 1 (nothing could be produced)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
           "MASS_LOG_DIR": str(tmp_path / "logs"), "KAFKA_BOOTSTRAP_SERVERS": _gone()}
    out = subprocess.run([sys.executable, "-m", "mass_tui", "produce", "--source", "simulator:smoke", "--transport",
                          "kafka", "--max-seconds", "2"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["produced"] == summary["delivered"] + summary["undelivered"]
    assert summary["delivered"] == 0
    assert summary["transport_state"]["up"] is False
    assert "does not answer" in summary["transport_state"]["last_error"]
    assert "nothing produced" in out.stderr  # the stderr line stays


def test_run_on_a_broker_never_up_ends_at_max_seconds_without_long_metadata_waits(tmp_path, monkeypatch):
    """The run overshot --max-seconds by a whole 5 s metadata request begun just before the deadline.
    Every request is now one short slice, and the summary says the time limit ended it."""
    asked: list[float] = []

    class NotingAdmin(kt.AdminClient):
        def list_topics(self, *args, **kwargs):
            asked.append(kwargs.get("timeout", args[1] if len(args) > 1 else None))
            return super().list_topics(*args, **kwargs)

    monkeypatch.setattr(kt, "AdminClient", NotingAdmin)
    cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs"),
                                 "KAFKA_BOOTSTRAP_SERVERS": _gone()}, dotenv_file=None)
    summary = run_consumer(cfg, transport="kafka", max_seconds=1.5, idle_wait=0.05)
    assert summary["ended"] == "max_seconds"
    assert "does not answer" in summary["transport_error"]
    assert asked and all(t <= kt.ASK_SLICE for t in asked), asked


def test_ensure_topic_gives_up_at_a_stop_between_slices():
    stop = threading.Event()
    stop.set()
    try:
        ensure_topic(_gone(), "t", timeout=30.0, stop=stop)
    except kt.BrokerUnavailable as exc:
        assert "does not answer" in str(exc)
    else:
        raise AssertionError("a broker that is gone answered")


def test_consumer_close_does_not_commit_to_a_broker_known_down(own_kafka_broker):
    """A final synchronous commit to a gone coordinator made librdkafka's close wait (6 s and more)."""
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    ensure_topic(own_kafka_broker.bootstrap, topic)
    sink = KafkaSink(own_kafka_broker.bootstrap, topic)
    sink.append(numbered_messages(8), ["s"] * 8)
    assert sink.flush(30) == 0
    source = KafkaSource(own_kafka_broker.bootstrap, topic, group)
    got: list[bytes] = []
    assert _wait(lambda: got.extend(source.read(100, timeout=0.2)) or len(got) >= 8, 30)
    source.commit(wait=True)
    own_kafka_broker.kill()
    assert _wait(lambda: source.read(100, timeout=0.1) is not None and source.state.up is False, 30)
    spy = source._consumer = _Spy(source._consumer, "commit", "close")
    source.close()
    assert [name for name, _, _ in spy.calls] == ["close"], spy.calls


_down_sink: KafkaSink | None = None


def _sink_known_down() -> KafkaSink:
    global _down_sink
    if _down_sink is None:
        _down_sink = KafkaSink(_gone(), "gone")
        _down_sink.append([b'{"a": 0}'])
        assert _wait(lambda: _down_sink._producer.poll(0.05) is not None and _down_sink.broker_down, 30)
    return _down_sink


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 5), asked=st.floats(0.0, 60.0), closing=st.booleans())
def test_flush_and_close_never_wait_on_a_broker_known_down(n, asked, closing):
    """Whatever timeout is asked for, a flush or close while the broker is known down takes the
    reports already in, and every message without a success report is counted undelivered."""
    sink = _sink_known_down()
    real = sink._producer.client if isinstance(sink._producer, _Spy) else sink._producer
    spy = sink._producer = _Spy(real, "flush")
    sink.append([b'{"a": 1}'] * n)
    left = sink.close(timeout=asked) if closing else sink.flush(asked)
    assert [args[0] if args else kw["timeout"] for _, args, kw in spy.calls] == [0.0]
    assert left == sink.undelivered == sink.produced
    assert sink.delivered == 0
