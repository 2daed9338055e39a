"""The aggregator's shortcuts (a window per reading taken as its own stats, windows found once per
scope and window size, lines put together from arrays dumped once, one-reading windows in the
compact form) write the same records as the plain path (segment reductions for every window, one
orjson call per line, the full form): `decode` of the two gives the same records in the same order."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.aggregates import Aggregator, decode, records_in
from mass_tui.sinks.aggregates import _by_station_rows
from sources.schema import parse_time

T0 = parse_time("2024-03-01T00:00:00Z")
_VARIABLES = ("temp_c", "precip_mm", "pressure_hpa")
_LABELS = {"a": {}, "b": {"building": "b1", "floor": "1"}, "c": {"building": "b1", "floor": "2"}}
_value = st.one_of(st.none(), st.integers(-30, 30).map(float), st.sampled_from([-0.0, 0.1, 2.675, 1e-7, -1e-7, 1e300]))
# Times: on whole minutes or hours (a window per reading), or anywhere in a minute (several per window).
_time = st.tuples(st.integers(0, 3 * 24 * 60), st.sampled_from([0, 0, 0, 1, 30, 59.5]),
                  st.booleans()).map(lambda m: (m[0] * 60 if m[2] else m[0] // 60 * 3600) + m[1])
_rows = st.lists(st.tuples(st.sampled_from(sorted(_LABELS)), _time,
                           st.lists(_value, min_size=len(_VARIABLES), max_size=len(_VARIABLES))),
                 min_size=1, max_size=120)


def batches(rows: list, cuts: list[int]) -> Iterator[tuple[dict, np.ndarray, dict[str, np.ndarray]]]:
    """The rows (station, seconds after T0, values of _VARIABLES or None) in batches of the sizes in
    `cuts` (in turn), each as `Aggregator.add_many` takes it: (station groups, times, columns)."""
    i = k = 0
    while i < len(rows):
        part = rows[i:i + cuts[k % len(cuts)]]
        ts = np.array([T0 + t for _s, t, _v in part])
        columns = {name: np.array([np.nan if v[j] is None else v[j] for _s, _t, v in part])
                   for j, name in enumerate(_VARIABLES)}
        yield _by_station_rows([s for s, _t, _v in part]), ts, columns
        i, k = i + len(part), k + 1


def _run(rows: list, cuts: list[int], lateness: float, shortcuts: bool) -> tuple:
    agg = Aggregator(lateness=lateness)
    agg._shortcuts = shortcuts
    lines: list[bytes] = []
    for groups, ts, columns in batches(rows, cuts):
        if shortcuts:  # both forms of the same lines: parts joined once, and each line whole
            blob, n = agg.add_many_data(groups, _LABELS, ts, columns)
            got = blob.split(b"\n")[:-1]
            assert len(got) == n
        else:
            got = agg.add_many(groups, _LABELS, ts, columns)
        lines += got
    return decode(lines + agg.flush()), agg.late, agg.too_late


@settings(max_examples=150, deadline=None)
@given(_rows, st.lists(st.integers(1, 120), min_size=1, max_size=5), st.sampled_from([0.0, 60.0, 3600.0]),
       st.booleans())
def test_property_shortcuts_write_the_bytes_of_the_plain_path(rows, cuts, lateness, ordered):
    """Windows of one reading and of several, stations alone and in groups, late and too-late rows
    (out of time order), absent values (NaN), -0.0: the same lines, byte for byte, in the same order."""
    if ordered:
        rows = sorted(rows, key=lambda r: r[1])
    assert _run(rows, cuts, lateness, True) == _run(rows, cuts, lateness, False)


@settings(max_examples=100, deadline=None)
@given(_rows, st.lists(st.integers(1, 120), min_size=1, max_size=5), st.sampled_from([0.0, 60.0, 3600.0]),
       st.booleans())
def test_property_records_in_counts_the_records_the_lines_expand_to(rows, cuts, lateness, shortcuts):
    """The sink's summary counts records with `records_in`, on the bytes: for lines of either form
    (compact or full, starts stepped or listed, several windows or one, daily summaries), as many
    as `expand` gives, line by line and for the lines joined."""
    agg = Aggregator(lateness=lateness)
    agg._shortcuts = shortcuts
    lines: list[bytes] = []
    for groups, ts, columns in batches(rows, cuts):
        lines += agg.add_many(groups, _LABELS, ts, columns)
    lines += agg.flush()
    assert [records_in(x) for x in lines] == [len(decode([x])) for x in lines]
    assert records_in(b"\n".join(lines) + b"\n") == len(decode(lines))


def test_records_in_an_empty_window_array_and_no_lines():
    assert records_in(b"") == 0
    assert records_in(b'{"kind":"windows","window":"1m","variable":"temp_c","start":[],"count":[],"late":[]}') == 0
    assert records_in(b'{"kind":"daily","day":"2024-03-01"}\n{"kind":"daily","day":"2024-03-02"}') == 2


def test_hourly_readings_take_the_shortcut_and_write_the_plain_bytes():
    """Hourly data (the Open-Meteo case): every 1 min and 1 h window holds one reading."""
    rows = [(s, h * 3600, [20.0 + h % 7, 0.1 * (h % 3), 1000.5]) for h in range(300) for s in "abc"]
    fast, plain = _run(rows, [len(rows)], 3600.0, True), _run(rows, [len(rows)], 3600.0, False)
    assert fast == plain and len(fast[0]) > 20


def test_one_reading_windows_are_written_compact_and_read_back_whole():
    """Hourly readings on the hour: the 1 min and 1 h lines hold the values once and no times but the
    starts (count, late, min, max and their times implied), about a third of the full form's bytes."""
    rows = [(s, h * 3600, [20.25 + h % 7, 0.1 * (h % 3), 1000.5]) for h in range(300) for s in "abc"]
    groups = _by_station_rows([s for s, _t, _v in rows])
    ts = np.array([T0 + t for _s, t, _v in rows])
    columns = {name: np.array([v[j] for _s, _t, v in rows]) for j, name in enumerate(_VARIABLES)}
    fast, plain = Aggregator(lateness=3600.0), Aggregator(lateness=3600.0)
    plain._shortcuts = False
    blob, _n = fast.add_many_data(groups, _LABELS, ts, columns)
    compact = [x for x in blob.split(b"\n") if b'"window":"1m"' in x and b'"scope":"station"' in x]
    full = [x for x in plain.add_many(groups, _LABELS, ts, columns)
            if b'"window":"1m"' in x and b'"scope":"station"' in x]
    assert compact and all(b'"value":' in x and b'"count"' not in x and b'"at"' not in x for x in compact)
    assert decode(compact) == decode(full)
    assert sum(map(len, compact)) < 0.5 * sum(map(len, full))
    records = decode(compact)
    precip = [r for r in records if r["variable"] == "precip_mm"]
    assert precip and all(r["sum"] == r["mean"] == r["min"] == r["max"] and r["count"] == 1 and r["late"] == 0
                          and r["min_ts"] == r["max_ts"] == r["ts"] for r in precip)


@st.composite
def _series(draw):
    """Regular readings as stations send them: every `step` seconds, stations taking turns, now and
    then a reading late (moved back) or missing a value."""
    n = draw(st.integers(2, 400))
    step = draw(st.sampled_from([1, 15, 20, 60, 600, 900, 3600]))
    stations = draw(st.lists(st.sampled_from(sorted(_LABELS)), min_size=1, max_size=3, unique=True))
    seed = draw(st.integers(0, 2**32 - 1))
    late = draw(st.sampled_from([0.0, 0.02, 0.2]))
    gaps = draw(st.sampled_from([0.0, 0.1, 0.5]))
    rng = np.random.default_rng(seed)
    t = (np.arange(n) // len(stations)) * step + draw(st.integers(0, 3600))
    t = np.where(rng.random(n) < late, t - rng.integers(0, 3 * 3600, n), t)
    values = np.round(rng.normal(10, 5, (n, len(_VARIABLES))), int(draw(st.integers(0, 3))))
    values[rng.random(values.shape) < gaps] = np.nan
    return [(stations[i % len(stations)], int(t[i]), [None if v != v else float(v) for v in values[i]])
            for i in range(n)]


@settings(max_examples=80, deadline=None)
@given(_series(), st.lists(st.integers(1, 200), min_size=1, max_size=5), st.sampled_from([0.0, 60.0, 3600.0]))
def test_property_shortcuts_on_regular_series(rows, cuts, lateness):
    """Many readings per window and many windows per batch, batches cut anywhere (mid-window: the
    next batch merges into the windows the last one left open), some readings late."""
    assert _run(rows, cuts, lateness, True) == _run(rows, cuts, lateness, False)


@settings(max_examples=10, deadline=None)
@given(_rows, st.sampled_from([0.0, 3600.0]))
def test_property_the_sql_view_reads_compact_lines_as_the_full_form(tmp_path_factory, rows, lateness):
    """`mass query` over the aggregates: the same rows from compact lines as from the full form."""
    from mass_tui.history import query

    rows = sorted(rows, key=lambda r: r[1])
    out = []
    for shortcuts in (True, False):
        agg = Aggregator(lateness=lateness)
        agg._shortcuts = shortcuts
        ts = np.array([T0 + t for _s, t, _v in rows])
        columns = {name: np.array([np.nan if v[j] is None else v[j] for _s, _t, v in rows])
                   for j, name in enumerate(_VARIABLES)}
        groups = _by_station_rows([s for s, _t, _v in rows])
        lines = (agg.add_many_data(groups, _LABELS, ts, columns)[0].split(b"\n")[:-1] if shortcuts
                 else agg.add_many(groups, _LABELS, ts, columns)) + agg.flush()
        db = tmp_path_factory.mktemp("db")
        (db / "aggregates.jsonl").write_bytes(b"".join(x + b"\n" for x in lines))
        out.append(query(db, 'SELECT * FROM aggregates ORDER BY kind, "window", scope, key, variable, ts'))
    assert out[0] == out[1]
