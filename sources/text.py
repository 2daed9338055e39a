"""Text that came from outside (HTTP bodies, broker errors, exception messages) made safe to show and log.

Two jobs, both pure functions:

- `safe_text()` escapes the C0 and C1 control characters (U+0000-U+001F,
  U+007F-U+009F, ECMA-48 / ISO 6429) and the Unicode bidirectional
  overrides and isolates (U+202A-U+202E, U+2066-U+2069, UAX #9), so an
  error string cannot move the cursor, recolour or clear a terminal, retitle
  a window (OSC), break an email header or reverse the text around it. Each
  one becomes a visible escape such as ``\\x1b`` or ``\\u202e``.
- `Redactor` replaces every configured secret (API keys, webhook URLs,
  passwords) with ``****`` in a string, also in its percent-encoded forms,
  which is how a key appears inside a logged request URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit

_CONTROLS = [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _CONTROLS}

REDACTED = "****"
# Shorter values would blank out ordinary words; a secret that short is not one worth the name.
MIN_SECRET_CHARS = 4


def safe_text(text: object, limit: int | None = None) -> str:
    """`text` as a string with control and bidi characters escaped, cut to `limit` characters."""
    out = str(text).translate(_ESCAPES)
    return out if limit is None or len(out) <= limit else out[: max(0, limit - 1)] + "…"


def has_controls(text: str) -> bool:
    """Whether `text` holds a character `safe_text()` would escape."""
    return text.translate(_ESCAPES) != text


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
