"""The UI's pure parts, without a terminal: text safety, units, episodes, filters, axes, canvas, state."""

from __future__ import annotations

import json
import math
import os
import time
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from detectors.base import Anomaly
from mass_tui.data_lock import DataDirBusy, DataDirLock
from mass_tui.live_state import FIELDS, Ring
from mass_tui.ui.alert_state import StateFile
from mass_tui.ui.chart_render import ChartSpec, build, even_axis, legend
from mass_tui.ui.charts import Window, episode_window, nice_step, time_ticks
from mass_tui.ui.episodes import GAP_SECONDS, EpisodeBook, group, what_fired
from mass_tui.ui.event_filter import RowState, chip, parse_filter, select
from mass_tui.ui.keys import KEYS
from mass_tui.ui.look import Look, detect
from mass_tui.ui.raster import Canvas
from mass_tui.ui.rows import episode_words, event_header, event_row, lasted_words, now_phrase
from mass_tui.ui.screens import help_entries, help_split, render_map
from mass_tui.ui.text import fit, inert
from mass_tui.ui.units import convert_reason, fmt, spread_units, to_units


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


# --- hostile text ---------------------------------------------------------------------------------
UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}


@given(st.text())
def test_inert_text_holds_no_control_format_or_bidi_character(s):
    out = inert(s)
    assert not any(unicodedata.category(ch) in UNSAFE for ch in out)
    if s.isprintable():
        assert out == s  # plain names are untouched


def test_inert_shows_escapes_and_overrides_as_visible_text():
    assert inert("\x1b[31mRED\x1b[0m") == "␛[31mRED␛[0m"
    assert inert("\x1b]0;PWNED\x07T") == "␛]0;PWNED␇T"
    assert inert("a\u202eRTL") == "a\\u202eRTL"
    assert inert("[bold red]x[/]") == "[bold red]x[/]"  # markup is not ours to strip: Text() keeps it literal
    assert inert("x" * 500, limit=10) == "x" * 9 + "…"


def test_every_unsafe_code_point_is_escaped():
    bad = [chr(cp) for cp in range(0x110000) if unicodedata.category(chr(cp)) in UNSAFE - {"Cn"}]
    out = inert("".join(bad))
    assert not any(unicodedata.category(ch) in UNSAFE for ch in out)


# --- units ------------------------------------------------------------------------------------------
def test_readings_and_spreads_convert_for_every_unit():
    assert to_units(100.0, "°C", True) == (212.0, "°F")
    assert spread_units(2.0, "°C", True) == (3.6, "°F")  # a spread takes no offset
    for unit, new in (("m/s", "mph"), ("hPa", "inHg"), ("mm", "in"), ("m", "ft")):
        v, u = to_units(10.0, unit, True)
        s, su = spread_units(10.0, unit, True)
        assert u == su == new and v == pytest.approx(s)  # no offset: the same factor
    assert to_units(1013.25, "hPa", True)[0] == pytest.approx(29.92, abs=0.01)
    assert to_units(5.0, "%", True) == (5.0, "%")
    assert to_units(5.0, "°C", False) == (5.0, "°C")


@pytest.mark.parametrize(("reason", "imperial"), [
    ("gust 22.5 m/s over the 15 m/s limit", "gust 50.3 mph over the 34 mph limit"),
    ("pressure fell 4.5 hPa in 3 h", "pressure fell 0.133 inHg in 3 h"),
    ("2.8 °C is -3.68 °C off the forecast 6.476 °C, 9.9 times the usual error (z 3)",
     "37.0 °F is -6.62 °F off the forecast 43.657 °F, 9.9 times the usual error (z 3)"),
    ("rose 5.2 °C in 10 min", "rose 9.4 °F in 10 min"),
    ("readings keep running above the forecast: the errors' EWMA +0.3 °C is past its limit ±0.2 °C",
     "readings keep running above the forecast: the errors' EWMA +0.5 °F is past its limit ±0.4 °F"),
    ("temp_c 45 °C at or above the warning level 40 °C", "Temperature 113 °F at or above the warning level 104 °F"),
    ("wave 6.94 m is +0.839 m off the forecast 6.101 m", "wave 22.8 ft is +2.75 ft off the forecast 20.02 ft"),
    ("pressure 1004.2 hPa", "pressure 29.654 inHg"),
    ("spread 3.1x the usual (limit 3x), 10 min", "spread 3.1x the usual (limit 3x), 10 min"),
])
def test_reasons_convert_with_readings_and_differences_apart(reason, imperial):
    assert convert_reason(reason, True) == imperial
    assert convert_reason(reason, False) == reason


@given(st.floats(-60, 60, allow_nan=False).map(lambda v: round(v, 1)))
def test_a_reading_in_a_reason_converts_as_the_value_does(v):
    text = convert_reason(f"at or above the warning level {v} °C", True)
    shown = float(text.split("level ")[1].split(" ")[0])
    assert shown == pytest.approx(v * 1.8 + 32, abs=0.06)


def test_readings_show_the_units_resolution():
    assert fmt(1004.23, "hPa") == "1004.2 hPa" and fmt(29.654, "inHg") == "29.65 inHg"
    assert fmt(float("nan"), "hPa") == "-"


# --- episodes -------------------------------------------------------------------------------------
def _a(ts, station="s", variable="gust_mps", detector="gust_limit", severity="warning", score=1.0, value=16.0,
       reason="gust 16 m/s over the 15 m/s limit", episode=""):
    return Anomaly(float(ts), station, variable, value, detector, severity, score, reason, episode)


def test_one_condition_an_hour_apart_is_one_episode_and_families_stay_apart():
    hourly = [_a(3600 * i, score=1.0 + i / 10, severity="critical" if i == 3 else "warning") for i in range(8)]
    other = [_a(3600 * 2, detector="ensemble/spike"), _a(3600 * 2 + 600, detector="ensemble/level")]
    later = [_a(3600 * 7 + GAP_SECONDS + 1)]
    eps = group(hourly + other + later)
    assert len(eps) == 3
    storm = next(e for e in eps if e.family == "gust_limit" and e.readings == 8)
    assert storm.severity == "critical" and storm.start == 0 and storm.last == 3600 * 7
    assert storm.peak_score == pytest.approx(1.7) and storm.peak_ts == 3600 * 7
    ens = next(e for e in eps if e.family == "ensemble")
    assert ens.readings == 2 and ens.detectors == {"ensemble/spike": 1, "ensemble/level": 1}


def test_the_detectors_episode_id_decides_when_set():
    a = Anomaly(100.0, "s", "gust_mps", 20.0, "gust_limit", "warning", 1.3, "r", "ep-1", 50.0, 2.0)
    b = Anomaly(100.0 + 5 * GAP_SECONDS, "s", "gust_mps", 20.0, "gust_limit", "warning", 1.1, "r", "ep-1", 50.0,
                2.0)
    (ep,) = group([a, b])
    assert ep.id == "ep-1" and ep.start == 50.0 and ep.readings == 2 and ep.peak_score == 2.0


anomalies = st.lists(st.tuples(st.integers(0, 40 * 3600), st.sampled_from(["a", "b"]),
                               st.sampled_from(["gust_limit", "ensemble/spike", "ensemble/level"]),
                               st.floats(0.5, 5.0)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(anomalies, st.lists(st.integers(1, 10), min_size=1, max_size=10))
def test_episodes_built_batch_by_batch_equal_those_built_at_once(items, cuts):
    """The live book sees anomalies in batches; however they are cut, the episodes are the same."""
    seq = sorted((_a(t, station=s, detector=d, score=sc) for t, s, d, sc in items), key=lambda a: a.ts)
    book = EpisodeBook(capacity=10**6)
    i = 0
    for n in cuts * 10:
        if i >= len(seq):
            break
        book.add(seq[i : i + n])
        i += n
    book.add(seq[i:])
    whole = {e.id: (e.readings, e.start, e.last, e.peak_score) for e in group(seq)}
    assert {e.id: (e.readings, e.start, e.last, e.peak_score) for e in book.episodes()} == whole
    for ep in book.episodes():  # and every gap inside an episode is at most GAP_SECONDS
        times = sorted(a.ts for a in ep.recent)
        assert all(b - a <= GAP_SECONDS for a, b in zip(times, times[1:], strict=False))


def test_what_fired_in_plain_words():
    assert what_fired("ensemble/spike") == "sudden jump"
    assert what_fired("pressure_tendency", "pressure fell 4 hPa in 3 h") == "pressure falling"
    assert what_fired("fire") == "fire pattern"


# --- the events list: filter, order, rows ------------------------------------------------------------
def test_filter_words_and_chip():
    f = parse_filter('sev:warn station:MSP var:gust is:ongoing "low cloud" bad:')
    assert f.min_severity == "warning" and f.stations == ("MSP",) and f.variables == ("gust",)
    assert f.states == ("ongoing",) and f.words == ("low cloud", "bad:")
    assert chip(12, 80, f, "worst").startswith("12 of 80 · ≥ warning · station MSP · var gust")
    assert chip(80, 80, parse_filter(""), "newest") == "80 episodes · newest first"
    assert parse_filter("sev:nonsense").problems == ("sev:nonsense",)


def test_worst_first_puts_ongoing_unmuted_severe_on_top():
    eps = group([_a(0, station="old", severity="critical"), _a(10_000, station="new", severity="warning"),
                 _a(10_000, station="loud", severity="critical"), _a(10_000, station="hushed", severity="critical")])
    states = {"old": RowState(10_000), "new": RowState(10_000), "loud": RowState(10_000),
              "hushed": RowState(10_000, muted_until=20_000)}
    order = [e.station for e in select(eps, parse_filter(""), "worst", lambda e: states[e.station])]
    assert order == ["loud", "new", "old", "hushed"]
    newest = [e.station for e in select(eps, parse_filter("sev:critical"), "newest", lambda e: states[e.station])]
    assert newest[-1] == "old" and "new" not in newest


@pytest.mark.parametrize("width", [60, 76, 100, 156, 200])
def test_an_event_row_keeps_severity_and_a_cut_reason_at_any_width(width):
    (ep,) = group([_a(0, reason="gust 22.5 m/s over the 15 m/s limit " + "x" * 200, value=22.5)])
    row = event_row(ep, RowState(100.0), width, False, Look())
    assert row.cell_len == width and row.plain.startswith("WARN") and "gust 22.5" in row.plain
    assert row.plain.rstrip().endswith("…")
    assert event_header(width).plain.startswith("sev")


def test_an_event_row_says_mph_in_the_value_and_the_reason():
    (ep,) = group([_a(0, reason="gust 22.5 m/s over the 15 m/s limit", value=22.5)])
    row = event_row(ep, RowState(100.0), 200, True, Look()).plain
    assert "50.3 mph" in row and "m/s" not in row


def test_now_phrases():
    eps = group([_a(0, variable="pressure_msl_hpa", detector="pressure_tendency", value=990,
                    reason="pressure fell 4.5 hPa in 3 h"), _a(0, value=22.5, score=1.5)]
                + [_a(3600 * i, value=21.0) for i in range(1, 4)])
    by = {e.family: e for e in eps}
    assert now_phrase(by["pressure_tendency"], RowState(0.0), False, False) == \
        "pressure falling 4.5 hPa/3h just now"  # its onset: "for 0 s" read as a fault
    assert now_phrase(by["pressure_tendency"], RowState(59.0), False, False) == \
        "pressure falling 4.5 hPa/3h for 59 s"
    assert now_phrase(by["gust_limit"], RowState(3 * 3600.0), False, True) == "s gust 22.5 m/s for 3 h"


# --- axes, windows, canvas ------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.floats(-1e5, 1e5), st.floats(1e-3, 1e5), st.integers(3, 30))
def test_y_ticks_are_round_evenly_spaced_on_whole_rows_and_cover_the_data(lo, span, rows):
    hi = lo + span
    low, high, step, used = even_axis(lo, hi, rows)
    assert rows - 2 <= used <= rows
    assert low <= lo + 1e-6 * span and high >= hi - 1e-6 * span
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(abs(mantissa - m) < 1e-6 for m in (1, 2, 2.5, 5, 10))
    k = round((high - low) / step)
    assert k >= 1 and (used - 1) % k == 0 or k == 1  # a tick every (used - 1) / k rows: exact
    assert high - low <= 12 * span + 1e-9 * abs(hi)  # and the data fills a fair part of the axis


def test_nice_steps():
    assert [nice_step(s, 4) for s in (10, 63, 0.3, 28)] == [2.5, 20, 0.1, 10]


def test_time_ticks_carry_the_date():
    t0 = 1351500000.0  # 2012-10-29 08:40 UTC
    ticks = time_ticks(t0, t0 + 12 * 3600, 4)
    assert ticks[0][1].startswith("10-29 ") and all(":" in label for _, label in ticks)
    days = time_ticks(t0, t0 + 20 * 86400, 4)
    assert all(len(label) == 5 and label[2] == "-" for _, label in days)


def test_windows_zoom_pan_and_go_live():
    first, last = 0.0, 100_000.0
    w = Window()
    assert w.bounds(first, last) == (0.0, 100_000.0)
    w = w.zoom(0.5, first, last)
    assert w.span == 50_000.0 and w.live
    w = w.pan(-0.5, first, last)
    assert not w.live and w.bounds(first, last) == (25_000.0, 75_000.0)
    assert w.pan(1.0, first, last).live
    assert w.zoom(10, first, last).span is None
    c = Window(None, 10_000.0).around(30_000.0, first, last)
    assert c.bounds(first, last) == (25_000.0, 35_000.0)


def test_braille_canvas_encodes_dots_and_draws_a_connected_line():
    c = Canvas(2, 1, 0.0, 3.0, 0.0, 3.0, "braille")
    c.points(np.array([0.0]), np.array([3.0]), "")
    assert c.render()[0].plain[0] == "⠁"  # dot 1: top left
    c = Canvas(40, 5, 0.0, 1.0, 0.0, 1.0, "braille")
    x = np.linspace(0, 1, 7)
    c.line(x, (x * 7) % 1.0, "cyan")
    grid = c.layers[0].grid
    assert grid.any(axis=0).all()  # every sub-column has a dot: no gaps in the line
    for glyphs in ("block", "ascii"):
        c = Canvas(20, 4, 0.0, 1.0, 0.0, 1.0, glyphs)
        c.line(x, x, "")
        assert all(ch in " ▀▄█*" for line in c.render() for ch in line.plain)


def _rows(n: int, flagged: int | None = None) -> np.ndarray:
    rows = np.full((n, len(FIELDS)), np.nan)
    rows[:, 0] = 1.7e9 + np.arange(n) * 600.0
    rows[:, 1] = 10 + np.sin(np.arange(n) / 20)
    rows[:, 2] = rows[:, 1]
    rows[:, 3] = 0.1
    rows[:, 8], rows[:, 9], rows[:, 10] = 10.0, 20.0, 0.0  # a band far wider than the readings
    if flagged is not None:
        rows[flagged, 3] = 0.9
    return rows


def test_the_y_axis_follows_the_readings_not_the_band():
    lines = build(_rows(500), ChartSpec("gust_mps", 100, 11, 3.0, False, Window()), Look())
    labels = [line.plain.split("┤")[0].strip() for line in lines if "┤" in line.plain]
    values = [float(v) for v in labels]
    assert min(values) >= 0.0 and max(values) <= 12.0  # readings 9..11; the band (-50..70) is not the scale
    steps = np.diff(sorted(values))
    assert np.allclose(steps, steps[0])
    rows_at = [i for i, line in enumerate(lines) if "┤" in line.plain]
    assert len(set(np.diff(rows_at))) == 1  # evenly spaced on screen too


def test_anomaly_marks_are_bold_and_stay_without_colour():
    for look in (Look(), Look(color=False), Look(glyphs="ascii", color=False)):
        lines = build(_rows(300, flagged=150), ChartSpec("temp_c", 100, 11, 3.0, False, Window()), look)
        marks = [(line, line.plain.index(look.anomaly_marker)) for line in lines if look.anomaly_marker in line.plain]
        assert marks
        line, i = marks[0]
        styles = [str(s.style) for s in line.spans if s.start <= i < s.end]
        assert any("bold" in s for s in styles)
        if not look.color:
            assert not any("dim" in s for s in styles)


# --- state: rings, ack and mute, the data dir lock, the terminal ----------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 70), max_size=30), st.integers(1, 100))
def test_ring_keeps_the_newest_rows_in_order_as_it_grows_and_wraps(sizes, capacity):
    ring = Ring(capacity, 2, initial=4)
    model: list[float] = []
    k = 0
    for n in sizes:
        rows = np.column_stack((np.arange(k, k + n, dtype=float), np.zeros(n)))
        ring.extend(rows)
        model += list(range(k, k + n))
        k += n
        assert ring.view()[:, 0].tolist() == model[-capacity:] if model else ring.view().shape[0] == 0
        upto = max(0, len(model) - 3)
        expect = model[max(0, len(model) - capacity):upto]
        assert ring.view(upto=upto)[:, 0].tolist() == expect
        assert ring.view(last=2)[:, 0].tolist() == model[-min(2, capacity):]


def test_acks_and_silences_persist_and_match_by_labels_and_data_time(tmp_path):
    path = tmp_path / "ui" / "state.json"
    store = StateFile(path)
    store.ack("ep-1")
    sil = store.mute({"station": "MSP", "variable": "gust_mps"}, 2000.0, start=1000.0, comment="storm")
    again = StateFile(path)
    assert again.is_acked("ep-1") and not again.is_acked("ep-2")
    labels = {"station": "MSP", "variable": "gust_mps", "source": "asos"}
    assert again.is_muted(labels, 1500.0).id == sil.id
    assert again.is_muted(labels, 2000.0) is None  # the end is not inside
    assert again.is_muted({**labels, "variable": "temp_c"}, 1500.0) is None
    again.unmute(sil.id)
    assert StateFile(path).is_muted(labels, 1500.0) is None
    with pytest.raises(ValueError):
        store.mute({}, 10.0, start=0.0)


def test_an_unreadable_state_file_is_set_aside(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    store = StateFile(path)
    assert "unreadable" in store.error and (tmp_path / "state.json.bad").exists()
    store.ack("x")
    assert json.loads(path.read_text())["acks"]["x"] > 0


def test_a_second_mass_on_one_data_dir_is_refused_naming_the_first(tmp_path):
    first = DataDirLock(tmp_path).acquire()
    try:
        with pytest.raises(DataDirBusy, match=f"pid {os.getpid()}"):
            DataDirLock(tmp_path).acquire()
    finally:
        first.release()
    DataDirLock(tmp_path).acquire().release()  # free again once released


@pytest.mark.parametrize(("env", "expect"), [
    ({"TERM": "xterm-256color"}, Look(True, 256, "braille")),
    ({"TERM": "xterm-256color", "NO_COLOR": ""}, Look(False, 256, "braille")),
    ({"TERM": "linux"}, Look(True, 16, "block")),
    ({"TERM": "vt100"}, Look(True, 16, "ascii")),
    ({"TERM": "xterm", "COLORTERM": "truecolor"}, Look(True, 16_777_216, "braille")),
    ({"TERM": "linux", "MASS_GLYPHS": "braille"}, Look(True, 16, "braille")),
])
def test_the_terminal_is_read_from_no_color_term_and_colorterm(env, expect):
    assert detect(env) == expect
    assert detect({"TERM": "xterm"}).theme == "ansi-dark"
    assert detect({"TERM": "xterm-256color"}, "light").theme == "textual-light"


def test_shared_alert_state_keeps_acks_and_mutes_in_the_alert_store_and_sees_other_processes(tmp_path):
    from mass_tui.alerts.matchers import Matcher
    from mass_tui.alerts.state import AlertState as AlertStore
    from mass_tui.ui.alert_state import SharedAlertState, StateFile

    ui = SharedAlertState(AlertStore.in_dir(tmp_path), StateFile(tmp_path / "state.json"))
    v0 = ui.version
    ui.ack("det-1")
    sil = ui.mute({"station": "b1"}, 200.0, start=100.0, comment="service")
    assert ui.version != v0 and ui.is_acked("det-1")
    assert ui.is_muted({"station": "b1"}, 150.0) == sil and ui.is_muted({"station": "b1"}, 250.0) is None
    ui.set_pref("imperial", True)
    before = ui.version
    # Another process (`mass silence add`, the headless service) writes to the same store.
    with AlertStore.in_dir(tmp_path) as other:
        assert "det-1" in other.acks()
        other.add_silence([Matcher.make("station", "=~", "b2-.*")], 0.0, 1e9)
    assert ui.version != before  # the UI redraws: another process changed the store
    assert ui.is_muted({"station": "b2-f1"}, 5.0) is not None
    ui.unack("det-1")
    ui.unmute(sil.id)
    again = SharedAlertState(AlertStore.in_dir(tmp_path), StateFile(tmp_path / "state.json"))
    assert not again.is_acked("det-1") and again.is_muted({"station": "b1"}, 150.0) is None
    assert again.prefs["imperial"] is True


async def test_the_events_list_follows_its_first_row_until_the_cursor_moves():
    """A list opened on a stream shows what sorts first (the worst), not what came first; once the
    person moves the cursor it stays on its item, and Home follows the top again."""
    from rich.text import Text
    from textual.app import App

    from mass_tui.ui.widgets import EventList

    class Host(App):
        def compose(self):
            yield EventList(id="events")

    app = Host()
    async with app.run_test(size=(60, 20)) as pilot:
        events = app.query_one(EventList)
        events.focus()

        def show(ids):
            events.set_items(ids, lambda i: Text(i))

        show(["warn-1"])
        assert events.selected == "warn-1"
        show(["crit-1", "warn-1"])  # a worse episode sorts above: the untouched list shows it
        assert (events.selected, events.cursor, events.top) == ("crit-1", 0, 0)
        await pilot.press("down")
        assert events.selected == "warn-1"
        show(["crit-2", "crit-1", "warn-1"])  # moved: the cursor keeps its episode
        assert events.selected == "warn-1" and events.ids[events.cursor] == "warn-1"
        await pilot.press("home")
        show(["crit-3", "crit-2", "crit-1", "warn-1"])
        assert events.selected == "crit-3" and events.cursor == 0


# --- widths: charts and rows never wider than their pane --------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.integers(20, 220), st.integers(5, 14), st.sampled_from(["braille", "block", "ascii"]), st.booleans(),
       st.sampled_from(["gust_mps", "pressure_msl_hpa", "temp_c", "co2_ppm", "unknown_var"]),
       st.floats(-2e4, 2e4), st.floats(1e-3, 1e5), st.sampled_from([None, 3600.0, 86400.0]), st.booleans())
def test_no_chart_line_is_wider_than_its_pane(width, height, glyphs, imperial, variable, base, scale, span, focus):
    rows = _rows(400, flagged=200)
    rows[:, 1] = base + scale * np.sin(np.arange(400) / 20)
    rows[:, 2] = rows[:, 1]
    look = Look(glyphs=glyphs)
    window = Window(float(rows[300, 0]), span) if span else Window()
    spec = ChartSpec(variable, width, height, 3.0, imperial, window, float(rows[250, 0]) if focus else None)
    lines = build(rows, spec, look)
    assert lines is not None and len(lines) == height
    lines.append(legend(variable, 3.0, imperial, look, width))
    for line in lines:
        assert line.cell_len <= width, (width, line.plain)
    assert lines[-1].plain.startswith(("──", "**"))  # the readings' entry always fits


NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30) | st.sampled_from(
    ["émile😀🌪️", "日本語", "日本語の気象台", "a\u0301b\u0301", "👩‍👩‍👧 family", "ｆｕｌｌｗｉｄｔｈ"])


@settings(max_examples=300, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=6), st.integers(60, 220))
def test_rows_of_wide_names_keep_one_cell_width(names, width):
    """CJK, emoji and combining marks in station names: every event row is `width` cells, as the header."""
    eps = group([_a(i * 10.0, station=name, reason=f"{name} gust 22.5 m/s over the limit") for i, name in
                 enumerate(names)])
    rows = [event_row(ep, RowState(100.0), width, False, Look()) for ep in eps]
    assert {r.cell_len for r in rows} == {width}
    assert event_header(width).cell_len <= width
    for name in names:
        assert cell_len(fit(inert(name), 12)) == 12


@settings(max_examples=100, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=8, unique=True), st.integers(24, 120), st.integers(8, 30))
def test_the_map_keeps_every_row_one_width_with_wide_names(names, width, height):
    placed = {name: (40.0 + i * 0.37, -70.0 + i * 0.21) for i, name in enumerate(names)}
    rows = render_map(placed, {}, names[0], width, height, Look())
    assert {r.cell_len for r in rows} == {width}


def test_both_columns_of_the_help_begin_with_a_section_name():
    entries = help_entries(KEYS)
    half = help_split(entries)
    assert entries[0][1].startswith("[") and entries[half][1].startswith("[") and not entries[half][0]
    assert abs(len(entries) - 2 * half) <= max(len(e) for e in _sections(entries))  # about half each


def _sections(entries):
    out = []
    for key, words in entries:
        if not key and words.startswith("["):
            out.append([])
        out[-1].append(words)
    return out


def test_a_converted_reason_names_the_variable_not_its_metric_column():
    text = convert_reason("wave_height_m 7.09 m does not fit the station's other variables", True)
    assert text.startswith("Wave height 23.3 ft") and "wave_height_m" not in text
    assert convert_reason("wave_height_m 7.09 m", False) == "wave_height_m 7.09 m"


def test_episode_words_say_the_variable_and_what_fired_once():
    (gust,) = group([_a(0)])
    (fall,) = group([_a(0, variable="pressure_msl_hpa", detector="pressure_tendency",
                        reason="pressure fell 4.5 hPa in 3 h")])
    assert episode_words(gust) == "wind gust over limit"
    assert episode_words(fall) == "sea-level pressure falling"
    assert lasted_words(gust, 10 * 3600.0) == "once" and lasted_words(gust, 0.0) == "0 s"


def test_an_episode_window_holds_the_episode_and_its_peak():
    first, last = 0.0, 30 * 86400.0
    for start, end, peak in ((5 * 86400.0, 5 * 86400.0, 5 * 86400.0), (100.0, 7200.0, 3000.0),
                             (last - 600, last, last), (10 * 86400.0, 12 * 86400.0, 11 * 86400.0)):
        t0, t1 = episode_window(start, end, peak, first, last).bounds(first, last)
        assert t0 <= start <= peak <= t1 and end <= t1 and t1 - t0 >= 6 * 3600.0 - 1e-6
        assert t1 - t0 <= max(6 * 3600.0, (end - start) * 1.5) + 1e-6


def test_score_bands_are_the_scales_anchors():
    """The station list orders calm stations by band, not by a score that moves at every reading."""
    from mass_tui.ui.rows import score_band

    assert [score_band(s) for s in (0.0, 0.06, 0.19, 0.2, 0.49, 0.5, 0.79, 0.8, 0.9999)] == [0, 0, 0, 1, 1, 2, 2, 3, 3]


def test_the_help_names_every_key_of_the_episode_detail():
    """The help screen comes from the key lists: the episode detail's own keys (`g`: the charts at
    its peak) are on it too, not only in that screen's footer."""
    from mass_tui.ui.keys import key_name
    from mass_tui.ui.screens import EpisodeScreen

    listed = {word for key, _what in help_entries(KEYS) for word in key.split()}
    for binding in EpisodeScreen.BINDINGS:
        assert {key_name(k) for k in binding.key.split(",")} & listed, binding.key
