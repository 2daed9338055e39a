from __future__ import annotations

import json
import subprocess
import sys

import pytest

from detectors.base import Anomaly
from mass_tui.alerts.channels import ChannelError, EmailChannel, SlackChannel, SmsChannel, WebhookChannel
from mass_tui.alerts.dispatch import Dispatcher
from mass_tui.alerts.manager import AlertEvent, AlertManager, AlertRule
from mass_tui.alerts.message import body, sms_text, subject
from mass_tui.alerts.readings import Readings

from .conftest import ROOT, SANDY

H = 3600.0


def gust(ts: float, value: float = 18.0, severity: str = "warning", station: str = "s") -> Anomaly:
    return Anomaly(ts, station, "gust_mps", value, "gust_limit", severity, value / 15, f"gust {value} m/s")


def manager(**kw) -> AlertManager:
    args = {"cooldown_s": 0.5 * H, "repeat_s": 6 * H, "resolve_after_s": 2 * H, "notify_resolved": True}
    args.update(kw)
    return AlertManager([AlertRule("gust", ("gust_limit",))], units={"gust_mps": "m/s"}, **args)


def kinds(events):
    return [(e.kind, e.ts / H) for e in events]


def hourly(first: float, last: float, station: str = "s") -> Readings:
    """Readings of `station` every hour from `first` to `last` hours (inclusive)."""
    return Readings.of_times({station: [t * H for t in range(int(first), int(last) + 1)]})


def test_one_alert_per_episode_then_resolved_in_data_time():
    m = manager()
    events = m.observe([gust(t * H) for t in range(0, 5)], hourly(0, 4))
    assert kinds(events) == [("alert", 0.0)]
    # Two quiet hours of data time end the episode, however fast they are replayed.
    assert kinds(m.observe([], hourly(5, 6))) == [("resolved", 6.0)]


def test_repeat_escalation_and_cooldown():
    m = manager()
    events = m.observe([gust(t * H) for t in range(0, 8)] + [gust(8 * H, 25.0, "critical")], hourly(0, 8))
    assert kinds(events) == [("alert", 0.0), ("repeat", 6.0), ("escalated", 8.0)]
    m.observe([], hourly(9, 10))  # resolved at 10 h
    # A new episode 10 min after the last notification is inside the cooldown: quiet, also when it ends.
    m2 = manager(cooldown_s=5 * H)
    assert kinds(m2.observe([gust(0)], hourly(0, 0))) == [("alert", 0.0)]
    assert kinds(m2.observe([], hourly(1, 2))) == [("resolved", 2.0)]
    assert kinds(m2.observe([gust(3 * H)], hourly(3, 3))) == []
    assert kinds(m2.observe([], hourly(4, 5))) == []
    assert kinds(m2.observe([gust(6 * H)], hourly(6, 6))) == [("alert", 6.0)]


def test_rules_match_detector_prefix_severity_and_variables():
    rule = AlertRule("stat", ("ensemble",), ("temp_c",), "critical")
    a = Anomaly(0, "s", "temp_c", 1.0, "ensemble/spike", "critical", 2.5, "r")
    assert rule.matches(a)
    assert not rule.matches(Anomaly(0, "s", "temp_c", 1.0, "ensemble/spike", "warning", 1.2, "r"))
    assert not rule.matches(Anomaly(0, "s", "humidity_pct", 1.0, "ensemble/spike", "critical", 2.5, "r"))
    assert not rule.matches(Anomaly(0, "s", "temp_c", 1.0, "ensembles", "critical", 2.5, "r"))


def test_stations_have_their_own_episodes_and_clocks():
    m = manager()
    events = m.observe([gust(0, station="a"), gust(0, station="b"), gust(1 * H, station="a")],
                       Readings.of_times({"a": [0, H], "b": [0, H, 2 * H, 3 * H]}))
    assert [(e.kind, e.station) for e in events] == [("alert", "a"), ("alert", "b"), ("resolved", "b")]


def _event() -> AlertEvent:
    a = Anomaly(1351540200.0, "ndbc-44005", "gust_mps", 22.5, "gust_limit", "critical", 1.5,
                "gust 22.5 m/s over the 15 m/s limit")
    return AlertEvent("alert", a.ts, "ndbc-44005", "gust", a, a.ts - 3 * H, 4, "m/s")


def test_message_says_station_variable_value_unit_why_and_both_times():
    e = _event()
    assert subject(e) == "[mass] CRITICAL gust at ndbc-44005: gust_mps 22.5 m/s"
    text = body(e)
    for part in ("ndbc-44005", "gust_mps 22.5 m/s", "gust_limit (critical)", "over the 15 m/s limit",
                 "2012-10-29 19:50 UTC", "local"):
        assert part in text
    assert len(sms_text(e)) <= 160
    long = AlertEvent("alert", e.ts, "x" * 100, "r", Anomaly(e.ts, "x" * 100, "v", 1.0, "d", "warning", 1.0,
                                                             "y" * 300), e.ts, 1)
    assert len(sms_text(long)) == 160


def test_email_is_delivered_over_real_smtp(smtp_server):
    port, received = smtp_server
    EmailChannel("127.0.0.1", port, "mass@example.org", ["ops@example.org"]).send(_event())
    assert len(received) == 1
    rcpt, msg = received[0]
    assert rcpt == ["ops@example.org"] and msg["Subject"].startswith("[mass] CRITICAL gust")
    SmsChannel("+1 (555) 010-2030", "verizon", host="127.0.0.1", port=port, sender="mass@example.org").send(_event())
    rcpt, msg = received[1]
    assert rcpt == ["5550102030@vtext.com"] and len(msg.get_content().strip()) <= 160


def test_credentials_are_never_sent_without_tls(smtp_server):
    port, received = smtp_server
    ch = EmailChannel("127.0.0.1", port, "mass@example.org", ["ops@example.org"], user="me", password="secret")
    with pytest.raises(ChannelError, match="offers no TLS"):
        ch.send(_event())
    assert received == []


def test_failing_webhook_is_retried_with_backoff_and_does_not_block(http_sink):
    url, state = http_sink
    state["statuses"] = [500, 500, 200]
    d = Dispatcher([WebhookChannel(url, timeout=1.0)], max_attempts=5, retry_seconds=0.5)
    d.submit(_event())
    # Submit never waits for delivery: delivery takes three posts with backoffs of 0.5 s and 1 s between them.
    assert len(state["posts"]) < 3
    d.close(timeout=10.0)
    assert [s for s, _ in state["posts"]] == [500, 500, 200]
    assert state["posts"][-1][1]["station"] == "ndbc-44005"
    st = d.status["webhook"]
    assert st.sent == 1 and st.retries == 2 and st.ok


def test_channel_that_times_out_is_given_up_and_reported(http_sink):
    url, state = http_sink
    state["statuses"] = ["hang"]
    d = Dispatcher([SlackChannel(url, timeout=0.3)], max_attempts=2, retry_seconds=0.05)
    d.submit(_event())
    d.close(timeout=5.0)
    st = d.status["slack"]
    assert st.failed == 1 and st.sent == 0 and not st.ok and "Timeout" in st.last_error


def test_queue_is_bounded_and_a_stuck_channel_does_not_block_submit():
    import threading

    release = threading.Event()

    class Stuck:
        name = "stuck"

        def send(self, event):
            release.wait(5)

    d = Dispatcher([Stuck()], max_pending=3, max_attempts=1)
    for _ in range(10):
        d.submit(_event())
    # Submits were dropped while the channel was still stuck: submit does not wait for the channel.
    assert d.dropped >= 6 and not release.is_set()
    release.set()
    d.close(timeout=5.0)
    st = d.status["stuck"]
    assert d.dropped >= 6 and st.sent + d.dropped == 10


def _env(port: int, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
            "ALERT_EMAIL_FROM": "mass@example.org", "ALERT_EMAIL_TO": "ops@example.org,duty@example.org", **extra}


def test_sandy_replay_alerts_once_per_episode_and_alerts_jsonl_matches_the_mails(tmp_path, smtp_server):
    port, received = smtp_server
    proc = subprocess.run(
        [sys.executable, "-m", "mass_tui", "replay", str(SANDY), "--headless", "--max", "--alerts", "-q",
         "--station", "ndbc-44005"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=_env(port),
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    journal = [json.loads(x) for x in (tmp_path / "data" / "db" / "alerts.jsonl").read_text().splitlines()]
    alerts = [r for r in journal if r["kind"] != "delivery"]
    deliveries = [r for r in journal if r["kind"] == "delivery"]
    anomalies = [json.loads(x) for x in (tmp_path / "data" / "db" / "anomalies.jsonl").read_text().splitlines()]
    assert summary["alerts"] == len(alerts) and summary["muted"] == 0
    # alerts.jsonl says which notices went where: one delivery record per mail, each notice in one of them.
    assert [d["channel"] for d in deliveries] == ["email"] * len(received)
    assert all(d["outcome"] == "sent" for d in deliveries)
    assert sorted(i for d in deliveries for i in d["notices"]) == sorted(a["id"] for a in alerts)
    assert summary["deliveries"]["email"]["sent"] == len(received) == summary["notifications"]
    subjects = sorted(msg["Subject"] for _, msg in received)
    assert all(rcpt == ["ops@example.org", "duty@example.org"] for rcpt, _ in received)
    assert len(subjects) == len(received)
    for rule in ("gust", "pressure-fall"):
        starts = [a for a in alerts if a["rule"] == rule and a["kind"] == "alert"]
        readings = [a for a in anomalies if a["detector"] == {"gust": "gust_limit", "pressure-fall":
                                                               "pressure_tendency"}[rule]]
        ends = [a for a in alerts if a["rule"] == rule and a["kind"] == "resolved"]
        assert starts and len(starts) == len(ends)  # every episode alerted once and resolved once
        notices = [a for a in alerts if a["rule"] == rule and a["kind"] != "resolved"]
        assert len(notices) < len(readings)  # not once per reading
        if rule == "gust":
            assert len(readings) > 4 * len(notices)
    assert any(a["kind"] == "alert" and a["rule"] == "gust" and a["ts"].startswith("2012-10-29") for a in alerts)
    assert any(a["rule"] == "pressure-fall" and a["ts"].startswith("2012-11-07") for a in alerts)


def test_alert_test_command_sends_through_every_channel(tmp_path, smtp_server, http_sink):
    port, received = smtp_server
    url, state = http_sink
    proc = subprocess.run([sys.executable, "-m", "mass_tui", "alert", "test"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=_env(port, ALERT_WEBHOOK_URL=url))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "email: sent" in proc.stdout and "webhook: sent" in proc.stdout
    assert len(received) == 1 and len(state["posts"]) == 1
    state["statuses"] = [500]
    proc = subprocess.run([sys.executable, "-m", "mass_tui", "alert", "test"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=_env(port, ALERT_WEBHOOK_URL=url))
    assert proc.returncode == 1 and "webhook: FAILED" in proc.stdout
