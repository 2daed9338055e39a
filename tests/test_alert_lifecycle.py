"""Issue 13's "done when", end to end with real parts: `mass` subprocesses, an aiosmtpd server and HTTP
receivers on loopback, the SQLite alert state shared by the commands and the service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sources.schema import iso_utc
from tests.conftest import wait_for

from .conftest import ROOT, SANDY, free_port, sigkill_when

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def env(tmp_path: Path, smtp_port: int | None = None, **extra: str) -> dict[str, str]:
    out = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
           "MASS_LOG_DIR": str(tmp_path / "logs"), "HOME": str(tmp_path)}
    if smtp_port is not None:
        out.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), ALERT_EMAIL_FROM="mass@example.org",
                   ALERT_EMAIL_TO="ops@example.org")
    out.update(extra)
    return out


def mass(tmp_path: Path, *args: str, environ: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mass_tui", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, env=environ)


def journal(data: Path) -> tuple[list[dict], list[dict]]:
    """(notices, delivery records) of alerts.jsonl."""
    path = data / "db" / "alerts.jsonl"
    records = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return [r for r in records if r["kind"] in ("alert", "repeat", "escalated", "resolved")], \
        [r for r in records if r["kind"] == "delivery"]


def anomalies(data: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if k != "muted"}
            for x in (data / "db" / "anomalies.jsonl").read_text().splitlines()]


def obs(t: float, station: str, **values: float) -> str:
    return json.dumps({"ts": iso_utc(t), "station": station, "source": "sim", **values})


def test_sandy_replay_silenced_over_the_storm_sends_no_mail_and_expiring_restores_them(tmp_path, smtp_server):
    port, received = smtp_server
    replay = ["replay", str(SANDY), "--headless", "--max", "--alerts", "-q", "--station", "ndbc-44005"]
    plain = tmp_path / "plain"
    plain.mkdir()
    assert mass(plain, *replay, environ=env(plain, port)).returncode == 0
    mails_without_silence = len(received)
    assert mails_without_silence > 10
    received.clear()

    e = env(tmp_path, port)
    add = mass(tmp_path, "silence", "add", "station=ndbc-44005", "--from", "2012-10-01T00:00:00Z", "--until",
               "2012-12-01T00:00:00Z", "--comment", "buoy under review", environ=e)
    assert add.returncode == 0, add.stderr
    silence_id = add.stdout.strip()
    listed = json.loads(mass(tmp_path, "silence", "list", "--format", "json", environ=e).stdout)
    assert [s["id"] for s in listed] == [silence_id] and listed[0]["matchers"] == ['station="ndbc-44005"']
    assert listed[0]["status"] == "elapsed"  # a past span: it applies to replays of it
    proc = mass(tmp_path, *replay, environ=e)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert received == [] and summary["alerts"] == 0 and summary["muted"] > 0
    # The same anomalies are stored, each marked with the silence that holds its alerts back.
    assert anomalies(tmp_path / "data") == anomalies(plain / "data")
    marked = [json.loads(x) for x in (tmp_path / "data" / "db" / "anomalies.jsonl").read_text().splitlines()]
    assert {a.get("muted") for a in marked if a["detector"] == "gust_limit"} == {f"silence {silence_id}"}
    notices, deliveries = journal(tmp_path / "data")
    assert notices and all(n["muted"] == f"silence {silence_id}" for n in notices) and deliveries == []

    assert mass(tmp_path, "silence", "expire", silence_id[:8], environ=e).returncode == 0
    assert json.loads(mass(tmp_path, "silence", "list", "--format", "json", environ=e).stdout) == []
    # The store keeps each observation once, so the storm is replayed over an emptied store; the alert
    # state (where the silence was, and expired) is kept.
    for stored in (tmp_path / "data" / "db").glob("*.jsonl"):
        stored.unlink()
    proc = mass(tmp_path, *replay, environ=e)
    assert proc.returncode == 0, proc.stderr
    assert len(received) == mails_without_silence


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write("\n".join(lines) + "\n")


def test_a_station_that_stops_reporting_raises_one_no_data_alert_and_one_resolved(tmp_path, smtp_server):
    port, received = smtp_server
    (tmp_path / "mass.toml").write_text('[[alerts.rules]]\nname = "gust"\ndetectors = ["gust_limit"]\n')
    lines = []
    for k in range(180):  # 3 h, a reading a minute; station a silent from 1:00 to 2:00
        t = T0 + 60 * k
        for station in ("a", "b"):
            if station == "a" and 60 <= k < 120:
                continue
            gust = 18.0 if station == "a" and 40 <= k < 60 else 5.0 + (k % 7) * 0.3
            lines.append(obs(t, station, gust_mps=gust, wind_mps=gust / 1.4, temp_c=10 + (k % 11) * 0.1))
    recording = tmp_path / "two.jsonl"
    _write(recording, lines)
    proc = mass(tmp_path, "replay", str(recording), "--headless", "--max", "--alerts", "-q",
                environ=env(tmp_path, port))
    assert proc.returncode == 0, proc.stderr
    notices, _ = journal(tmp_path / "data")
    at_a = [(n["kind"], n["rule"], n["ts"]) for n in notices if n["station"] == "a"]
    assert at_a == [
        ("alert", "gust", iso_utc(T0 + 40 * 60)),
        ("alert", "no-data", iso_utc(T0 + 59 * 60 + 5 * 60)),  # 5 x its 1 min interval after its last reading
        ("resolved", "no-data", iso_utc(T0 + 120 * 60)),  # its first reading back
        ("resolved", "gust", iso_utc(T0 + 179 * 60)),  # 2 h after its last gust, with clean readings since
    ]  # and nothing else from a meanwhile: its gust episode neither repeats nor "recovers" while silent
    assert not [n for n in notices if n["station"] == "b"]
    subjects = [m["Subject"] for _, m in received]
    assert sum("no-data at a" in s for s in subjects) == 2 and sum("RESOLVED no-data" in s for s in subjects) == 1
    no_data_mail = next(m for _, m in received if m["Subject"].startswith("[mass] WARNING no-data"))
    assert "no data from a since" in no_data_mail.get_content()


def test_forty_stations_over_the_limit_within_group_wait_make_one_message_per_channel(tmp_path, smtp_server,
                                                                                      http_sink):
    port, received = smtp_server
    url, state = http_sink
    (tmp_path / "mass.toml").write_text('[alerts]\nwebhook_format = "alertmanager"\n')
    lines = []
    stations = [f"roof-{i:02d}" for i in range(40)]
    for k in range(60):
        for i, station in enumerate(stations):
            gust = 21.0 if k == 30 else 6.0 + (k % 5) * 0.2
            lines.append(obs(T0 + 60 * k + i * 0.5, station, gust_mps=gust))  # the 40 within 20 s
    recording = tmp_path / "storm.jsonl"
    _write(recording, lines)
    proc = mass(tmp_path, "replay", str(recording), "--headless", "--max", "--alerts", "-q",
                environ=env(tmp_path, port, ALERT_WEBHOOK_URL=url))
    assert proc.returncode == 0, proc.stderr
    gust_mails = [m for _, m in received if " gust" in m["Subject"]]
    assert len(gust_mails) == 1
    text = gust_mails[0].get_content()
    assert all(f" {s}  gust" in text for s in stations) and "40 alerts" in text
    gust_posts = [b for _, b in state["posts"] if b["groupLabels"] == {"rule": "gust"}]
    assert len(gust_posts) == 1 and len(gust_posts[0]["alerts"]) == 40
    assert {a["labels"]["station"] for a in gust_posts[0]["alerts"]} == set(stations)
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["deliveries"]["email"]["sent"] == len(received)


def test_silences_acks_and_open_episodes_survive_kill_9_and_a_restart(tmp_path, http_sink):
    url, state = http_sink
    # (no-data off: the 7 h gap below would rightly raise one, which is not what this test is about)
    e = env(tmp_path, ALERTS_ENABLED="true", ALERT_WEBHOOK_URL=url, ALERT_NO_DATA="false")
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    metrics_port = free_port()

    def run() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "mass_tui", "run", "--headless", "-q", "--metrics-port",
                                 str(metrics_port)], cwd=tmp_path, env=e, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    _write(transport, [obs(T0 + 60 * k, "s", gust_mps=18.0 if k >= 10 else 6.0) for k in range(12)])
    proc = run()
    try:
        assert wait_for(lambda: any(n["kind"] == "alert" for n in journal(tmp_path / "data")[0]))
        assert wait_for(lambda: len(state["posts"]) == 1)
        base = f"http://127.0.0.1:{metrics_port}"
        assert httpx.get(f"{base}/-/healthy", timeout=5).status_code == 200
        assert wait_for(lambda: httpx.get(f"{base}/-/ready", timeout=5).status_code == 200)
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert "# TYPE mass_alert_deliveries_total counter" in metrics
        assert 'mass_alert_deliveries_total{channel="webhook",outcome="sent"} 1.0' in metrics
        assert 'mass_build_info{python="' in metrics and 'version="' in metrics
        assert sample(metrics, "mass_last_observation_timestamp_seconds", station="s") == T0 + 660
        assert sample(metrics, "mass_alerts_total", kind="alert", rule="gust") == 1.0
        episodes = json.loads(mass(tmp_path, "alert", "list", "--format", "json", environ=e).stdout)
        assert [(x["station"], x["rule"], x["acked"]) for x in episodes] == [("s", "gust", None)]
        episode = episodes[0]["id"]
        assert mass(tmp_path, "ack", episode[:6], "--comment", "crew on the roof", "--by", "kim",
                    environ=e).returncode == 0
        silence = mass(tmp_path, "silence", "add", "station=other", "--for", "2h", environ=e).stdout.strip()
    finally:
        sigkill_when(proc, lambda: True)

    proc = run()
    try:
        # 7 h of data time later the gust is still over the limit: acknowledged, so no repeat, and the restored
        # episode does not alert again as if it were new.
        _write(transport, [obs(T0 + 7 * 3600 + 60 * k, "s", gust_mps=19.0) for k in range(5)])
        assert wait_for(lambda: sum(1 for _ in (tmp_path / "data" / "db").glob("consumer_stream*.jsonl")) and
                          _stored(tmp_path) >= 17)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    notices, _ = journal(tmp_path / "data")
    assert [(n["kind"], n["episode"]) for n in notices] == [("alert", episode)]
    assert len(state["posts"]) == 1
    assert "1 open episode(s) restored" in (tmp_path / "logs" / "mass.log").read_text()
    listed = json.loads(mass(tmp_path, "silence", "list", "--format", "json", environ=e).stdout)
    assert [s["id"] for s in listed] == [silence]
    episodes = json.loads(mass(tmp_path, "alert", "list", "--format", "json", environ=e).stdout)
    assert episodes[0]["id"] == episode and episodes[0]["acked"]["by"] == "kim"
    assert json.loads(out.splitlines()[-1])["open_episodes"] == 1


def sample(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def _stored(tmp_path: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in (tmp_path / "data" / "db").glob("consumer_stream*.jsonl"))


def test_sighup_reloads_rules_and_channels_keeping_detector_state(tmp_path, http_sink):
    url, state = http_sink
    config = tmp_path / "mass.toml"
    config.write_text('[alerts]\nenabled = true\n'
                      '[[alerts.rules]]\nname = "pressure"\ndetectors = ["pressure_tendency"]\n')
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    e = env(tmp_path, ALERT_WEBHOOK_URL=url)
    _write(transport, [obs(T0 + 60 * k, "s", gust_mps=6.0) for k in range(10)])
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "run", "--headless", "-q"], cwd=tmp_path, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "logs" / "mass.log"
    try:
        assert wait_for(lambda: _stored(tmp_path) >= 10)
        config.write_text('[alerts]\nenabled = true\nwebhook_format = "alertmanager"\ngroup_wait_seconds = 0\n'
                          '[[alerts.rules]]\nname = "gust"\ndetectors = ["gust_limit"]\n')
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: log.exists() and "alerts reloaded: 1 rules" in log.read_text())
        _write(transport, [obs(T0 + 600 + 60 * k, "s", gust_mps=20.0) for k in range(3)])
        assert wait_for(lambda: len(state["posts"]) == 1)
        config.write_text('[alerts]\nenabled = true\ngroup_wait_seconds = -5\n')
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "configuration not reloaded" in log.read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    body = state["posts"][0][1]
    assert body["version"] == "4" and body["alerts"][0]["labels"]["alertname"] == "gust"
    text = log.read_text()
    assert text.count("consumer started") == 1 and "alerts.group_wait_seconds = -5" in text


def test_a_bad_configuration_value_exits_78(tmp_path):
    (tmp_path / "mass.toml").write_text('[[alerts.mute_times]]\nname = "w"\nweekdays = ["caturday"]\n')
    proc = mass(tmp_path, "run", "--headless", "--alerts", "--max-seconds", "1", environ=env(tmp_path))
    assert proc.returncode == 78
    assert "alerts.mute_times[0].weekdays[0] = 'caturday'" in proc.stderr
    os.remove(tmp_path / "mass.toml")
    proc = mass(tmp_path, "run", "--headless", "--max-seconds", "1",
                environ=env(tmp_path, ALERT_GROUP_WAIT_SECONDS="x"))
    assert proc.returncode == 78 and "alerts.group_wait_seconds" in proc.stderr


def test_the_sample_systemd_unit_stops_restarting_on_a_bad_configuration():
    unit = (ROOT / "docs" / "mass.service").read_text()
    assert "RestartPreventExitStatus=78" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "mass run --headless" in unit
