"""Strings from data made inert, and secrets kept out of what is shown and logged.

Station names, sources and tags come from whoever can write to the transport;
error text comes from servers and brokers. A C0/C1 control character (ANSI
and OSC escape sequences, a newline that breaks an email header or forges a
log line), a bidirectional override (U+202E turns the rest of a line around)
or a line separator in one of them is replaced by its escaped form (`\\x1b`,
`\\u202e`), so the name stays readable and distinct and the message is kept.
Rejecting the message instead would lose every reading of a station whose
logger puts a stray control character in its name.

Characters: Unicode category Cc (U+0000-U+001F, U+007F-U+009F, ECMA-48 /
ISO 6429), the bidi controls of Unicode TR #9 (U+061C, U+200E, U+200F,
U+202A-U+202E, U+2066-U+2069), U+2028/U+2029, and the invisible format
characters that would make one name look like another (U+00AD, U+180E,
U+200B-U+200D, U+2060-U+2064, U+FEFF).

`Redactor` replaces every configured secret (API keys, webhook URLs,
passwords) with ``****`` in a string, also in its percent-encoded forms,
which is how a key appears inside a logged request URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import orjson

# ... and the invisible format characters (zero-width space, joiners, word joiner, invisible operators,
# BOM, soft hyphen, Mongolian vowel separator): "plain\u200b" would show, and mail, as "plain" itself.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")

REDACTED = "****"
# Shorter values would blank out ordinary words; a secret that short is not one worth the name.
MIN_SECRET_CHARS = 4


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


def has_controls(text: str) -> bool:
    """Whether `text` holds a character `inert()` would escape."""
    return _UNSAFE.search(text) is not None


def safe_text(text: object, limit: int | None = None) -> str:
    """Any value as inert text (`inert(str(text))`), cut to `limit` characters."""
    out = inert(str(text))
    return out if limit is None or len(out) <= limit else out[: max(0, limit - 1)] + "…"


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


# A lone UTF-16 surrogate: what the standard library's JSON reader makes of an unpaired `\\ud800`
# escape (or, reading bytes, of the bytes ED A0 80), and what `surrogateescape` makes of a byte that is
# not UTF-8. No UTF-8 encoder writes one: orjson, PostgreSQL and every file write refuse it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> bool:
    """Whether `text` can be written as UTF-8 (holds no lone surrogate)."""
    return text.isascii() or _SURROGATE.search(text) is None


def escape_surrogates(text: str) -> str:
    """`text` with each lone surrogate written as its escape (`\\ud800`, six characters): the text
    stays readable and tells which code unit was there, where U+FFFD would make every bad spot look
    alike (and look like a real U+FFFD). A no-op for valid text."""
    if valid_unicode(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_safe(value: Any, depth: int = 64) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings, numbers) with every string, keys included,
    passed through `escape_surrogates`; deeper than `depth`, the rest is described by `brief`."""
    if isinstance(value, str):
        return escape_surrogates(value)
    if depth <= 0 and isinstance(value, dict | list | tuple):
        return brief(value)
    if isinstance(value, dict):
        return {escape_surrogates(k) if isinstance(k, str) else k: json_safe(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, depth - 1) for v in value]
    return value


def json_bytes(value: Any, option: int = 0) -> bytes:
    """`orjson.dumps(value, option=option)`, but a string that is not valid Unicode (a lone
    surrogate) is written escaped (`json_safe`) instead of raising TypeError. Other values orjson
    cannot write still raise (orjson.JSONEncodeError, a TypeError)."""
    try:
        return orjson.dumps(value, option=option)
    except TypeError:
        return orjson.dumps(json_safe(value), option=option)


def secret_forms(secret: str) -> list[str]:
    """The spellings a secret takes in logs: as is, percent-encoded (in a URL's query or path),
    and for a URL its path and query alone and its password (`scheme://user:PASSWORD@host`)."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    if "://" in secret:
        try:
            parts = urlsplit(secret)
        except ValueError:
            parts = None
        if parts is not None:
            if parts.password:
                forms.add(parts.password)
            tail = parts.path + (f"?{parts.query}" if parts.query else "")
            if len(tail) >= 8:  # a webhook's secret is its path (Slack: /services/T…/B…/token)
                forms.add(tail)
    return [f for f in forms if len(f) >= MIN_SECRET_CHARS]


class Redactor:
    """Replaces every known secret in text with `REDACTED`; empty until secrets are given."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms.update(secret_forms(str(secret)))
        # Longest first: a URL is replaced whole before its password or path alone.
        self._forms = sorted(forms, key=len, reverse=True)
        self._bytes = [(f.encode(), REDACTED.encode()) for f in self._forms]

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def bytes(self, data: bytes) -> bytes:
        for form, mask in self._bytes:
            if form in data:
                data = data.replace(form, mask)
        return data

    def value(self, obj: object) -> object:
        """A copy of a JSON-like value (dicts, lists, strings) with every string redacted."""
        if isinstance(obj, str):
            return self(obj)
        if isinstance(obj, dict):
            return {k: self.value(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj
