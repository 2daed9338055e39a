"""An anomaly crosses to the writer process by pickle and is written by `to_record`: both hold
whatever its fields, with the cached time texts equal to `iso_utc`'s."""

from __future__ import annotations

import math
import pickle

import orjson
from hypothesis import given
from hypothesis import strategies as st

from detectors.bank import episode_id
from detectors.base import Anomaly
from detectors.rules import format_duration
from sources.schema import iso_utc

times = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**40), 2**40).map(float))
texts = st.text(max_size=20)


@given(times, texts, texts, st.floats(allow_nan=True), texts, st.sampled_from(["warning", "critical"]),
       st.floats(0, 1), texts, texts, times, st.floats(allow_nan=True))
def test_an_anomaly_pickles_to_an_equal_one_and_writes_the_same_record(ts, station, variable, value, detector,
                                                                       severity, score, reason, episode, start,
                                                                       peak):
    a = Anomaly(ts, station, variable, value, detector, severity, score, reason, episode, start, peak)
    b = pickle.loads(pickle.dumps(a))
    assert type(b) is Anomaly
    for name in Anomaly.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        assert x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)), name
    record = b.to_record()
    assert record["ts"] == iso_utc(ts)
    if episode:
        assert record["episode"]["start"] == iso_utc(start)
    # twice: the second from the cache (compared as written: NaN is unequal to itself in a dict)
    assert orjson.dumps(b.to_record()) == orjson.dumps(record) == orjson.dumps(a.to_record())


def test_an_anomaly_without_an_episode_keeps_its_defaults_through_pickle():
    b = pickle.loads(pickle.dumps(Anomaly(1.0, "s", "temp_c", 2.0, "spike", "warning", 0.5, "why")))
    assert b.episode == "" and math.isnan(b.episode_start) and math.isnan(b.episode_peak)
    assert "episode" not in b.to_record()


@given(st.integers(-2208988800, 4102444799))  # 1900 to 2099, the times the decoder lets through
def test_episode_ids_name_the_onset_in_utc(start):
    first = episode_id("st", "temp_c", "spike", float(start))
    assert first == f"st/temp_c/spike@{iso_utc(float(start))}" == episode_id("st", "temp_c", "spike", float(start))


def test_an_episode_without_an_onset_is_named_with_a_question_mark():
    assert episode_id("st", "v", "f", math.nan).endswith("@?")


@given(st.floats(0, 1e7))
def test_durations_read_to_the_minute_whether_cached_or_not(seconds):
    minutes = int(round(seconds / 60.0))
    hours, rest = divmod(minutes, 60)
    expected = f"{hours} h {rest} min" if hours and rest else (f"{hours} h" if hours else f"{rest} min")
    assert format_duration(seconds) == expected == format_duration(seconds)
