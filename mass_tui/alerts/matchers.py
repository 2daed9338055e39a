"""Label matchers as Alertmanager's: `name=value`, `name!=value`, `name=~regex`, `name!~regex`.

A matcher tests one label of a label set (`dict[str, str]`). As in
Alertmanager (`pkg/labels/matcher.go`), a label the set lacks counts as the
empty string, so `variable=""` selects alerts without a variable and
`severity!=info` also matches a set without a severity; regular expressions
are anchored at both ends (`station=~"ndbc-.*"` matches the whole value).
Values may be written bare or double-quoted (`comment="a b"`, with `\\"`
and `\\\\` escapes), as amtool accepts them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

OPERATORS = ("=~", "!~", "!=", "=")  # longest first: "=~" before "="
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPLIT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)


class MatcherError(ValueError):
    """A matcher that cannot be parsed; the message says what was expected."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def make(cls, name: str, op: str, value: str) -> Matcher:
        if op not in OPERATORS:
            raise MatcherError(f"operator {op!r}: expected one of =, !=, =~, !~")
        if not _NAME.fullmatch(name):
            raise MatcherError(f"label name {name!r}: expected letters, digits and _ (not starting with a digit)")
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(f"(?:{value})", re.DOTALL)
            except re.error as exc:
                raise MatcherError(f"{name}{op}{value!r}: not a regular expression ({exc})") from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = self._regex.fullmatch(got) is not None  # type: ignore[union-attr]
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{_quote(self.value)}"'

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> Matcher:
        return cls.make(str(d["name"]), str(d["op"]), str(d["value"]))


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        out, i, body = [], 0, raw[1:-1]
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                i += 1
                ch = {"n": "\n", "t": "\t"}.get(body[i], body[i])
            elif ch == '"':
                raise MatcherError(f"value {raw}: a quote inside a quoted value must be written \\\"")
            out.append(ch)
            i += 1
        return "".join(out)
    if raw.startswith('"') or raw.endswith('"'):
        raise MatcherError(f"value {raw}: unbalanced double quote")
    return raw


def parse_matcher(text: str) -> Matcher:
    """`station=ndbc-44005`, `severity!=info`, `station=~"ndbc-.*"` -> Matcher. Raises MatcherError."""
    m = _SPLIT.match(text)
    if m is None:
        raise MatcherError(f"matcher {text!r}: expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX")
    name, op, raw = m.groups()
    return Matcher.make(name, op, _unquote(raw))


def parse_matchers(texts: Iterable[str]) -> list[Matcher]:
    return [parse_matcher(t) for t in texts]


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (an empty list matches everything, as an empty route does)."""
    return all(m.matches(labels) for m in matchers)


def matchers_from_config(value: object, where: str) -> list[Matcher]:
    """A config list of matcher strings; raises MatcherError naming `where`."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatcherError(f"{where} = {value!r}: expected a list of matchers such as [\"station=ndbc-44005\"]")
    try:
        return parse_matchers(value)
    except MatcherError as exc:
        raise MatcherError(f"{where}: {exc}") from None
