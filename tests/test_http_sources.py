from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from sources.http_sources import Backoff, OpenMeteoSource, OpenWeatherMapSource, retry_after_seconds
from sources.normalize import NormalizeError, open_meteo_current, owm_weather
from sources.schema import Observation, decode, parse_time

from .conftest import LoopbackHTTP


def sample(shared, name: str) -> bytes:
    return (shared / "api-samples" / name).read_bytes()


class Api(LoopbackHTTP):
    """A real HTTP server on 127.0.0.1: each path answers from a script of (status, headers, body)."""

    def __init__(self) -> None:
        self.scripts: dict[str, list] = {}
        self.requests: list[tuple[str, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                api.requests.append((url.path, {k: v[0] for k, v in parse_qs(url.query).items()}))
                script = api.scripts.get(url.path) or [(404, {}, b"{}")]
                status, headers, body = script.pop(0) if len(script) > 1 else script[0]
                if status == "hang":
                    time.sleep(1.0)
                    status = 200
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.serve(Handler)


@pytest.fixture
def api():
    server = Api()
    yield server
    server.close()


STATIONS = [{"name": "twente", "lat": 52.27, "lon": 6.87}]


def meteo(api, shared, **kw) -> OpenMeteoSource:
    client = httpx.Client(timeout=kw.pop("timeout", 2.0))
    return OpenMeteoSource(client, STATIONS, base=api.base + "/v1/forecast", air_base=api.base + "/v1/air-quality",
                           interval=60, backoff=Backoff(base=1.0, cap=60), **kw)


def test_open_meteo_converts_units_and_uses_the_observation_time(shared):
    payload = json.loads(sample(shared, "open-meteo_forecast_current_hourly_daily_excerpt.json"))
    msg = open_meteo_current(payload, "twente")
    # 12:30 in Europe/Amsterdam at UTC+2 is 10:30 UTC.
    assert msg["ts"] == "2026-10-03T10:30:00Z"
    assert msg["wind_mps"] == pytest.approx(3.6 / 3.6) and msg["gust_mps"] == pytest.approx(11.9 / 3.6)
    assert msg["temp_c"] == 17.7 and msg["pressure_msl_hpa"] == 1030.4 and msg["pressure_hpa"] == 1026.9
    obs = decode(json.dumps(msg).encode())
    assert isinstance(obs, Observation) and obs.ts == parse_time("2026-10-03T10:30:00Z")
    payload["current_units"]["wind_speed_10m"] = "furlongs"
    with pytest.raises(NormalizeError, match="unknown unit 'furlongs'"):
        open_meteo_current(payload, "twente")


def test_open_meteo_air_quality_and_owm_including_imperial(shared):
    air = open_meteo_current(json.loads(sample(shared, "open-meteo_air_quality_excerpt.json")), "twente")
    assert {"pm25_ugm3", "pm10_ugm3", "us_aqi"} <= set(air)
    owm = json.loads(sample(shared, "owm_2.5_weather_london_2013.json"))
    metric = owm_weather(owm, "london", "standard")
    assert metric["temp_c"] == pytest.approx(288.44 - 273.15) and metric["gust_mps"] == 2.57
    owm["main"]["temp"], owm["wind"]["speed"] = 59.0, 10.0
    imperial = owm_weather(owm, "london", "imperial")
    assert imperial["temp_c"] == pytest.approx(15.0) and imperial["wind_mps"] == pytest.approx(4.4704)
    with pytest.raises(NormalizeError, match="401"):
        owm_weather(json.loads(sample(shared, "owm_error_401.json")), "london")


def test_poll_against_a_real_server_requests_ms_and_dedupes_same_time(api, shared):
    body = sample(shared, "open-meteo_forecast_current_hourly_daily_excerpt.json")
    api.scripts["/v1/forecast"] = [(200, {}, body)]
    api.scripts["/v1/air-quality"] = [(200, {}, sample(shared, "open-meteo_air_quality_excerpt.json"))]
    src = meteo(api, shared)
    first = src.poll()
    assert len(first.messages) == 2 and src.state.up is True and src.next_delay() == 60
    path, params = api.requests[0]
    assert path == "/v1/forecast" and params["wind_speed_unit"] == "ms" and params["latitude"] == "52.27"
    assert src.poll().messages == []  # the same current.time again: stored once


def test_500_timeout_and_malformed_body_back_off_and_recover(api, shared):
    body = sample(shared, "open-meteo_forecast_current_hourly_daily_excerpt.json")
    api.scripts["/v1/forecast"] = [(500, {}, b"oops"), ("hang", {}, body), (200, {}, b"<html>"), (200, {}, body)]
    api.scripts["/v1/air-quality"] = [(200, {}, sample(shared, "open-meteo_air_quality_current_minimal.json"))]
    src = meteo(api, shared, timeout=0.3)
    delays = []
    for expected in ("HTTP 500", "timeout", "malformed body"):
        out = src.poll()
        assert out.messages == [] and src.state.up is False and expected in src.state.last_error
        delays.append(src.next_delay())
        assert src.state.next_retry and src.state.next_retry > time.time()
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0  # exponential
    bad_body = src.poll()  # recovered; the malformed body before was quarantined with its reason
    assert src.state.up is True and src.state.down_since is None and len(bad_body.messages) == 1
    # The minimal air-quality sample has no variable mass knows: rejected with a reason, not dropped.
    assert bad_body.rejected and "no values mass knows" in bad_body.rejected[0].reason


def test_429_honours_retry_after(api, shared):
    api.scripts["/v1/forecast"] = [(429, {"Retry-After": "42"}, sample(shared, "owm_error_429.json"))]
    src = meteo(api, shared)
    src.poll()
    assert src.next_delay() >= 42 and "429" in src.state.last_error
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("garbage") is None


def test_owm_401_stops_the_source_instead_of_retrying(api, shared):
    api.scripts["/data/2.5/weather"] = [(401, {}, sample(shared, "owm_error_401.json"))]
    src = OpenWeatherMapSource(httpx.Client(timeout=2), STATIONS, api_key="bad-key-123",
                               base=api.base + "/data/2.5/weather")
    src.poll()
    assert src.state.stopped and "check OPENWEATHER_API_KEY" in src.state.last_error
    assert "bad-key-123" not in src.state.last_error
    before = len(api.requests)
    src.poll()
    assert len(api.requests) == before  # no retry loop


def test_nulls_in_fields_are_missing_readings(api, shared):
    payload = json.loads(sample(shared, "open-meteo_forecast_current_hourly_daily_excerpt.json"))
    payload["current"]["temperature_2m"] = None
    msg = open_meteo_current(payload, "twente")
    assert "temp_c" not in msg and "humidity_pct" in msg


def test_mass_run_polls_open_meteo_and_stores_observations(tmp_path, api, shared):
    import subprocess
    import sys

    from .conftest import ROOT

    api.scripts["/v1/forecast"] = [(200, {}, sample(shared, "open-meteo_forecast_current_hourly_daily_excerpt.json"))]
    api.scripts["/v1/air-quality"] = [(503, {}, b"down for maintenance")]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "WEATHER_API_BASE": api.base + "/v1/forecast",
           "AIR_QUALITY_API_BASE": api.base + "/v1/air-quality", "LOCATION_LAT": "52.27", "LOCATION_LON": "6.87",
           "LOCATION_NAME": "twente", "POLL_SECONDS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mass_tui", "run", "--headless", "--source", "open-meteo",
                           "--max-seconds", "3"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    # The air-quality endpoint is down: the source is shown down with its error and next retry.
    assert summary["source"]["up"] is False and "503" in summary["source"]["last_error"], summary
    assert summary["observations"] == 1, summary
    # its times as every other time of the summary: ISO 8601 UTC, the retry after the failure
    down, retry = summary["source"]["down_since"], summary["source"]["next_retry"]
    assert down.endswith("Z") and retry.endswith("Z") and parse_time(down) <= parse_time(retry), summary
    api.scripts["/v1/air-quality"] = [(200, {}, sample(shared, "open-meteo_air_quality_excerpt.json"))]
    proc = subprocess.run([sys.executable, "-m", "mass_tui", "run", "--headless", "--source", "open-meteo",
                           "--max-seconds", "3"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["source"]["up"] is True, summary
    stored = [json.loads(x) for x in (tmp_path / "data" / "db" / "consumer_stream.jsonl").read_text().splitlines()]
    weather = [r for r in stored if "temp_c" in r]
    assert len(weather) == 1  # polled again after the restart: stored once (the warm start remembers it)
    assert summary["duplicates"] == 1
    assert weather[0]["ts"] == "2026-10-03T10:30:00Z" and weather[0]["station"] == "twente"
    assert any("pm25_ugm3" in r for r in stored)
