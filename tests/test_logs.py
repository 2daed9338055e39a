"""Logging: repeated warnings rate-limited per kind with a count, secrets redacted from every
record (message, arguments, traceback), and text from outside made inert."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from mass_tui.logs import RecordFilter
from sources.base import SourceState
from sources.kafka_transport import ensure_topic
from sources.text import REDACTED, Redactor, has_controls, safe_text

from .conftest import ROOT


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _record(msg: str, *args, level: int = logging.WARNING, name: str = "x") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_of_a_kind_pass_once_per_period_with_a_count():
    clock = Clock()
    f = RecordFilter(every=30.0, clock=clock)
    passed = []
    for i in range(100):  # librdkafka's every-50-ms report, for 5 s; only the port and timing vary
        clock.t += 0.05
        rec = _record("kafka: Connect to 127.0.0.1:%d failed (after %dms)", 9092, i % 3)
        if f.filter(rec):
            passed.append(rec.getMessage())
    assert len(passed) == 1
    clock.t += 30.0
    rec = _record("kafka: Connect to 127.0.0.1:%d failed (after %dms)", 9092, 0)
    assert f.filter(rec) and "(repeated 99 times in the last 35 s)" in rec.getMessage()
    assert f.filter(_record("another kind of warning"))  # kinds are counted apart
    for _ in range(5):
        assert f.filter(_record("an event", level=logging.INFO))  # below WARNING: never held back


def test_librdkafkas_count_of_errors_it_held_back_does_not_make_a_new_kind():
    """librdkafka writes a repeated error again with ", N identical error(s) suppressed": the same
    kind, held back like any repeat (the down-broker test saw it logged twice in 12 s)."""
    f = RecordFilter(every=30.0, clock=Clock())
    base = ("FAIL [mass#consumer-2] [thrd:127.0.0.1:4242/bootstrap]: Connect failed: Connection refused "
            "(after 0ms in state CONNECT")
    assert f.filter(_record(base + ")"))
    assert not f.filter(_record(base + ", 1 identical error(s) suppressed)"))
    assert not f.filter(_record(base.replace("0ms", "3ms") + ", 12 identical error(s) suppressed)"))
    assert f.filter(_record(base.replace("refused", "reset") + ")"))  # another error is another kind


def test_a_record_gets_one_decision_for_every_handler():
    f = RecordFilter(every=30.0, clock=Clock())
    first = _record("disk full")
    assert f.filter(first) and f.filter(first)  # the file and stderr handlers both write it
    second = _record("disk full")
    assert not f.filter(second) and not f.filter(second)


def test_secrets_are_redacted_from_message_arguments_and_traceback():
    f = RecordFilter(Redactor(["s3cr3t-key", "https://hooks.example/T1/B2/tok"]), clock=Clock())
    rec = _record("GET %s?appid=%s", "https://api.example/weather", "s3cr3t-key", level=logging.INFO)
    assert f.filter(rec) and rec.getMessage() == f"GET https://api.example/weather?appid={REDACTED}"
    try:
        raise ConnectionError("POST https://hooks.example/T1/B2/tok refused")
    except ConnectionError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert f.filter(rec)
    text = logging.Formatter().format(rec)
    assert "tok" not in text.replace("Traceback", "") and REDACTED in text


def test_httpx_request_lines_are_not_logged(tmp_path):
    from mass_tui.logs import setup_logging

    setup_logging(tmp_path, stdout_events=False, secrets=["k" * 20])
    logging.getLogger("httpx").info("HTTP Request: GET https://api.example/?appid=%s", "k" * 20)
    logging.getLogger("mass.test").warning("key %s", "k" * 20)
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = (tmp_path / "mass.log").read_text()
    assert "HTTP Request" not in text and "k" * 20 not in text and f"key {REDACTED}" in text


@given(st.text())
def test_property_safe_text_leaves_no_control_or_bidi_character(text):
    out = safe_text(text)
    assert not has_controls(out)
    assert all(not (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E
                    or 0x2066 <= ord(c) <= 0x2069) for c in out)
    if not has_controls(text):
        assert out == text  # ordinary text, accents and emoji included, is left alone


@given(st.text(min_size=4, max_size=30), st.text(max_size=30), st.text(max_size=30))
def test_property_a_redacted_secret_never_survives(secret, before, after):
    redact = Redactor([secret])
    assert secret not in redact(before + secret + after)


def test_source_state_keeps_last_error_inert():
    st_ = SourceState("x")
    st_.last_error = "HTTP 500: \x1b]0;PWNED\x07\x1b[31mred\x1b[2J\u202egnp.exe" + "x" * 1000
    assert not has_controls(st_.last_error) and "\\x1b]0;PWNED\\x07" in st_.last_error
    assert len(st_.last_error) <= 300


def test_a_down_broker_is_logged_a_few_times_not_every_50_ms(tmp_path, own_kafka_broker):
    """While the broker is down the consumer used to log a warning about every 50 ms (97 lines in 5 s);
    now one line per kind per 30 s, and librdkafka's own lines go to the log, not to stderr."""
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    ensure_topic(own_kafka_broker.bootstrap, topic)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
           "MASS_LOG_DIR": str(tmp_path / "logs"), "KAFKA_BOOTSTRAP_SERVERS": own_kafka_broker.bootstrap,
           "KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": group}
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "run", "--headless", "-q", "--transport", "kafka",
                             "--max-seconds", "12"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = tmp_path / "logs" / "mass.log"
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and "consumer started" in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        own_kafka_broker.stop()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["transport"] == "kafka"
    lines = [x for x in log.read_text().splitlines() if " WARNING " in x or " ERROR " in x]
    kafka_lines = [x for x in lines if "kafka" in x.lower()]
    assert kafka_lines, "the broker going down was logged"
    kinds: dict[str, int] = {}
    for line in kafka_lines:
        kind = "".join(c for c in line.split(": ", 1)[-1] if not c.isdigit())[:120]
        kinds[kind] = kinds.get(kind, 0) + 1
    assert max(kinds.values()) <= 1, kinds  # under 30 s of outage: each kind once
    assert len(kafka_lines) <= 10, kafka_lines
    assert "|FAIL|" not in err  # librdkafka's lines no longer go raw to stderr


def test_case_tui_injection_headless_lines_and_log_are_inert(tmp_path, shared):
    """tests/data/cases/reliability/tui-injection.jsonl replayed headless: the per-anomaly lines on
    stdout and in logs/mass.log carry no raw escape, OSC or bidi character (the UI's own escaping
    is the UI's part of this case)."""
    case = shared / "cases" / "reliability" / "tui-injection.jsonl"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
           "MASS_LOG_DIR": str(tmp_path / "logs")}
    done = subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(case), "--headless", "--max"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "logs" / "mass.log").read_text()
    assert "ANOMALY" in done.stdout and "ANOMALY" in log
    for text in (done.stdout, done.stderr, log):
        assert not has_controls(text.replace("\n", "")), [line for line in text.splitlines() if has_controls(line)][:3]
