"""A widget drawn from lines of text that sends the terminal only the cells that changed.

Textual repaints a whole widget when it is refreshed, and every repaint
is bytes on the wire: a status line whose rate ticks, or a chart whose
last column moved, would resend everything at every tick. `LineView`
keeps the strips it drew; `show(lines)` compares each new line with the
old one cell by cell and refreshes only the changed span of each line.
An unchanged screen writes nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from mass_tui.ui.look import ASCII_CHARS


def _cells(strip: Strip) -> list[tuple[str, Style | None]] | None:
    """One (character, style) per cell; None when a wide character makes cells and characters differ."""
    out: list[tuple[str, Style | None]] = []
    for seg in strip:
        text, style = seg.text, seg.style
        if not text.isascii() and Segment(text).cell_length != len(text):
            return None
        out.extend((ch, style) for ch in text)
    return out


def changed_span(old: Strip | None, new: Strip) -> tuple[int, int] | None:
    """(first, last + 1) cells in which `new` differs from `old`, or None when they look the same."""
    if old is None:
        return 0, new.cell_length
    if old is new or list(old) == list(new):
        return None
    a, b = _cells(old), _cells(new)
    if a is None or b is None:
        return 0, max(old.cell_length, new.cell_length)
    n = max(len(a), len(b))
    first = next((i for i in range(n) if i >= len(a) or i >= len(b) or a[i] != b[i]), None)
    if first is None:
        return None
    last = next(i for i in range(n - 1, -1, -1) if i >= len(a) or i >= len(b) or a[i] != b[i])
    return first, last + 1


def _same(a: Text, b: Text) -> bool:
    """The two texts draw the same cells: same characters, spans, base style and overflow
    (comparing is far cheaper than rendering a line to compare its cells)."""
    return a is b or (a.plain == b.plain and a.style == b.style and a.spans == b.spans
                      and a.overflow == b.overflow and a.justify == b.justify)


class LineView(Widget):
    """Lines of `Text` set with `show()`; each is cut or padded to the widget's width."""

    DEFAULT_CSS = """
    LineView { height: auto; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self._texts: list[Text] = []
        self._strips: list[Strip] = []
        self._width = -1

    @property
    def ascii_only(self) -> bool:
        """The app draws with the ASCII glyph set (`Look.glyphs`)."""
        look = getattr(self.app, "look", None)
        return getattr(look, "glyphs", "") == "ascii"

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self._texts))

    def show(self, lines: Sequence[Text]) -> None:
        """Draw these lines, refreshing only what differs from what is on screen."""
        lines = list(lines)
        grew = len(lines) != len(self._texts)
        previous, self._texts = self._texts, lines
        if grew:
            self._strips = []
            self.refresh(layout=True)
            return
        width = self.size.width
        if width <= 0 or not self.display:  # hidden: drawn when shown, nothing to send now
            self._strips = []
            self._width = -1
            return
        if width != self._width or not self.is_mounted:
            self._strips = []
            self.refresh()
            return
        base = self.rich_style  # once per call: it walks the widget's ancestors
        for y, text in enumerate(lines):
            if y < len(self._strips) and y < len(previous) and _same(previous[y], text):
                continue  # the same text as drawn: nothing to render or send
            new = self._render(text, width, base)
            old = self._strips[y] if y < len(self._strips) else None
            span = changed_span(old, new)
            if y < len(self._strips):
                self._strips[y] = new
            else:
                self._strips.append(new)
            if span is not None:
                self.refresh(Region(span[0], y, span[1] - span[0], 1))

    @property
    def texts(self) -> list[Text]:
        """What is shown, as text (tests read it)."""
        return list(self._texts)

    def plain_lines(self) -> list[str]:
        return [t.plain for t in self._texts]

    def _render(self, text: Text, width: int, base: Style | None = None) -> Strip:
        line = text.copy()
        line.no_wrap = True
        line.end = ""
        line.truncate(width, overflow="ellipsis")
        if self.ascii_only:  # TERM=vt100 and the like: the ASCII stand-ins, one for one (styles keep)
            line = Text(line.plain.translate(ASCII_CHARS), style=line.style, justify=line.justify,
                        no_wrap=True, end="", spans=line.spans)
        base = self.rich_style if base is None else base
        # The widget's style under the line's own (a span over it would override the line's colour).
        own = self.app.console.get_style(line.style) if line.style else None
        line.style = base + own if own is not None else base
        # Every segment styled: Textual's monochrome filter (NO_COLOR) expects a style on each.
        segments = [seg if seg.style is not None else Segment(seg.text, base, seg.control)
                    for seg in line.render(self.app.console, end="")]
        return Strip(segments).adjust_cell_length(width, base)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width != self._width or len(self._strips) != len(self._texts):
            self._width = width
            base = self.rich_style
            self._strips = [self._render(t, width, base) for t in self._texts]
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, self.rich_style)

    def on_resize(self) -> None:
        self._width = -1
        self.refresh()

    def notify_style_update(self) -> None:
        """A new theme, focus or hover style: every strip is drawn again with it."""
        super().notify_style_update()
        self._width = -1
