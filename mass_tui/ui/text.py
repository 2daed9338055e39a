"""Text from data (station names, sources, tags, reasons) made inert before it is drawn.

Rich markup is never parsed from data: every such string reaches the screen
as a `rich.text.Text`, never as markup. What Rich leaves alone are the
terminal's own controls: an ESC in a station name would start an ANSI or
OSC sequence (colour, clear screen, window title), a U+202E would reverse
the rest of the line. `inert()` shows every control and format character
(Unicode categories Cc, Cf, Zl, Zp, Cs and unassigned code points) as
visible text instead: C0 controls as their Control Pictures (ESC as "␛",
U+241B), the others as a `\\uXXXX` escape.

Variation selectors (U+FE00-FE0F) are left out: "🌪️" (U+1F32A U+FE0F) is two
cells wide in one terminal and one in another (tmux), so a row holding it
would end with its border out of place; without the selector every terminal
draws 🌪 one cell wide, as Rich measures it.
"""

from __future__ import annotations

import re
import unicodedata

from rich.cells import split_graphemes
from rich.text import Text

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})
_CACHE_LIMIT = 4096


def _visible(cp: int) -> str:
    if cp < 0x20:
        return chr(0x2400 + cp)  # Control Pictures: ␀ … ␟
    if cp == 0x7F:
        return "␡"
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


class _Table(dict):
    """A `str.translate` table filled on first sight of each non-printable code point."""

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        repl = _visible(cp) if unicodedata.category(ch) in _ESCAPED_CATEGORIES else ch
        if 0xFE00 <= cp <= 0xFE0F:
            repl = ""  # a variation selector: see the module's docstring
        if len(self) < _CACHE_LIMIT:  # bounded: hostile input cannot grow it without limit
            self[cp] = repl
        return repl


_TABLE = _Table()
_SELECTOR = re.compile("[\ufe00-\ufe0f]")


def inert(text: object, limit: int | None = None) -> str:
    """`text` as a string safe to draw: no control, format or bidi character left in it.

    `limit` cuts the result to that many characters with an ellipsis (a name
    of 1 MB must not make a row of 1 MB). Printable text comes back unchanged.
    """
    s = text if isinstance(text, str) else str(text)
    if not s.isprintable() or _SELECTOR.search(s):  # the fast path (C) for the usual plain name
        s = s.translate(_TABLE)
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s


def fit(text: str, width: int) -> str:
    """`text` made exactly `width` terminal cells wide: cut with "…" or padded with spaces.

    Cells, not characters: 日本語 takes 6 cells, 😀 and 🌪️ (with its variation selector) 2, an accent
    that combines none: graphemes as `rich.cells.split_graphemes` measures them, which is what
    Textual draws with. A grapheme that would straddle the cut is left out (a space pads), so a
    column never spills into the next one.
    """
    if width <= 0:
        return ""
    graphemes, total = split_graphemes(text)
    if total <= width:
        return text + " " * (width - total)
    used, end = 0, 0
    for _start, stop, size in graphemes:
        if used + size > width - 1:
            break
        used, end = used + size, stop
    return text[:end] + "…" + " " * (width - 1 - used)


def plain(text: object, style: str = "", limit: int | None = None) -> Text:
    """A Rich `Text` of data: markup in it stays literal, controls are made visible."""
    return Text(inert(text, limit), style=style, no_wrap=True, overflow="ellipsis")
