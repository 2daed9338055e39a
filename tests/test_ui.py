from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from textual import events
from textual.widgets import DataTable, OptionList

from mass_tui.config import load_config
from mass_tui.ui.help import HelpScreen
from mass_tui.ui.launch import replay_app

from .conftest import SANDY, free_port

SIZE = (160, 48)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def _app(path: Path = SANDY, speed: float | None = None, station: str | None = "ndbc-44005", **options):
    cfg = load_config(None, env={}, dotenv_file=None)
    return replay_app(cfg, path, speed=speed, station=station, fast_hz=10, chart_hz=5, **options)


async def _settle(app, pilot, seconds: float = 20.0) -> None:
    """Wait for the replay worker to finish and the timers to draw."""
    deadline = time.monotonic() + seconds
    while any(w.is_running for w in app.workers) and time.monotonic() < deadline:
        await pilot.pause(0.1)
    await pilot.pause(0.5)


def _status(app) -> str:
    return str(app.query_one("#status").render())


async def test_threshold_keys_apply_and_recount_what_if():
    app, cleanup = _app()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            assert "z=3.00" in _status(app) and "h=5.0" in _status(app)
            await pilot.press("Z", "Z")
            assert app.z == 3.5 and "z=3.50" in _status(app)
            raised = app.what_if()
            await pilot.press("z", "z", "z", "z")
            assert app.z == 2.5
            lowered = app.what_if()
            assert lowered[1] > raised[1]  # a lower z flags more of the same window
            assert "what-if:" in _status(app)
            await pilot.press("C")
            assert app.h == 5.5 and "h=5.5" in _status(app)
            await pilot.press("c", "c")
            assert app.h == 4.5
            # The engine takes the new thresholds before its next batch, keeping its state.
            assert app.engine._threshold_request == {"z": 2.5, "h": 4.5}
    finally:
        cleanup()


async def test_pause_stops_ingest_and_space_resumes():
    app, cleanup = _app(speed=20000.0)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(1.0)
            await pilot.press("space")
            assert "PAUSED" in _status(app)
            seen = app.state.status.get("observations", 0)
            await pilot.pause(1.0)
            assert app.state.status.get("observations", 0) <= seen + 1  # at most the message in hand
            await pilot.press("space")
            await pilot.pause(1.0)
            assert "PAUSED" not in _status(app)
            assert app.state.status.get("observations", 0) > seen
            await pilot.press("q")
    finally:
        cleanup()


async def test_station_key_filter_help_enter_and_quit(shared):
    app, cleanup = _app(shared / "weather" / "asos_midwest_cyclone_2010-10.csv", station=None)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            first = app.station
            await pilot.press("s")
            assert app.station != first
            assert len(app.query_one("#stations", OptionList).options) == 5
            await pilot.press("slash")
            await pilot.press(*"MSP")
            await pilot.pause(0.3)
            table = app.query_one("#anomalies", DataTable)
            assert table.row_count > 0
            assert all(str(table.get_row_at(i)[1]) == "MSP" for i in range(table.row_count))
            await pilot.press("enter")  # keep the filter, focus the table
            await pilot.press("enter")  # jump to the highlighted anomaly
            assert app.focus_ts is not None and app.station == "MSP"
            await pilot.press("escape")
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("u")
            assert app.imperial and "imperial" in _status(app)
            await pilot.press("q")
        assert app.controls.stop.is_set()
    finally:
        cleanup()


async def test_markup_in_station_names_is_shown_as_text(tmp_path):
    rec = tmp_path / "evil.jsonl"
    rec.write_text("\n".join(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "[bold red]evil[/]",
                                         "temp_c": 10 + (i % 7) + (40 if i == 300 else 0)}) for i in range(400)))
    app, cleanup = _app(rec, station=None)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            prompt = str(app.query_one("#stations", OptionList).get_option_at_index(0).prompt)
            assert "[bold red]evil[/]" in prompt
            table = app.query_one("#anomalies", DataTable)
            assert str(table.get_row_at(0)[1]) == "[bold red]evil[/]"
    finally:
        cleanup()


async def test_a_burst_of_messages_does_not_block_input(tmp_path):
    rec = tmp_path / "burst.jsonl"
    rec.write_text("\n".join(json.dumps({"ts": 1_700_000_000 + 10 * i, "station": f"s{i % 20}",
                                         "temp_c": 10 + (i % 13) * 0.1, "pressure_hpa": 1010 + (i % 7) * 0.1})
                             for i in range(150_000)))
    app, cleanup = _app(rec, speed=50_000.0, station=None)  # 5 k msg/s, one message at a time
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(1.0)
            waits = []
            for key in ("Z", "z", "C", "c", "Z"):
                assert any(w.is_running for w in app.workers), "still ingesting"
                before = (app.z, app.h)
                start = time.perf_counter()
                # Post the key and watch for its effect: pilot.press() would also wait for the
                # screen to go idle, which a live screen never quite does.
                app.post_message(events.Key(key, key))
                while (app.z, app.h) == before and time.perf_counter() - start < 5:
                    await asyncio.sleep(0.005)
                waits.append(time.perf_counter() - start)
            assert app.z == 3.25 and app.h == 5.0
            assert sorted(waits)[2] < 0.2 and max(waits) < 1.0, waits  # handled while 5 k msg/s stream in
            assert app.state.rate() > 1000
            await pilot.press("q")
    finally:
        cleanup()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_layout_snapshot(snap_compare, size):
    app, cleanup = _app(show_rate=False)

    async def run_before(pilot) -> None:
        await _settle(app, pilot)
        app.redraw_all()
        await pilot.pause(0.3)
        app.redraw_all()
        await pilot.pause(0.3)

    try:
        assert snap_compare(app, terminal_size=size, run_before=run_before)
    finally:
        cleanup()


def test_snapshots_are_taken_in_utc():
    assert os.environ["TZ"] == "UTC"


async def test_command_palette_lists_the_key_actions():
    app, cleanup = _app()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert any(t.startswith("z +0.25") for t in titles) and any(t.startswith("Pause") for t in titles)
            command = next(c for c in app.get_system_commands(app.screen) if c.title.startswith("z +0.25"))
            await command.callback()
            assert app.z == 3.25
    finally:
        cleanup()


async def test_t_switches_the_live_pipeline_from_file_to_kafka(tmp_path, kafka_broker):
    from mass_tui.ui.launch import live_app

    env = {"MASS_DATA_DIR": str(tmp_path / "data"), "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
           "KAFKA_TOPIC": "ui-switch", "KAFKA_GROUP_ID": "ui-switch"}
    app, cleanup = live_app(load_config(None, env=env, dotenv_file=None), source="simulator:smoke",
                            transport="file", max_speed=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(1.0)
            assert "via file" in _status(app)
            await pilot.press("t")
            deadline = time.monotonic() + 20
            while "via kafka" not in _status(app) and time.monotonic() < deadline:
                await pilot.pause(0.2)
            assert "via kafka" in _status(app)
            await pilot.press("q")
    finally:
        cleanup()


async def test_terminal_bell_rings_when_an_alert_goes_out():
    cfg = load_config(None, env={"ALERTS_ENABLED": "true"}, dotenv_file=None)  # no channel: stored and shown
    app, cleanup = replay_app(cfg, SANDY, speed=None, station="ndbc-44005", fast_hz=10, chart_hz=5)
    rings = []
    app.bell = lambda: rings.append(1)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            assert app.state.status["alerts"] > 0 and rings
            assert "alerts 0" not in _status(app)
    finally:
        cleanup()


async def test_a_source_that_is_down_shows_in_the_status_bar_before_any_data(tmp_path):
    from mass_tui.ui.launch import live_app

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every poll is refused
    env = {"MASS_DATA_DIR": str(tmp_path / "data"), "WEATHER_API_BASE": f"{closed}/v1/forecast",
           "AIR_QUALITY_API_BASE": f"{closed}/v1/air-quality", "POLL_SECONDS": "1"}
    app, cleanup = live_app(load_config(None, env=env, dotenv_file=None), source="open-meteo", transport="file")
    try:
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + 15
            while "DOWN" not in _status(app) and time.monotonic() < deadline:
                await pilot.pause(0.2)
            assert "DOWN (ConnectError" in _status(app) and "retry" in _status(app)
            await pilot.press("q")
    finally:
        cleanup()


async def test_t_without_a_kafka_broker_stays_on_file_and_says_why(tmp_path):
    from mass_tui.ui.launch import live_app

    env = {"MASS_DATA_DIR": str(tmp_path / "data"), "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    app, cleanup = live_app(load_config(None, env=env, dotenv_file=None), source="simulator:smoke",
                            transport="file", max_speed=True)
    said = []
    notify = app.notify
    app.notify = lambda message, **kw: (said.append(str(message)), notify(message, **kw))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(1.0)
            seen = app.state.status.get("observations", 0)
            await pilot.press("t")
            deadline = time.monotonic() + 20
            while not any("does not answer" in s for s in said) and time.monotonic() < deadline:
                await pilot.pause(0.2)
            assert any("does not answer" in s and "staying on the file transport" in s for s in said), said
            await pilot.pause(1.5)
            assert "via file" in _status(app) and app.engine_error is None
            assert app.state.status.get("observations", 0) > seen  # the file transport went on throughout
            await pilot.press("q")
    finally:
        cleanup()
