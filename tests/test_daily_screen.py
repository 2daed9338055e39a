"""The daily-summary screen: the stored daily records of a station, and today so far."""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable

from mass_tui.aggregates import latest
from mass_tui.config import load_config
from mass_tui.ui.daily import DailyScreen, read_daily
from mass_tui.ui.launch import replay_app
from tests.conftest import SANDY
from tests.history_helpers import aggregate_records, replay_into


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_read_daily_keeps_the_last_record_of_each_day(tmp_path):
    replay_into(tmp_path, SANDY, station="ndbc-44005")
    days = read_daily(tmp_path / "db")
    want = {r["day"]: r for r in latest(aggregate_records(tmp_path / "db")) if r["kind"] == "daily"}
    assert list(days) == ["ndbc-44005"] and days["ndbc-44005"] == want
    assert read_daily(tmp_path / "nothing-here") == {}


async def test_shift_d_shows_the_daily_summary_of_the_station(tmp_path):
    cfg = load_config(None, env={}, dotenv_file=None, overrides={"data.dir": str(tmp_path)})
    app, cleanup = replay_app(cfg, SANDY, speed=None, station="ndbc-44005", fast_hz=10, chart_hz=5)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            deadline = time.monotonic() + 60
            while any(w.is_running for w in app.workers) and time.monotonic() < deadline:
                await pilot.pause(0.1)
            await pilot.press("D")
            assert isinstance(app.screen, DailyScreen)
            table = app.screen.query_one(DataTable)
            deadline = time.monotonic() + 30
            while table.row_count == 0 and time.monotonic() < deadline:
                await pilot.pause(0.1)
            # 31 closed days in the store, and the last day (still open: the replay has not stopped) from the sink.
            assert table.row_count == 32
            newest = [str(c) for c in table.get_row_at(0)]
            assert newest[0] == "2012-11-15 …"
            stormy = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)]
                      for i in range(table.row_count)}["2012-10-30"]
            record = read_daily(tmp_path / "db")["ndbc-44005"]["2012-10-30"]
            assert stormy[1] == f"{record['gust_max']:.1f}" and stormy[2] == record["gust_max_ts"][11:16]
            # `u` converts this table too (the app's setting: it stays for the main screen and the next D)
            await pilot.press("u")
            assert app.imperial and str(table.columns[table.ordered_columns[1].key].label) == "max gust mph"
            row = [str(c) for c in table.get_row("2012-10-30")]
            assert row[1] == f"{record['gust_max'] * (1 / 0.44704):.1f}"  # NIST SP 811: 1 mph = 0.44704 m/s
            inhg = 1 / 33.8639  # 1 inHg = 33.8639 hPa
            assert row[8] == f"{record['pressure_min'] * inhg:.2f}–{record['pressure_max'] * inhg:.2f}"
            await pilot.press("u")
            assert not app.imperial and [str(c) for c in table.get_row("2012-10-30")] == stormy
            await pilot.press("escape")
            assert not isinstance(app.screen, DailyScreen)
            await pilot.press("q")
    finally:
        cleanup()
