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


FORMATS = {10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


def _as_compact(digits: str) -> float | None:
    """The oracle: YYYYMMDDhh[mm[ss]] of 1900-2099 as naive seconds, else None."""
    if len(digits) not in FORMATS or not 1900 <= int(digits[:4]) < 2100:
        return None
    try:
        return datetime.strptime(digits, FORMATS[len(digits)]).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _starts_as_a_date(digits: str) -> bool:
    """10, 12 or 14 digits whose first eight read as a year 1900-2099, a month 01-12, a day 01-31."""
    return (len(digits) in FORMATS and 1900 <= int(digits[:4]) < 2100 and 1 <= int(digits[4:6]) <= 12
            and 1 <= int(digits[6:8]) <= 31)


@given(instant=st.integers(100_000_000, 4_102_444_799), unit=st.sampled_from([1, 1_000, 1_000_000, 1_000_000_000]))
def test_any_epoch_instant_as_digit_text_reads_back(instant, unit):
    """The rule: digits alone, other than eight (YYYYMMDD), are an epoch number in s, ms, µs or ns
    by magnitude, from 1973 (nine digits of seconds) to 2100; but 10, 12 or 14 that make a date
    and time of 1900-2099 are that time, naive (the seconds of 2030-2036 that look like one), and
    those that start as a date but make none are refused, never read as an epoch number."""
    text = str(instant * unit)
    compact = _as_compact(text)
    if compact is None and _starts_as_a_date(text):
        with pytest.raises(TimeError):
            parse_iso(text)
        return
    got, naive = parse_iso(text)
    assert naive == (compact is not None)
    if compact is not None:
        assert got == compact
    else:
        assert abs(got - instant) <= (1e-6 if unit == 1_000_000_000 else 0.0)  # a double's ns


@given(st.sampled_from(sorted(FORMATS)), st.integers(1900, 2099), st.integers(1, 12), st.integers(1, 31),
       st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.booleans())
def test_digits_that_start_as_a_date_are_that_date_and_time_or_refused(width, year, month, day, hour, minute,
                                                                       second, float_text):
    """The rule behind the helper's 2024010124 (hour 24), 2024023012 (30 February), 202401011260: text
    that starts as a compact date is read as one, naive (a configured zone applies), or refused with
    the reason; never taken for seconds of 2034 or milliseconds of 1976."""
    text = f"{year:04d}{month:02d}{day:02d}{hour:02d}{minute:02d}{second:02d}"[:width]
    shown = text + ".0" if float_text else text
    want = _as_compact(text)
    if want is None:
        with pytest.raises(TimeError, match="makes no date and time"):
            parse_iso(shown)
    else:
        assert parse_iso(shown) == (want, True)


@given(when=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)),
       form=st.sampled_from(["%Y%m%d%H", "%Y%m%d%H%M", "%Y%m%d%H%M%S"]))
def test_any_compact_date_time_reads_as_that_time(when, form):
    """YYYYMMDDhh (DWD's MESS_DATUM), ...hhmm and ...hhmmss written as text (or a float's text, an
    integer column with gaps): the time written, naive, not an epoch number (2024010112 was 2034-02-20).
    A JSON number stays an epoch number: the usual carrier of epoch seconds (case 21's property)."""
    text = when.strftime(form)
    want = datetime.strptime(text, form).replace(tzinfo=UTC).timestamp()
    assert parse_iso(text) == (want, True) == parse_iso(text + ".0")
    number = float(text)
    assert epoch_seconds(number) == number / (1 if number < 1e11 else 1e3 if number < 1e14 else 1e6)
    assert epoch_seconds_array(np.array([float(text)]))[0] == epoch_seconds(float(text))


def test_eight_digits_that_are_no_date_are_refused_not_seconds_of_1970():
    with pytest.raises(TimeError, match="starts as a date, YYYYMMDD, but makes none"):
        parse_iso("20240230")
    with pytest.raises(TimeError, match="starts as a date"):
        parse_iso("20240230.0")


def test_a_floats_text_of_eight_digits_is_the_date():
    assert parse_iso("20240101.0") == parse_iso("20240101") == (1704067200.0, True)


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


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_configured_zone_applies_to_compact_date_times_as_to_any_naive_time(tmp_path: Path, suffix: str):
    """`--tz` (inputs.tz) is the zone of times without an offset: 2024010100 at Chicago is 06:00Z,
    as 20240101 and 2024-01-01 00:00 are; a compact time that makes no time is quarantined."""
    times = ["2024010100", "20240101", "2024-01-01 00:00", "202401010130", "2024010124"]
    path = tmp_path / f"t.{suffix}"
    if suffix == "csv":
        path.write_text("time,station,temp_c\n" + "".join(f"{t},s{i},1.5\n" for i, t in enumerate(times)))
    else:
        path.write_text("".join(json.dumps({"ts": t, "station": f"s{i}", "temp_c": 1.5}) + "\n"
                                for i, t in enumerate(times)))
    cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs"),
                                 "MASS_TZ": "America/Chicago"}, dotenv_file=None)
    with JsonlStore(tmp_path / "db") as store:
        engine = Engine(cfg, store)
        assert replay_file(engine, path)
    stored = {json.loads(line)["station"]: json.loads(line)["ts"]
              for line in (tmp_path / "db" / "consumer_stream.jsonl").read_text().splitlines()}
    assert stored == {"s0": "2024-01-01T06:00:00Z", "s1": "2024-01-01T06:00:00Z", "s2": "2024-01-01T06:00:00Z",
                      "s3": "2024-01-01T07:30:00Z"}
    rejected = [json.loads(line) for line in (tmp_path / "db" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == 1 and "makes no date and time" in rejected[0]["reason"]


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@given(digits=st.text("0123456789", min_size=6, max_size=16), sign=st.sampled_from(["", "+", "-"]),
       fraction=st.sampled_from(["", ".5", ".25", ".0", "e0", ".5e0", "E+0"]))
def test_a_sign_or_fraction_never_turns_a_date_into_epoch_seconds(digits, sign, fraction):
    """The rule behind "+2024010112" (read as epoch seconds of 2034-02-20) and "+20240101" (1970-08-23):
    digits that start as a date (8 from a year 1900-2099, or 10/12/14 that start as YYYYMMDD) with a
    sign or a fraction are refused with the reason; any other number's text is an epoch number, and
    whole unsigned digits keep their own rules (the tests above)."""
    text = sign + digits + fraction
    if not sign and fraction in ("", ".0"):
        return  # whole and unsigned: a date, a compact date-time or an epoch number (tested above)
    dated = (len(digits) == 8 and 1900 <= int(digits[:4]) < 2100) or _starts_as_a_date(digits)
    if dated:
        with pytest.raises(TimeError, match="with a sign, a fraction or an exponent"):
            parse_iso(text)
    else:
        assert parse_iso(text) == (epoch_seconds(float(text)), False)


def test_a_number_with_a_fraction_is_never_read_by_fromisoformat_as_a_date():
    """Python 3.11's fromisoformat takes any character for the "T": "00010110000.5" was the date
    0001-01-10 00:00:00.5 (the property above found it). A number's text with a sign, a fraction or
    an exponent is an epoch number, or refused when its digits start as a date."""
    assert parse_iso("00010110000.5") == (10_110_000.5, False)
    assert parse_iso("00010110.5") == (10_110.5, False)
    assert parse_iso("1714557600.25") == (1_714_557_600.25, False)
    assert parse_iso("20240101") == (1_704_067_200.0, True)  # digits alone: still the basic-format date
    # a date and a time after a dot, as some model and ARM files write them, is still that date and time
    assert parse_iso("20240101.1200") == parse_iso("20240101.120000") == (1_704_110_400.0, True)
    for text in ("20240501e0600", "1e400"):  # an exponent past float range: no date either
        with pytest.raises(TimeError):
            parse_iso(text)


@given(text=st.one_of(st.text("0123456789", min_size=1, max_size=16),
                      st.integers(0, 4_102_444_799_000).map(str),
                      st.datetimes(min_value=datetime(1900, 1, 1)).map(lambda d: d.strftime("%Y%m%d%H%M"))))
def test_digits_of_another_script_are_never_an_epoch_number(text):
    """float() reads full-width digits ("１７００００００００" was 2023-11-14): a time text in them is
    refused, as fromisoformat refuses a date in them, never read as seconds."""
    with pytest.raises(TimeError):
        parse_iso(text.translate(FULL_WIDTH))


def test_a_replay_quarantines_signed_and_full_width_times_with_their_reason(tmp_path: Path):
    path = tmp_path / "odd.jsonl"
    times = ["+2024010112", "１７００００００００", "2024-01-01T00:00:00Z", "+1704110400"]
    path.write_text("".join(json.dumps({"ts": t, "station": "a", "temp_c": 1.0 + i}, ensure_ascii=False) + "\n"
                            for i, t in enumerate(times)), encoding="utf-8")
    cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs")},
                      dotenv_file=None)
    with JsonlStore(tmp_path / "db") as store:
        engine = Engine(cfg, store)
        assert replay_file(engine, path)
    stored = [json.loads(line)["ts"] for line in (tmp_path / "db" / "consumer_stream.jsonl").read_text().splitlines()]
    assert stored == ["2024-01-01T00:00:00Z", "2024-01-01T12:00:00Z"]
    quarantine = (tmp_path / "db" / "rejected.jsonl").read_text(encoding="utf-8")
    rejected = [json.loads(line) for line in quarantine.splitlines()]
    assert len(rejected) == 2
    assert "with a sign, a fraction or an exponent" in rejected[0]["reason"] and "+2024010112" in rejected[0]["raw"]
    assert "unparseable timestamp" in rejected[1]["reason"]


@given(digits=st.text("0123456789", min_size=2, max_size=16), at=st.integers(1, 15))
def test_a_number_with_an_underscore_is_never_an_epoch_number(digits, at):
    """float() reads "2024_01_01" (1970-08-23) and "2024_0101_12" (2034-02-20): a time text is an epoch
    number only in the plain form JSON writes numbers in."""
    at = min(at, len(digits) - 1)
    text = digits[:at] + "_" + digits[at:]
    try:
        seconds, naive = parse_iso(text)
    except TimeError:
        return
    # fromisoformat may read a date, "_" for its "T", then a time ("20240101_1200"): a date, not float()'s
    assert naive and seconds != epoch_seconds(float(text))
