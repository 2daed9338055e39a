from __future__ import annotations

import json
import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sources.batch import ObservationBatch, decode_batch
from sources.decode import Decoder
from sources.schema import Observation

values = st.one_of(
    st.none(), st.booleans(), st.integers(-200, 2000), st.floats(-200, 2000, allow_nan=False),
    st.just("12.5"), st.just(1e300), st.integers(-(2**60), 2**60),
)
stations = st.one_of(st.sampled_from(["a", "b", "c"]), st.just(""), st.just("  "), st.integers(0, 3), st.none())
stamps = st.one_of(
    st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00+02:00", "2024-01-01 02:00", "nope"]),
    st.integers(0, 2_000_000_000), st.floats(0, 2e9), st.none(), st.booleans(),
    st.integers(-(2**64), 2**64), st.floats(1e11, 2e12), st.just(10**400),  # huge, milliseconds, beyond float
)
keys = st.sampled_from(
    ["temp_c", "air_temp_c", "pressure_hpa", "humidity_pct", "gust_mps", "colour", "source", "lat", "tags", "provider"]
)


@st.composite
def message(draw):
    obj = {}
    if draw(st.booleans()) or draw(st.booleans()):
        obj["ts"] = draw(stamps)
    if draw(st.integers(0, 9)):
        obj["station"] = draw(stations)
    for key in draw(st.lists(keys, max_size=5)):
        if key == "lat":
            obj[key] = draw(st.one_of(st.floats(-100, 100, allow_nan=False), st.just("x")))
        elif key == "tags":
            obj[key] = draw(st.one_of(st.just({"floor": 2}), st.just([1])))
        elif key in ("source", "provider"):
            obj[key] = draw(st.one_of(st.just("sim"), st.just(""), st.integers(0, 3)))
        else:
            obj[key] = draw(values)
    raw = json.dumps(obj).encode()
    return draw(st.sampled_from([raw, raw, raw, b"{oops", b"[1]"]))


def _same(a: Observation, b: Observation) -> bool:
    return (
        a.ts == b.ts and a.station == b.station and a.source == b.source and a.lat == b.lat and a.lon == b.lon
        and a.tags == b.tags and a.values.keys() == b.values.keys()
        and all(a.values[k] == b.values[k] or (math.isnan(a.values[k]) and math.isnan(b.values[k])) for k in a.values)
    )


def _one_by_one(raws, **kw):
    obs, rejected, fields = [], [], []
    ignored: dict[str, int] = {}
    for raw in raws:
        out = Decoder().decode([raw], ignored=ignored, **kw)
        obs += [out.batch.observation(i) for i in range(len(out.batch))]
        rejected += out.rejected
        fields += out.fields
    return obs, rejected, fields, ignored


@settings(max_examples=400, deadline=None)
@given(st.lists(message(), max_size=40))
# Found by hypothesis: a time out of range with no station was reported by time alone, yet by station in a batch.
@example([b'{"ts": "2024-01-01T00:00:00Z"}', b'{"ts": -2208988800000001}'])
def test_batch_decode_equals_one_message_at_a_time(raws):
    """The columnar path gives, message for message, what decoding each message alone gives."""
    expected_obs, expected_rej, expected_fields, ignored_one = _one_by_one(raws, default_source="rec")
    ignored_batch: dict[str, int] = {}
    out = decode_batch(raws, default_source="rec", ignored=ignored_batch)
    assert len(out.batch) == len(expected_obs)
    assert all(_same(out.batch.observation(i), o) for i, o in enumerate(expected_obs))
    assert [(r.reason, r.raw) for r in out.rejected] == [(r.reason, r.raw) for r in expected_rej]
    assert [f.to_record(0) for f in out.fields] == [f.to_record(0) for f in expected_fields]
    assert ignored_batch == ignored_one
    assert len(out.batch) + len(out.rejected) == len(raws)  # each message stored or quarantined once


def test_round_trip_through_columns_keeps_observations():
    obs = [
        Observation(1.0, "a", "s", {"temp_c": 1.0}),
        Observation(2.0, "b", "s", {"humidity_pct": 50.0}, lat=1.0, lon=2.0, tags={"floor": "2"}),
    ]
    batch = ObservationBatch.from_observations(obs)
    assert [batch.observation(i) for i in range(2)] == obs


def test_bulk_same_layout_with_a_few_bad_fields_keeps_every_good_value():
    raws = []
    for i in range(3000):
        obj = {"ts": 1_700_000_000 + i * 60, "station": f"s{i % 7}", "temp_c": 10 + (i % 13) * 0.5,
               "pressure_hpa": 1000 + (i % 5), "colour": "red"}
        if i % 97 == 0:
            obj["temp_c"] = 500  # out of range: this field alone
        if i % 101 == 0:
            obj["pressure_hpa"] = "high"  # not a number: this field alone
        if i % 103 == 0:
            obj["ts"] = "not a time"  # the whole message
        raws.append(json.dumps(obj).encode())
    expected_obs, expected_rej, expected_fields, ignored_one = _one_by_one(raws)
    ignored_batch: dict[str, int] = {}
    out = decode_batch(raws, ignored=ignored_batch)
    assert len(out.batch) == len(expected_obs) == 3000 - 30
    assert all(_same(out.batch.observation(i), o) for i, o in enumerate(expected_obs))
    assert [r.reason for r in out.rejected] == [r.reason for r in expected_rej]
    assert len(out.fields) == len(expected_fields) == 31 + 29 - 1  # 0 is also a multiple of 103
    assert {f.code for f in out.fields} == {"out_of_range", "not_a_number"}
    assert ignored_batch == ignored_one
