"""Epoch numbers written as text are epoch numbers, not compact ISO dates (sources.times.parse_iso).

Python 3.11's datetime.fromisoformat reads the first eight digits of a longer run as YYYYMMDD, so
"1288011060000" (epoch milliseconds, 2010-10-25 12:51Z) was 1288-01-10 and quarantined as out of
range: about one time in twenty of an epoch-millisecond column.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.replay import replay_file
from mass_tui.store import JsonlStore
from sources.times import TimeError, epoch_seconds, epoch_seconds_array, parse_iso

# epoch milliseconds of ASOS report times that fromisoformat took for dates
MISREAD = ["1288011060000", "1288011360000", "1288011660000000000", "1704110400000"]


def test_digit_runs_longer_than_a_date_are_epoch_numbers():
    assert parse_iso("1288011060000") == (1288011060.0, False)
    assert parse_iso("1704110400000") == (1704110400.0, False)
    assert parse_iso("1704110400") == (1704110400.0, False)
    assert parse_iso("1704110400000000") == (1704110400.0, False)


def test_eight_digits_stay_a_basic_format_date():
    assert parse_iso("20240101") == (1704067200.0, True)


def _as_compact(digits: str) -> float | None:
    """The oracle: YYYYMMDDhh[mm[ss]] of 1900-2099 as naive seconds, else None."""
    formats = {10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if len(digits) not in formats or not 1900 <= int(digits[:4]) < 2100:
        return None
    try:
        return datetime.strptime(digits, formats[len(digits)]).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


@given(instant=st.integers(100_000_000, 4_102_444_799), unit=st.sampled_from([1, 1_000, 1_000_000, 1_000_000_000]))
def test_any_epoch_instant_as_digit_text_reads_back(instant, unit):
    """The rule: digits alone, other than eight (YYYYMMDD), are an epoch number in s, ms, µs or ns
    by magnitude, from 1973 (nine digits of seconds) to 2100; but 10, 12 or 14 that make a date
    and time of 1900-2099 are that time, UTC (the seconds of 2030-2036 that look like one)."""
    text = str(instant * unit)
    got, naive = parse_iso(text)
    compact = _as_compact(text)
    assert not naive
    if compact is not None:
        assert got == compact
    else:
        assert abs(got - instant) <= (1e-6 if unit == 1_000_000_000 else 0.0)  # a double's ns


@given(when=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)),
       form=st.sampled_from(["%Y%m%d%H", "%Y%m%d%H%M", "%Y%m%d%H%M%S"]))
def test_any_compact_date_time_reads_as_that_time(when, form):
    """YYYYMMDDhh (DWD's MESS_DATUM), ...hhmm and ...hhmmss written as text (or a float's text, an
    integer column with gaps): the UTC time written, not an epoch number (2024010112 was 2034-02-20).
    A JSON number stays an epoch number: the usual carrier of epoch seconds (case 21's property)."""
    text = when.strftime(form)
    want = datetime.strptime(text, form).replace(tzinfo=UTC).timestamp()
    assert parse_iso(text) == (want, False) == parse_iso(text + ".0")
    number = float(text)
    assert epoch_seconds(number) == number / (1 if number < 1e11 else 1e3 if number < 1e14 else 1e6)
    assert epoch_seconds_array(np.array([float(text)]))[0] == epoch_seconds(float(text))


def test_eight_digits_that_are_no_date_are_refused_not_seconds_of_1970():
    with pytest.raises(TimeError):
        parse_iso("20240230")


def test_a_replay_of_epoch_millisecond_text_stores_every_row(tmp_path: Path):
    path = tmp_path / "ms.jsonl"
    path.write_text("".join(json.dumps({"ts": ts, "station": "grb", "temp_c": 10.0 + i}) + "\n"
                            for i, ts in enumerate(MISREAD)))
    cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs")},
                      dotenv_file=None)
    with JsonlStore(tmp_path / "db") as store:
        engine = Engine(cfg, store)
        assert replay_file(engine, path)
    assert engine.counters.rejected == 0
    stored = [json.loads(line)["ts"] for line in (tmp_path / "db" / "consumer_stream.jsonl").read_text().splitlines()]
    assert stored == ["2010-10-25T12:51:00Z", "2010-10-25T12:56:00Z", "2010-10-25T13:01:00Z", "2024-01-01T12:00:00Z"]
