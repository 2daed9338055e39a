from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.schema import MAX_MESSAGE_BYTES, Observation, Rejection, decode, parse_time


def test_decodes_flat_message_with_utc_time():
    obs = decode(b'{"ts": "2024-05-01T12:00:00+02:00", "station": "a", "temp_c": 21.5, "pressure_hpa": 1012}')
    assert isinstance(obs, Observation)
    assert obs.ts == parse_time("2024-05-01T10:00:00Z")
    assert obs.values == {"temp_c": 21.5, "pressure_hpa": 1012.0}


def test_seed_device_field_names_are_accepted():
    raw = orjson.dumps({
        "ts_iso": "2025-01-10T08:00:00Z", "provider": "open-meteo", "lat": 40.7, "lon": -74.0,
        "temp_c": 3.2, "pressure_hpa": 1020.1, "humidity_pct": 70, "wind_mps": 4.1, "gust_mps": 7.9,
    })
    obs = decode(raw)
    assert isinstance(obs, Observation)
    assert obs.station == "open-meteo@40.7,-74.0"
    assert obs.source == "open-meteo"
    assert set(obs.values) == {"temp_c", "pressure_hpa", "humidity_pct", "wind_mps", "gust_mps"}


def test_aliases_map_to_registry_names():
    obs = decode(b'{"time_utc": "2012-10-29T19:50:00Z", "station": "b", "wind_gust_ms": 22.5, "air_temp_c": 9}')
    assert isinstance(obs, Observation)
    assert obs.values == {"gust_mps": 22.5, "temp_c": 9.0}


def test_naive_timestamp_is_utc_and_unix_numbers_work():
    assert parse_time("2020-01-01T00:00:00") == 1577836800.0
    assert parse_time(1577836800) == 1577836800.0
    assert parse_time(1577836800000) == 1577836800.0  # milliseconds
    assert parse_time(1577836800000000) == 1577836800.0  # microseconds
    assert parse_time(1577836800000000000) == 1577836800.0  # nanoseconds


def test_nulls_are_missing_readings_not_errors():
    obs = decode(b'{"ts": 1, "station": "s", "temp_c": null, "humidity_pct": 50}')
    assert isinstance(obs, Observation) and obs.values == {"humidity_pct": 50.0}


BAD = [
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"station": "s", "temp_c": 1}', "missing ts"),
    (b'{"ts": "yesterday", "station": "s", "temp_c": 1}', "unparseable timestamp"),
    (b'{"ts": 1, "temp_c": 1}', "missing station"),
    (b'{"ts": 1, "station": "s", "temp_c": "warm"}', "temp_c is not a number"),
    (b'{"ts": 1, "station": "s", "temp_c": true}', "temp_c is not a number"),
    (b'{"ts": 1, "station": "s", "temp_c": 150}', "outside the physical range"),
    (b'{"ts": 1, "station": "s", "temp_c": 999.0}', "missing-value sentinel 999.0"),
    (b'{"ts": 1, "station": "s", "humidity_pct": -3}', "outside the physical range"),
    (b'{"ts": 1, "station": "s", "foo": 3}', "no variable values"),
    (b'{"ts": 1, "station": "", "temp_c": 1}', "station is not a non-empty string"),
    (b'{"ts": 1, "station": "s", "lat": 123, "temp_c": "x"}', "lat is not a coordinate"),
    (b'{"ts": 1e20, "station": "s", "temp_c": 1}', "timestamp out of range"),
    (b'{"ts": 1, "station": "s", "temp_c": 1, "tags": {"a": {"b": 1}}}', "tags must be flat"),
]


def test_each_bad_message_is_rejected_with_its_reason():
    for raw, reason in BAD:
        out = decode(raw)
        assert isinstance(out, Rejection), raw
        assert reason in out.reason, (raw, out.reason)
        assert out.raw == raw


def test_oversized_message_is_rejected():
    out = decode(b'{"ts": 1, "station": "s", "x": "' + b"a" * MAX_MESSAGE_BYTES + b'"}')
    assert isinstance(out, Rejection) and "larger than" in out.reason


def test_unknown_fields_are_counted_not_silently_dropped():
    ignored: dict[str, int] = {}
    decode(b'{"ts": 1, "station": "s", "temp_c": 1, "colour": "red"}', ignored=ignored)
    decode(b'{"ts": 2, "station": "s", "temp_c": 1, "colour": "blue"}', ignored=ignored)
    assert ignored == {"colour": 2}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "ts": st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.just("2024-01-01T00:00:00Z")),
        "station": json_values,
        "temp_c": json_values,
        "pressure_hpa": st.floats(allow_nan=False, allow_infinity=False),
        "tags": json_values,
        "lat": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(raw):
    assert isinstance(decode(raw), Observation | Rejection)


@settings(max_examples=300, deadline=None)
@given(message_like)
def test_message_like_objects_never_raise_and_valid_ones_are_in_range(obj):
    out = decode(json.dumps(obj).encode())
    assert isinstance(out, Observation | Rejection)
    if isinstance(out, Observation):
        assert -90 <= out.values.get("temp_c", 0) <= 70
        assert 300 <= out.values.get("pressure_hpa", 1000) <= 1100
