"""The widgets: one-line bars, the events list, the station list, one pane per variable, the key bar.

Each is a `LineView`: the app hands it lines of text and only the cells
that changed go to the terminal. Lists keep their cursor on the same item
(by id) while rows arrive above it, and say what they hold when empty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message

from mass_tui.ui.lines import LineView


class Bar(LineView):
    """A line or a few: the header, the now strip, a problem, the status."""

    DEFAULT_CSS = """
    Bar { height: auto; padding: 0 1; }
    """


class KeyBar(LineView):
    """The footer: keys from the bindings, `? help` and `q quit` always kept at the right.

    `keys` are (key text, description, action); a click on one runs its action."""

    DEFAULT_CSS = """
    KeyBar { height: 1; background: $panel; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._spans: list[tuple[int, int, str]] = []
        self._keys: tuple[Sequence[tuple[str, str, str]], Sequence[tuple[str, str, str]]] = ((), ())

    def on_resize(self) -> None:
        super().on_resize()
        self.set_keys(*self._keys)  # what fits changes with the width

    def set_keys(self, keys: Sequence[tuple[str, str, str]], pinned: Sequence[tuple[str, str, str]]) -> None:
        self._keys = (keys, pinned)
        width = max(10, self.size.width or 80)
        right = Text(no_wrap=True)
        for key, desc, _ in pinned:
            right.append(f" {key} ", "bold reverse")
            right.append(f" {desc} ")
        left = Text(no_wrap=True)
        spans: list[tuple[int, int, str]] = []
        room = width - right.cell_len - 1
        for key, desc, action in keys:
            piece = len(key) + len(desc) + 4
            if left.cell_len + piece > room:
                break
            start = left.cell_len
            left.append(f" {key} ", "bold reverse")
            left.append(f" {desc} ")
            spans.append((start, left.cell_len, action))
        start = width - right.cell_len
        pos = start
        for key, desc, action in pinned:
            end = pos + len(key) + len(desc) + 4
            spans.append((pos, end, action))
            pos = end
        line = Text.assemble(left, " " * max(1, start - left.cell_len), right, no_wrap=True)
        self._spans = spans
        self.show([line])

    async def on_click(self, event: events.Click) -> None:
        for start, end, action in self._spans:
            if start <= event.x < end:
                await self.app.run_action(action)
                return


class CursorList(LineView, can_focus=True):
    """A list of rows with a cursor that stays on the same item (by id) as rows come and go.

    The header lines (a chip, column headings) stay put; the
    rows scroll under them. Rows are built only when they come into view
    (`set_items(ids, row_of)`), so a list of thousands costs what its
    visible lines cost; `set_rows` takes them ready-made as (id, Text)."""

    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
        Binding("enter", "open", "Open", show=False),
    ]

    class Highlighted(Message):
        def __init__(self, sender: CursorList, item: str | None) -> None:
            super().__init__()
            self.sender, self.item = sender, item

    class Opened(Message):
        def __init__(self, sender: CursorList, item: str) -> None:
            super().__init__()
            self.sender, self.item = sender, item

    # A list that follows its first row until the person moves the cursor (the events: what sorts
    # first is the worst or newest, not whatever happened to be first when the list opened); moving
    # the cursor pins it to its item, Home follows the top again.
    FOLLOWS_TOP = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ids: list[str] = []
        self._index: dict[str, int] = {}
        self._row_of: Callable[[str], Text] = lambda _id: Text("")
        self.header: list[Text] = []
        self.empty: list[Text] = []
        self.cursor = 0
        self.top = 0
        self.selected: str | None = None
        self.following = self.FOLLOWS_TOP

    @property
    def visible_rows(self) -> int:
        height = self.size.height or (len(self.header) + 5)
        return max(1, height - len(self.header))

    @property
    def rows(self) -> list[Text]:
        """Every row as text (builds each one: for tests and small lists)."""
        return [self._row_of(i) for i in self.ids]

    def set_rows(self, rows: Sequence[tuple[str, Text]], header: Sequence[Text] = (),
                 empty: Sequence[Text] = ()) -> None:
        """New rows, ready-made; the cursor follows its item, which keeps its place on screen."""
        by_id = dict(rows)
        self.set_items([r[0] for r in rows], by_id.__getitem__, header, empty)

    def set_items(self, ids: Sequence[str], row_of: Callable[[str], Text], header: Sequence[Text] = (),
                  empty: Sequence[Text] = ()) -> None:
        """New items in order; `row_of(id)` builds an item's line and is called only for the rows on
        screen (now and as the cursor moves, until the next call). The cursor follows its item, which
        keeps its place on screen."""
        old_offset = self.cursor - self.top
        self.ids = list(ids)
        self._index = {item: i for i, item in enumerate(self.ids)}
        self._row_of = row_of
        self.header = list(header)
        self.empty = list(empty)
        at = self._index.get(self.selected) if self.selected is not None else None
        if self.following:
            self.cursor = self.top = 0
            self.selected = self.ids[0] if self.ids else None
        elif at is not None:
            self.cursor = at
            self.top = max(0, self.cursor - old_offset)
        else:
            self.cursor = min(self.cursor, max(0, len(self.ids) - 1))
            self.selected = self.ids[self.cursor] if self.ids else None
        self._clamp()
        self._draw()

    def _clamp(self) -> None:
        n, h = len(self.ids), self.visible_rows
        self.top = max(0, min(self.top, max(0, n - h)))
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + h:
            self.top = self.cursor - h + 1

    def _draw(self) -> None:
        h = self.visible_rows
        lines = list(self.header)
        if not self.ids:
            lines += self.empty
        for i in range(self.top, min(len(self.ids), self.top + h)):
            row = self._row_of(self.ids[i])
            if i == self.cursor:
                row = row.copy()
                row.stylize("reverse" if self.has_focus else "underline")
            lines.append(row)
        blank = h + len(self.header) - len(lines)
        lines += [Text("")] * max(0, blank)
        self.show(lines)

    def on_resize(self) -> None:
        super().on_resize()
        self._clamp()
        self._draw()

    def on_focus(self) -> None:
        self._draw()

    def on_blur(self) -> None:
        self._draw()

    def select(self, item: str) -> None:
        if item in self._index:
            self.following = False
            self.cursor = self._index[item]
            self.selected = item
            self._clamp()
            self._draw()
            self.post_message(self.Highlighted(self, item))

    def action_move(self, delta: int) -> None:
        if not self.ids:
            return
        self.following = False
        self.cursor = max(0, min(len(self.ids) - 1, self.cursor + delta))
        self.selected = self.ids[self.cursor]
        self._clamp()
        self._draw()
        self.post_message(self.Highlighted(self, self.selected))

    def action_edge(self, end: int) -> None:
        self.action_move(len(self.ids) if end else -len(self.ids))
        self.following = not end

    def action_open(self) -> None:
        if self.ids:
            self.post_message(self.Opened(self, self.ids[self.cursor]))

    def on_click(self, event: events.Click) -> None:
        row = event.y - len(self.header) + self.top
        if event.y - len(self.header) >= 0 and 0 <= row < len(self.ids):
            self.following = False
            self.cursor, self.selected = row, self.ids[row]
            self._draw()
            self.post_message(self.Highlighted(self, self.selected))
            if event.chain >= 2:
                self.post_message(self.Opened(self, self.selected))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.action_move(3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.action_move(-3)


class EventList(CursorList):
    """One row per episode: the events the person on call works from."""

    FOLLOWS_TOP = True

    DEFAULT_CSS = """
    EventList { height: 12; border: round $primary-darken-2; padding: 0 1; }
    EventList:focus { border: round $accent; }
    """


class StationList(CursorList):
    """Stations by trouble: worst active severity first, with a sparkline of their anomaly score."""

    DEFAULT_CSS = """
    StationList { width: 34; height: 1fr; border: round $primary-darken-2; padding: 0 1; }
    StationList:focus { border: round $accent; }
    """


class VariablePane(LineView, can_focus=True):
    """One variable of the selected station: a title line, a sparkline, the chart and its legend;
    one line (value, sparkline, state) in the dense view unless expanded."""

    DEFAULT_CSS = """
    VariablePane { height: auto; border: round $primary-darken-2; padding: 0 1; }
    VariablePane:focus { border: round $accent; }
    VariablePane.flash { border: heavy $warning; }
    VariablePane.dense { border: none; padding: 0 1; }
    VariablePane.dense:focus { background: $boost; }
    """

    class Zoom(Message):
        """The mouse wheel over a chart: zoom (ctrl) or pan (shift, or a sideways wheel)."""

        def __init__(self, zoom: float = 1.0, pan: float = 0.0) -> None:
            super().__init__()
            self.zoom, self.pan = zoom, pan

    class Toggle(Message):
        def __init__(self, variable: str) -> None:
            super().__init__()
            self.variable = variable

    class Resized(Message):
        """The pane's width changed: its chart, drawn for the old width, must be drawn again."""

    BINDINGS = [
        Binding("enter", "toggle", "Expand", show=False),
        Binding("down,j", "step(1)", "Next pane", show=False),
        Binding("up,k", "step(-1)", "Previous pane", show=False),
    ]

    def __init__(self, variable: str, number: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.variable = variable
        self.number = number
        self.chart: list[Text] | None = None  # the chart's last lines, kept between chart redraws
        self.chart_key: object = None  # what the chart was drawn from
        self.chart_empty: int | None = None  # readings so far while the chart waits for a second one
        self.chart_width = 0  # the width the chart was drawn for
        self.title_text = ""

    def on_resize(self) -> None:
        super().on_resize()
        if self.chart is not None and self.size.width and self.size.width != self.chart_width:
            self.post_message(self.Resized())

    def action_toggle(self) -> None:
        self.post_message(self.Toggle(self.variable))

    def action_step(self, delta: int) -> None:
        panes = [p for p in self.screen.query(VariablePane) if p.display]
        if self in panes:
            nxt = panes[max(0, min(len(panes) - 1, panes.index(self) + delta))]
            nxt.focus()
            nxt.scroll_visible()

    def _wheel(self, event: events.MouseEvent, direction: float) -> None:
        if event.ctrl:
            event.stop()
            self.post_message(self.Zoom(zoom=0.8 if direction < 0 else 1.25))
        elif event.shift:
            event.stop()
            self.post_message(self.Zoom(pan=0.2 * direction))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._wheel(event, -1.0)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._wheel(event, 1.0)

    def on_mouse_scroll_left(self, event: events.MouseScrollLeft) -> None:
        event.stop()
        self.post_message(self.Zoom(pan=-0.2))

    def on_mouse_scroll_right(self, event: events.MouseScrollRight) -> None:
        event.stop()
        self.post_message(self.Zoom(pan=0.2))

    def set_title(self, title: str) -> None:
        """The border title, set only when it changes (setting it repaints the whole pane)."""
        if title != self.title_text:
            self.title_text = title
            self.border_title = Text(title)


def message_lines(lines: Sequence[str | Text], style: str = "") -> list[Text]:
    return [line if isinstance(line, Text) else Text(line, style=style, no_wrap=True) for line in lines]


Action = Callable[[], None]
