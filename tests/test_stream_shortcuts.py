"""The stream writer's shortcuts (a column of few distinct decimals read off a table, each row's
key and value as one piece) give the bytes orjson writes, on batches big enough to take them."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.sinks.jsonl import _column_json, _stream_lines
from sources.batch import ObservationBatch
from sources.schema import Observation
from sources.variables import REGISTRY
from tests.test_engine import _stream_line_plainly

# Columns as sensors give them: whole numbers, 1 to 4 decimals, in a narrow or a wide span,
# with gaps (NaN), -0.0, and now and then a value with more decimals or a huge one.
_column = st.tuples(
    st.integers(256, 1500), st.sampled_from([1, 10, 100, 1000, 10000]), st.integers(-100000, 100000),
    st.integers(1, 3000), st.floats(0, 0.3), st.sampled_from([None, -0.0, 0.1 + 0.2, 1e12, 5e-324, 0.5]),
    st.integers(0, 2**32 - 1))


def _make(spec) -> np.ndarray:
    n, scale, low, span, gaps, odd, seed = spec
    rng = np.random.default_rng(seed)
    col = rng.integers(low, low + span, n) / float(scale)
    col[rng.random(n) < gaps] = np.nan
    if odd is not None:
        col[rng.integers(n)] = odd
    return col


@settings(max_examples=300, deadline=None)
@given(_column, st.sampled_from([b"", b',"temp_c":', b'"a%s":']))
def test_property_a_column_reads_as_orjson_writes_each_value(spec, key):
    col = _make(spec)
    assert _column_json(col, key) == [key + v for v in orjson.dumps(col.tolist())[1:-1].split(b",")]


@settings(max_examples=40, deadline=None)
@given(st.lists(_column, min_size=1, max_size=4), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_property_big_batches_are_the_records_orjson_writes(specs, extras, seed):
    """Several hundred rows (the table's size), variables with gaps so rows differ in their first
    scored key, with and without a position and tags: one orjson.dumps per record, byte for byte."""
    rng = np.random.default_rng(seed)
    n = min(spec[0] for spec in specs)
    names = ["temp_c", "occupancy", "pressure_hpa", "gust_mps"][:len(specs)]
    columns = {name: _make(spec)[:n] for name, spec in zip(names, specs, strict=False)}
    places = [(None, None, {}), (51.5, -0.125, {}), (None, None, {"floor": "2"}), (-33.8, 151.0, {"a": "%s"})]
    obs = []
    for i in range(n):
        values = {k: float(c[i]) for k, c in columns.items() if c[i] == c[i]} or {"temp_c": 1.5}
        lat, lon, tags = places[(extras + i // 100) % 4 if extras else 0]
        obs.append(Observation(1.7e9 + 60 * (i // 3), f"s{i % 3}", "test", values, lat, lon, tags))
    batch = ObservationBatch.from_observations(obs)
    scores = {name: np.where(np.isnan(col), np.nan, np.round(rng.random(col.size), int(rng.integers(2, 6))))
              for name, col in batch.columns.items() if REGISTRY[name].scored}
    per_row = [{name: float(col[i]) for name, col in scores.items()} for i in range(n)]
    order = list(batch.columns)
    assert _stream_lines(batch, scores) == [_stream_line_plainly(o, s, order)
                                            for o, s in zip(obs, per_row, strict=True)]
