"""No configured secret in any output: the real commands run with secrets set against loopback
servers that echo what they were sent, and every output (stdout, stderr, logs, the data directory)
is searched for each secret in every spelling it takes (as is, percent-encoded)."""

from __future__ import annotations

import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from mass_tui.config import load_config
from sources.text import REDACTED, Redactor, secret_forms

from .conftest import ROOT, SANDY, LoopbackHTTP, complete_lines, sigterm_when

OWM_KEY = "owmKEY+1234/567890abcdef"  # '+' and '/' so that its URL-encoded form differs
SMTP_PASS = "smtpSECRETpass"
URL_PASSWORD = "pgSECRETpw"


class Echo(LoopbackHTTP):
    """Loopback HTTP: GETs of the weather APIs and POSTs of the alert webhooks, each answered with a
    body that quotes the request line (URL with its query: the key). Scripted per path prefix."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.owm_answers = ["400", "200-not-json", "200-error-json", "200-ok"]
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                echo.log.append(self.path)
                said = f"you asked for {self.path}".encode()
                if self.path.startswith("/owm"):
                    kind = echo.owm_answers.pop(0) if len(echo.owm_answers) > 1 else echo.owm_answers[0]
                    if kind == "400":
                        self._answer(400, b'{"cod": 400, "message": "' + said + b'"}')
                    elif kind == "200-not-json":
                        self._answer(200, b"<html>" + said + b"</html>")
                    elif kind == "200-error-json":
                        self._answer(200, json.dumps({"cod": 500, "message": said.decode()}).encode())
                    else:
                        self._answer(200, (ROOT / "tests/data/api-samples/owm_2.5_weather_london_2013.json")
                                     .read_bytes())
                else:  # open-meteo, behind a URL with a password: down, quoting the URL
                    self._answer(503, said)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                echo.log.append(self.path)
                self._answer(500, f"no hook at {self.path}".encode())

            def log_message(self, *args):
                pass

        self.serve(Handler)


@pytest.fixture
def echo():
    server = Echo()
    yield server
    server.close()


def _everything(tmp_path: Path, outputs: list[str]) -> str:
    """The commands' outputs and every file they wrote (logs and data; not the .env given them)."""
    texts = list(outputs)
    for folder in ("logs", "data"):
        for path in (tmp_path / folder).rglob("*"):
            if path.is_file():
                texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def test_no_secret_in_any_output_of_the_real_commands(tmp_path, echo, smtp_server):
    slack = f"{echo.base}/services/T0SECRET/B0SECRET/xoxSECRETtoken"
    webhook = f"{echo.base}/hook/whSECRETpath?token=whSECRETquery"
    smtp_port, _received = smtp_server
    (tmp_path / "mass.toml").write_text("[alerts]\nmax_attempts = 2\nretry_seconds = 0.2\n")
    (tmp_path / ".env").write_text(f"OPENWEATHER_API_KEY={OWM_KEY}\nSMTP_USER=mass\nSMTP_PASS={SMTP_PASS}\n"
                                   f"SLACK_WEBHOOK_URL={slack}\nALERT_WEBHOOK_URL={webhook}\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
           "MASS_LOG_DIR": str(tmp_path / "logs"), "OPENWEATHER_BASE": f"{echo.base}/owm/data/2.5/weather",
           "OPENWEATHER_UNITS": "standard", "LOCATION_LAT": "51.5", "LOCATION_LON": "-0.12", "POLL_SECONDS": "1",
           "WEATHER_API_BASE": f"http://mass:{URL_PASSWORD}@127.0.0.1:{echo.server.server_address[1]}/v1/forecast",
           "AIR_QUALITY_API_BASE": "", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port),
           "ALERT_EMAIL_FROM": "mass@example.org", "ALERT_EMAIL_TO": "ops@example.org"}

    def mass(*args: str, timeout: float = 120) -> str:
        done = subprocess.run([sys.executable, "-m", "mass_tui", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=timeout)
        return done.stdout + done.stderr

    def run_until(ready, *args: str) -> str:
        proc = subprocess.Popen([sys.executable, "-m", "mass_tui", *args], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, out, err = sigterm_when(proc, ready, 60)
        return out + err

    stored = tmp_path / "data" / "db" / "consumer_stream.jsonl"
    outputs = [
        # The window (8 s) is only long enough for the four scripted OWM answers (400, not JSON, an error
        # in JSON, a reading): stopped cleanly (SIGTERM) once the reading they end with is stored.
        run_until(lambda: sum(p.startswith("/owm") for p in echo.log) >= 4 and bool(complete_lines(stored)),
                  "run", "--headless", "--source", "openweathermap", "--max-seconds", "8"),
        mass("run", "--headless", "--source", "open-meteo", "--max-seconds", "3"),
        mass("produce", "--source", "openweathermap", "--max-messages", "1"),
        mass("replay", str(SANDY), "--headless", "--max", "--alerts", "--station", "ndbc-44005", "-q"),
        mass("alert", "test"),
        mass("config"),
    ]
    assert any(p.startswith("/owm") for p in echo.log) and any(p.startswith("/services") for p in echo.log)
    assert any(p.startswith("/hook") for p in echo.log) and any(p.startswith("/v1/forecast") for p in echo.log)
    text = _everything(tmp_path, outputs)
    assert "HTTP 400" in text and "malformed body" in text  # the failures that quote the URL did happen
    assert REDACTED in text
    for secret in (OWM_KEY, slack, webhook, SMTP_PASS, URL_PASSWORD, "xoxSECRETtoken", "whSECRETpath",
                   "whSECRETquery"):
        for form in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}:
            assert form not in text, f"secret {secret!r} found as {form!r}"


def test_secret_values_include_url_passwords_and_every_secret(tmp_path):
    cfg = load_config(None, env={"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B2/abc",
                                 "SMTP_PASS": "p4ssword", "OPENWEATHER_API_KEY": "k" * 32,
                                 "WEATHER_API_BASE": "https://u:hunter22@example.org/v1"}, dotenv_file=None)
    values = cfg.secret_values()
    assert {"https://hooks.slack.com/services/T1/B2/abc", "p4ssword", "k" * 32, "hunter22"} <= set(values)


def test_redactor_replaces_every_spelling_and_leaves_other_text():
    redact = Redactor(["a/b+c=d", "https://h.example/services/T1/B2/tok", None, "", "ab"])
    assert redact("key=a%2Fb%2Bc%3Dd&x=1") == f"key={REDACTED}&x=1"
    assert redact("key=a/b+c=d") == f"key={REDACTED}"
    assert redact("POST https://h.example/services/T1/B2/tok done") == f"POST {REDACTED} done"
    assert redact("no hook at /services/T1/B2/tok") == f"no hook at {REDACTED}"
    assert redact("about the cab") == "about the cab"  # a 2-character 'secret' is not one
    assert redact.bytes(b"raw a/b+c=d") == b"raw " + REDACTED.encode()
    assert "tok" in secret_forms("https://u:tok-pw@h/x") or "tok-pw" in secret_forms("https://u:tok-pw@h/x")
