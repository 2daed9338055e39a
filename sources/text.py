"""Strings from data made inert: no control character reaches the store, a mail header or a terminal.

Station names, sources and tags come from whoever can write to the transport.
A C0/C1 control character (ANSI and OSC escape sequences, a newline that
breaks an email header), a bidirectional override (U+202E turns the rest of
a line around) or a line separator in one of them is replaced by its escaped
form (`\\x1b`, `\\u202e`), so the name stays readable and distinct and the
message is kept. Rejecting the message instead would lose every reading of a
station whose logger puts a stray control character in its name.

Characters: Unicode category Cc (U+0000-U+001F, U+007F-U+009F), the bidi
controls of Unicode TR #9 (U+061C, U+200E, U+200F, U+202A-U+202E,
U+2066-U+2069) and U+2028/U+2029.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """`text` with every control, bidi-override and line-separator character escaped (a no-op for clean text)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def is_clean(text: str) -> bool:
    return _UNSAFE.search(text) is None


def brief(value: object, limit: int = 80) -> str:
    """A short, safe description of any decoded JSON value for a reason: never recursive (a value nested
    1,000 deep must not raise RecursionError), never longer than about `limit` characters."""
    if value is None or isinstance(value, bool | int | float):
        big = isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64
        text = f"an integer of {value.bit_length()} bits" if big else repr(value)
    elif isinstance(value, str):
        text = repr(value[:limit]) + ("…" if len(value) > limit else "")
    elif isinstance(value, dict):
        text = f"an object of {len(value)} keys"
    elif isinstance(value, list):
        text = f"a list of {len(value)} items"
    else:
        text = type(value).__name__
    return inert(text)
