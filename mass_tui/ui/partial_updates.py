"""Partial screen updates that send a line's changed cells, not everything to the left of them.

Textual redraws a changed region of the screen as "chops": each widget's part of each line. Its
`ChopsUpdate.render_segments` (textual/_compositor.py, the 8.x line: the method the app's
driver writes with) crops a chop on the right, at the end of the changed span, but sends it from
the chop's left edge: a station's sparkline at the end of its row re-sent the whole row at every
refresh, and a pane's sparkline its whole line from the pane's border (80 % of the 18-19 KB/s a
UI sent at 5 k msg/s went to the station list's rows, measured in a pty). `install()` replaces it
with one that starts at the first segment reaching into the span, as the same class's
`__rich_console__` does: whole segments, so a wide character is never cut, and each segment brings
its own colours. A Textual without that class or method keeps its own.
"""

from __future__ import annotations

from typing import Any

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


def first_segment_at(strip: Any, cells: int) -> int:
    """The cell offset, in `strip`, of its first segment that ends past `cells` (0 when `cells` <= 0;
    the strip's length when none does)."""
    if cells <= 0:
        return 0
    at = 0
    for segment in strip:
        width = segment.cell_length
        if at + width > cells:
            return at
        at += width
    return at


def render_segments(self: Any, console: Any) -> str:
    """`ChopsUpdate.render_segments` (the chops of `self.spans` as terminal data), each chop sent
    from its first segment that reaches the span (`first_segment_at`) to the span's end."""
    from rich.control import Control

    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops, chop_ends = self.chops, self.chop_ends
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        for end, (x, strip) in zip(chop_ends[y], chops[y].items(), strict=False):
            if strip is None or x > x2 or end <= x1:
                continue
            if x2 > x >= x1 and end <= x2:
                append(move_to(x, y).segment.text)
                append(strip.render(console))
                continue
            skip = first_segment_at(strip, x1 - x)
            part = strip.crop(skip, min(end, x2) - x)
            append(move_to(x + skip, y).segment.text)
            append(part.render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)
