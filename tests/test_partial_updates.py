"""A partial screen update sends a line's changed cells from the first segment reaching them
(`mass_tui.ui.partial_updates`), and leaves the terminal showing what Textual's own update shows."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate
from textual.strip import Strip

from mass_tui.ui import partial_updates

partial_updates.install()
CONSOLE = Console(force_terminal=True, color_system="truecolor", width=200)
STYLES = [Style(color="red"), Style(bold=True), Style(color="#123456", bgcolor="#eeeeee"), Style()]
WIDTH = 40


def _screen(data: str, before: list[str]) -> list[str]:
    """One line of cells after `data` (cursor moves, colours, text) is written over `before`."""
    cells = list(before)
    x = 0
    for m in re.finditer(r"\x1b\[(\d+);(\d+)H|\x1b\[[0-9;]*m|[^\x1b]", data):
        if m.group(1):
            x = int(m.group(2)) - 1
        elif not m.group(0).startswith("\x1b"):
            ch = m.group(0)
            w = cell_len(ch)
            cells[x] = ch
            if w == 2:
                cells[x + 1] = ""
            x += w
    return cells


def _cells(strip: Strip) -> list[str]:
    out: list[str] = []
    for seg in strip:
        for ch in seg.text:
            out.append(ch)
            if cell_len(ch) == 2:
                out.append("")
    return out


_texts = st.text(alphabet=st.sampled_from(list("ab ▁█│─") + ["日", "⣿"]), min_size=1, max_size=6)


@st.composite
def _line(draw):
    """Chops across WIDTH cells, each a strip of styled segments, and a span within the line."""
    cuts = sorted(draw(st.sets(st.integers(1, WIDTH - 1), max_size=3)))
    bounds = [0, *cuts, WIDTH]
    chops, ends = {}, []
    for a, b in zip(bounds, bounds[1:], strict=False):
        segs, width = [], 0
        while width < b - a:
            text = draw(_texts)
            while cell_len(text) > b - a - width:
                text = text[:-1]
            if not text:
                text = " " * (b - a - width) if b - a - width < 2 else "a"
            segs.append(Segment(text, draw(st.sampled_from(STYLES))))
            width += cell_len(text)
        chops[a] = Strip(segs)
        ends.append(b)
    x1 = draw(st.integers(0, WIDTH - 1))
    x2 = draw(st.integers(x1 + 1, WIDTH))
    return chops, ends, x1, x2


@settings(max_examples=200, deadline=None)
@given(line=_line())
def test_property_the_screen_after_the_update_is_the_one_textuals_own_update_leaves(line):
    """Cells outside the span are what the terminal shows already (the compositor sends only changed
    spans); whatever the chops, segments, wide characters and span, writing ours over that screen
    leaves the same cells as writing Textual's, with no more bytes."""
    chops, ends, x1, x2 = line
    update = ChopsUpdate([chops], [(0, x1, x2)], [ends])
    new = [c for x in sorted(chops) for c in _cells(chops[x])]
    before = [c if not x1 <= i < x2 else "?" for i, c in enumerate(new)]
    ours = partial_updates.render_segments(update, CONSOLE)
    theirs = partial_updates.original(update, CONSOLE)
    assert _screen(ours, before) == _screen(theirs, before)
    assert len(ours.encode()) <= len(theirs.encode())


def test_a_change_at_the_end_of_a_row_sends_that_segment_not_the_row():
    """A station's row (status, name, then its sparkline): a new sparkline goes out alone."""
    row = Strip([Segment("│", STYLES[0]), Segment(" ok   ", STYLES[1]), Segment("s16        ", STYLES[3]),
                 Segment(" ▁█▁█", STYLES[2])])
    update = ChopsUpdate([{0: row}], [(0, 20, 23)], [[row.cell_length]])
    ours = partial_updates.render_segments(update, CONSOLE)
    theirs = partial_updates.original(update, CONSOLE)
    assert "\x1b[1;19H" in ours and "s16" not in ours and "▁█▁█" in ours
    assert "s16" in theirs  # Textual's own sends the row from its start



def test_a_textual_whose_updates_have_other_fields_keeps_its_own_method():
    """install() replaces the method only on the ChopsUpdate it was written for."""
    class Other:
        def __init__(self, chops, spans, chop_ends, extra):
            pass

        def render_segments(self, console):
            return "theirs"

    assert partial_updates._fields(Other) != partial_updates._KNOWN
    assert partial_updates._fields(ChopsUpdate) == partial_updates._KNOWN
