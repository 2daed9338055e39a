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


# The terminal, as tmux draws: a skin-tone modifier and the enclosed signs U+3248-U+324F take two
# cells where Rich counts 0 and 1; a zero-width character joins the cell before the cursor; a
# wide character half overwritten loses its other half.
_WIDER = {**{c: 2 for c in range(0x1F3FB, 0x1F400)}, **{c: 2 for c in range(0x3248, 0x3250)}}


def _term_width(ch: str) -> int:
    return _WIDER.get(ord(ch), cell_len(ch))


def _write(data: str, cells: list[str]) -> list[str]:
    """`cells` (one line, "" the second half of a wide character) after `data` is written over it."""
    cells = list(cells)
    x = 0
    for m in re.finditer(r"\x1b\[(\d+);(\d+)H|\x1b\[[0-9;]*m|[^\x1b]", data):
        if m.group(1):
            x = int(m.group(2)) - 1
            continue
        ch = m.group(0)
        if ch.startswith("\x1b") or ch == "\n":
            continue
        w = _term_width(ch)
        if w == 0:
            if 0 < x <= len(cells):
                cells[x - 1] += ch
            continue
        if x < len(cells) and cells[x] == "" and x > 0:
            cells[x - 1] = " "  # the first half of a wide character written over: it is gone
        last = x + w - 1
        if last + 1 < len(cells) and cells[last + 1] == "":
            cells[last + 1] = " "  # the second half of one left alone: gone too
        if x < len(cells):
            cells[x] = ch
        for i in range(x + 1, min(x + w, len(cells))):
            cells[i] = ""
        x += w
    return cells


def _full(chops: dict[int, Strip], cells: list[str]) -> list[str]:
    """What a full repaint leaves: every part of the line written at its place."""
    data = "".join(f"\x1b[1;{x + 1}H" + "".join(seg.text for seg in strip) for x, strip in sorted(chops.items()))
    return _write(data, cells)


_UNITS = ["a", "b", " ", "▁", "█", "│", "⣿", "é", "日", "x\u0301", "👍🏽", "㉈"]


@st.composite
def _line(draw):
    """Chops across WIDTH cells (styled segments of units, some measured differently by Rich and the
    terminal), one to three changed spans on unit boundaries, and the line before the change: the
    same units, those inside a span replaced by others as wide (in Rich's count)."""
    cuts = sorted(draw(st.sets(st.integers(1, WIDTH - 1), max_size=3)))
    bounds = [0, *cuts, WIDTH]
    starts: list[int] = []  # each unit's first cell
    chop_segments: list[list[list[str]]] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        segs, width = [], a
        while width < b:
            seg = []
            for _ in range(draw(st.integers(1, 3))):
                if width >= b:
                    break
                unit = draw(st.sampled_from(_UNITS))
                if cell_len(unit) > b - width:
                    unit = "a"
                seg.append(unit)
                starts.append(width)
                width += cell_len(unit)
            segs.append(seg)
        chop_segments.append(segs)
    starts.append(WIDTH)
    changed: set[int] = set()
    spans: list[list[int]] = []
    for p in sorted(draw(st.sets(st.integers(0, len(starts) - 2), min_size=1, max_size=3))):
        end = draw(st.integers(p, min(p + 3, len(starts) - 2)))
        changed.update(range(p, end + 1))
        if spans and starts[p] <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], starts[end + 1])
        else:
            spans.append([starts[p], starts[end + 1]])
    new, old, i = {}, {}, 0
    for k, segs in enumerate(chop_segments):
        new_segs, old_segs = [], []
        for seg in segs:
            style = draw(st.sampled_from(STYLES))
            new_text = old_text = ""
            for unit in seg:
                new_text += unit
                old_text += unit if i not in changed else ("?" if cell_len(unit) == 1 else "？")
                i += 1
            new_segs.append(Segment(new_text, style))
            old_segs.append(Segment(old_text, style))
        new[bounds[k]], old[bounds[k]] = Strip(new_segs), Strip(old_segs)
    return new, old, bounds[1:], [tuple(s) for s in spans]


@settings(max_examples=300, deadline=None)
@given(line=_line())
def test_property_the_screen_after_the_update_is_what_a_full_repaint_shows_when_textuals_own_is(line):
    """Over the screen the line drew before (a full repaint of it), our update leaves what a full
    repaint of the new line leaves whenever Textual's own update does, with no more bytes: whatever
    the parts, segments, spans, wide characters, combining marks, and characters the terminal and
    Rich measure differently."""
    new, old, ends, spans = line
    update = ChopsUpdate([new], [(0, x1, x2) for x1, x2 in spans], [ends])
    before = _full(old, [" "] * (WIDTH + 8))
    want = _full(new, before)
    ours_data = partial_updates.render_segments(update, CONSOLE)
    theirs_data = partial_updates.original(update, CONSOLE)
    if _write(theirs_data, before) == want:
        assert _write(ours_data, before) == want
    assert len(ours_data.encode()) <= len(theirs_data.encode())


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
