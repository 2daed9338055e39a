"""Delivery: one queue per channel (a hanging SMTP server holds back only email), every outcome counted,
standard payloads checked by independent readers (a JSON Schema of Alertmanager's webhook, the
CloudEvents SDK), the exec channel, and mail headers that data cannot break."""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from detectors.base import Anomaly
from mass_tui.alerts.channels import ChannelError, EmailChannel, ExecChannel, WebhookChannel
from mass_tui.alerts.dispatch import Dispatcher
from mass_tui.alerts.journal import Journal
from mass_tui.alerts.model import AlertEvent, Notification, fingerprint, group_key
from mass_tui.alerts.payloads import alertmanager
from tests.conftest import wait_for

SCHEMA = Path(__file__).parent / "schemas" / "alertmanager_webhook_v4.schema.json"


def notice(i: int = 0, kind: str = "alert", station: str | None = None) -> AlertEvent:
    station = station or f"st-{i:02d}"
    a = Anomaly(1351540200.0 + i, station, "gust_mps", 18.0 + i / 10, "gust_limit", "warning", 1.2,
                f"gust {18.0 + i / 10:.1f} m/s over the 15 m/s limit")
    labels = {"station": station, "source": "ndbc", "kind": "weather", "alertname": "gust", "rule": "gust",
              "severity": "warning", "detector": "gust_limit", "variable": "gust_mps", "room-name": "x"}
    return AlertEvent(kind, a.ts, station, "gust", a, a.ts - 600, 3, "m/s", episode=f"ep{i:010d}", labels=labels,
                      identity={"station": station, "alertname": "gust"})


def group(n: int) -> Notification:
    return Notification(group_key({"rule": "gust"}), {"rule": "gust"}, [notice(i) for i in range(n)])


class HangingSmtp:
    """A TCP server on loopback that accepts connections and never says a word (an SMTP server that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def hanging_smtp():
    server = HangingSmtp()
    try:
        yield server
    finally:
        server.close()


def test_a_hanging_smtp_server_holds_back_only_email(hanging_smtp, http_sink, tmp_path):
    """32 alerts: the webhook gets all 32 while email hangs; at exit the email deliveries are counted
    as abandoned, and alerts.jsonl says where each notification went."""
    url, state = http_sink
    journal = Journal(tmp_path)
    outcomes: list[tuple[str, str]] = []

    def on_outcome(channel, notification, outcome, attempts, error):
        outcomes.append((channel, outcome))
        journal.delivery(channel, notification, outcome, attempts, error)

    email = EmailChannel("127.0.0.1", hanging_smtp.port, "mass@example.org", ["ops@example.org"], timeout=30.0)
    d = Dispatcher([email, WebhookChannel(url, timeout=5.0)], on_outcome=on_outcome)
    for i in range(32):
        d.submit(Notification.of(notice(i)))
    assert wait_for(lambda: len(state["posts"]) == 32)
    assert d.status["email"].sent == 0 and d.workers["email"].pending == 32  # one in flight, 31 queued
    abandoned = d.close(timeout=0.5)
    assert abandoned == {"email": 32, "webhook": 0}
    assert d.status["webhook"].sent == 32 and d.status["email"].abandoned == 32
    journal.close()
    records = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert sorted((r["channel"], r["outcome"]) for r in records) == sorted(outcomes)
    assert sum(r["outcome"] == "abandoned" and r["channel"] == "email" for r in records) == 32
    assert {i for r in records if r["channel"] == "webhook" for i in r["notices"]} == \
        {notice(i).id for i in range(32)}


def test_a_full_queue_drops_and_counts_per_channel(http_sink):
    release = threading.Event()

    class Stuck:
        name = "stuck"

        def send(self, notification):
            release.wait(10)

    url, state = http_sink
    got: list[str] = []
    d = Dispatcher([Stuck(), WebhookChannel(url, timeout=5.0)], max_pending=3, max_attempts=1,
                   on_outcome=lambda ch, n, outcome, a, e: got.append(f"{ch}:{outcome}"))
    for i in range(10):
        d.submit(notice(i))
    assert d.status["stuck"].dropped >= 6
    web = d.status["webhook"]
    # While the stuck channel is stuck, the webhook delivers everything its queue took.
    assert wait_for(lambda: web.sent == 10 - web.dropped) and len(state["posts"]) == web.sent
    release.set()
    d.close(timeout=10.0)
    st = d.status["stuck"]
    assert st.sent + st.dropped == 10 and got.count("stuck:dropped") == st.dropped
    assert d.status["webhook"].sent + d.status["webhook"].dropped == 10


def test_alertmanager_webhook_body_passes_a_validating_receiver(tmp_path):
    """A receiver that answers 400 to any body not valid against the schema of Alertmanager's webhook JSON."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    accepted: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            errors = list(jsonschema.Draft202012Validator(schema).iter_errors(body))
            self.send_response(400 if errors else 200)
            self.end_headers()
            if not errors:
                accepted.append(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
        ch = WebhookChannel(url, format="alertmanager", external_url="http://mass.example.org:9108")
        n = group(3)
        n.notices.append(notice(7, kind="resolved"))
        ch.send(n)
        with pytest.raises(ChannelError, match="400"):  # the receiver does refuse what is not valid
            WebhookChannel(url).send(n)  # mass's own format is not Alertmanager's
    finally:
        server.shutdown()
        server.server_close()
    body = accepted[0]
    assert body["status"] == "firing" and len(body["alerts"]) == 4
    assert body["groupLabels"] == {"rule": "gust"} and body["commonLabels"]["alertname"] == "gust"
    firing, resolved = body["alerts"][0], body["alerts"][3]
    assert firing["endsAt"] == "0001-01-01T00:00:00Z" and resolved["status"] == "resolved"
    assert resolved["endsAt"] == "2012-10-29T19:50:07Z" and "room_name" in firing["labels"]
    assert firing["fingerprint"] == fingerprint({"station": "st-00", "alertname": "gust"})
    assert firing["generatorURL"] == "http://mass.example.org:9108/episodes/ep0000000000"


def test_fingerprint_is_prometheus_labelset_fingerprint():
    # The empty label set hashes to FNV-1a's offset basis, as LabelSet{}.Fingerprint().
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"a": "b"}) == fingerprint({"a": "b"}) != fingerprint({"a": "c"})
    assert alertmanager(group(1))["alerts"][0]["fingerprint"] == notice(0).fingerprint


def test_cloudevents_read_back_by_the_sdk(http_sink):
    from cloudevents.core.formats.json import JSONFormat

    url, state = http_sink
    WebhookChannel(url, format="cloudevents").send(group(1))
    WebhookChannel(url, format="cloudevents").send(group(2))
    one, batch = state["posts"][0][1], state["posts"][1][1]
    fmt = JSONFormat()
    event = fmt.read(None, json.dumps(one))
    assert event.get_specversion() == "1.0" and event.get_type() == "org.mass-monitor.alert.alert"
    assert event.get_subject() == "st-00" and event.get_data()["station"] == "st-00"
    assert [fmt.read(None, json.dumps(e)).get_id() for e in batch] == [notice(0).id, notice(1).id]


def test_cloudevents_of_anomalies():
    from cloudevents.core.formats.json import JSONFormat

    from mass_tui.alerts.payloads import cloudevent_of_anomaly

    a = Anomaly(1351540200.0, "ndbc-44005", "gust_mps", 22.5, "gust_limit", "critical", 1.5, "gust")
    e = JSONFormat().read(None, json.dumps(cloudevent_of_anomaly(a, muted="silence x")))
    assert e.get_type() == "org.mass-monitor.anomaly" and e.get_data()["muted"] == "silence x"
    assert e.get_time().year == 2012


def test_exec_channel_gets_the_json_on_stdin_and_is_killed_past_its_timeout(tmp_path):
    out = tmp_path / "got.json"
    script = f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())"
    ExecChannel([sys.executable, "-c", script], timeout=30.0).send(group(2))
    body = json.loads(out.read_text())
    assert body["version"] == "4" and len(body["alerts"]) == 2
    with pytest.raises(ChannelError, match="did not finish within 0.5 s"):
        ExecChannel([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5).send(group(1))
    with pytest.raises(ChannelError, match="exited 3: boom"):
        ExecChannel([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"]).send(group(1))
    with pytest.raises(ChannelError, match="no-such-command"):
        ExecChannel(["/nonexistent/no-such-command"]).send(group(1))


def test_control_characters_in_a_station_name_cannot_break_the_mail(smtp_server):
    """Issue 9 item 6 (the mail side): a name with a newline, a fake header and ANSI escapes."""
    port, received = smtp_server
    evil = "evil\r\nBcc: thief@example.org\x1b[31m\x1b]0;PWNED\x07\u2028x"
    ch = EmailChannel("127.0.0.1", port, "mass@example.org", ["ops@example.org"])
    ch.send(notice(0, station=evil))
    ch.send(Notification(group_key({"rule": "gust"}), {"rule": "gust"}, [notice(0, station=evil), notice(1)]))
    assert len(received) == 2
    for rcpt, msg in received:
        assert rcpt == ["ops@example.org"] and msg["Bcc"] is None
        subject = msg["Subject"]
        assert "\n" not in subject and "\r" not in subject and "\x1b" not in subject
        assert "evil\\x0d\\x0aBcc: thief@example.org\\x1b[31m" in subject
        text = msg.get_content()
        assert "\x1b" not in text and "\x07" not in text and "\u2028" not in text
        assert not any(line.startswith("Bcc:") for line in text.splitlines())


def test_anomalies_and_alerts_as_cloudevents_from_a_replay(tmp_path, http_sink):
    """CLOUDEVENTS_URL: every stored anomaly is POSTed as one structured event, and alert notices too."""
    import subprocess

    from cloudevents.core.formats.json import JSONFormat

    from .conftest import ROOT, SANDY

    url, state = http_sink
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CLOUDEVENTS_URL": url, "ALERTS_ENABLED": "true"}
    proc = subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(SANDY), "--headless", "--max", "-q",
                           "--station", "ndbc-44005"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    stored = (tmp_path / "data" / "db" / "anomalies.jsonl").read_text().splitlines()
    events = [JSONFormat().read(None, json.dumps(body)) for _, body in state["posts"] if isinstance(body, dict)]
    batches = [body for _, body in state["posts"] if isinstance(body, list)]
    events += [JSONFormat().read(None, json.dumps(e)) for b in batches for e in b]
    anomaly_events = [e for e in events if e.get_type() == "org.mass-monitor.anomaly"]
    assert len(anomaly_events) == len(stored)
    assert {e.get_data()["labels"]["station"] for e in anomaly_events} == {"ndbc-44005"}
    summary = json.loads(proc.stdout.splitlines()[-1])
    alert_events = [e for e in events if e.get_type().startswith("org.mass-monitor.alert.")]
    assert len(alert_events) == summary["alerts"] and summary["deliveries"]["cloudevents"]["sent"] > 0
