"""Partial screen updates that send a line's changed cells, not everything to the left of them.

Textual redraws a changed region of the screen as "chops": each widget's part of each line. Its
`ChopsUpdate.render_segments` (textual/_compositor.py, the 8.x line: the method the app's
driver writes with) crops a chop on the right, at the end of the changed span, but sends it from
the chop's left edge: a station's sparkline at the end of its row re-sent the whole row at every
refresh, and a pane's sparkline its whole line from the pane's border (80 % of the 18-19 KB/s a
UI sent at 5 k msg/s went to the station list's rows, measured in a pty). `install()` replaces it
with one that starts at the first segment reaching into the span, as the same class's
`__rich_console__` does: whole segments, each with its own colours. Only segments that every
terminal draws as Rich counts them are skipped (`first_segment_at`), and after a wider write on a
line the next parts go from their edges, so the screen ends as Textual's own update leaves it
(tests/test_partial_updates.py, over a terminal model). A Textual without that class, method or
fields keeps its own.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.control import Control

_INSTALLED = "_mass_left_cropped"
original: Any = None  # Textual's own method, once replaced (tests compare the two)


def install() -> bool:
    """Replace Textual's `ChopsUpdate.render_segments` once; False when this Textual has none."""
    try:
        from textual._compositor import ChopsUpdate
    except ImportError:
        return False
    if not callable(getattr(ChopsUpdate, "render_segments", None)) or _fields(ChopsUpdate) != _KNOWN:
        return False  # another Textual's updates: its own method, unchanged
    if not getattr(ChopsUpdate, _INSTALLED, False):
        global original
        original = ChopsUpdate.render_segments
        ChopsUpdate.render_segments = render_segments
        setattr(ChopsUpdate, _INSTALLED, True)
    return True


_KNOWN = ("chops", "spans", "chop_ends")  # ChopsUpdate's fields in the Textual this was written for


def _fields(cls: Any) -> tuple[str, ...]:
    import inspect

    try:
        return tuple(inspect.signature(cls.__init__).parameters)[1:]
    except (TypeError, ValueError):
        return ()


def _narrow(text: str) -> bool:
    """Every character one cell wide in Rich and in terminals alike: ASCII, Latin-1 and Latin
    Extended letters, dashes and bullets, arrows, box drawing, blocks and shapes, braille (the
    UI's borders, sparklines and charts). Not emoji and their modifiers, CJK, enclosed signs
    (U+3248 is one cell in Rich, two in tmux), nor combining marks (U+0300 on)."""
    return text.isascii() or all(
        (o := ord(ch)) < 0x300 or 0x2010 <= o <= 0x2027 or 0x2190 <= o <= 0x21FF
        or 0x2500 <= o <= 0x25FF or 0x2800 <= o <= 0x28FF
        for ch in text)


def first_segment_at(strip: Any, cells: int) -> int:
    """The cell offset, in `strip`, of the segment to write from so that the write covers cell
    `cells`: the first segment that ends past it, except that only narrow segments (`_narrow`)
    are skipped. A wider or combining character before it is written again, as Textual writes the
    whole part: where Rich and the terminal measure a character differently (an emoji's skin
    tone), a cursor placed by Rich's count would land elsewhere, and a write that starts at a
    combining mark would join it to the cell before; a wide character cut by another span's crop
    is repaired."""
    at = before = 0
    for segment in strip:
        width = segment.cell_length
        if at + width > cells or not _narrow(segment.text):
            # a segment that opens with a zero-width character (a combining mark, a joiner) belongs
            # to the character before it: written from the segment before
            return before if segment.text and cell_len(segment.text[0]) == 0 else at
        before, at = at, at + width
    return at


def render_segments(self: Any, console: Any) -> str:
    """`ChopsUpdate.render_segments` (the chops of `self.spans` as terminal data), each chop sent
    from `first_segment_at` the span's start (from its edge once a wider character was written on
    the line) to the span's end."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops, chop_ends = self.chops, self.chop_ends
    last_y = self.spans[-1][0]
    line, spilled = -1, False  # spilled: this line got a character here that may be wider on screen
    for y, x1, x2 in self.spans:
        if y != line:
            line, spilled = y, False
        for end, (x, strip) in zip(chop_ends[y], chops[y].items(), strict=False):
            if strip is None or x > x2 or end <= x1:
                continue
            if x2 > x >= x1 and end <= x2:
                part = strip
                append(move_to(x, y).segment.text)
            else:
                # after a wide write on the line, a part's first cells may hold its overflow:
                # written from the part's edge, as Textual does
                skip = 0 if spilled else first_segment_at(strip, x1 - x)
                part = strip.crop(skip, min(end, x2) - x)
                append(move_to(x + skip, y).segment.text)
            append(part.render(console))
            spilled = spilled or not all(_narrow(segment.text) for segment in part)
        if y != last_y:
            append("\n")
    return "".join(sequences)
