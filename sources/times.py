"""Message times: ISO 8601 strings, epoch numbers in s, ms, µs or ns, naive local times with DST rules.

- **Epoch numbers** are recognised by magnitude (Telegraf's `json_timestamp_units`,
  `time.time_ns()`, JavaScript's `Date.now()`): |x| < 1e11 is seconds, < 1e14
  milliseconds, < 1e17 microseconds, else nanoseconds. Then, like every time,
  range-checked against the plausible span (`inputs.earliest`, `inputs.latest`):
  outside it is a reason ("timestamp out of range"), never an exception, so a
  time the store cannot write (year 10000, `1e20`) never gets past validation.
- **ISO 8601** with an offset or `Z` is exact. A naive time (no offset) is UTC unless
  a time zone applies (`--tz Area/City`, or `tz` of the station in `[[stations]]`);
  then it is local wall-clock time under that zone's DST rules (IANA tz database via
  `zoneinfo`):
  - the **repeated hour** (autumn): a reading is taken in the first pass (daylight
    time) unless its station's previous reading already lies at or after that
    instant, that is the logger's clock went back: then it is in the second pass
    (standard time). Each such resolution is counted (`tz_repeated`).
  - the **skipped hour** (spring): a wall time that does not exist is read with the
    offset in force before the change (02:30 EST = 03:30 EDT), Python's `fold=0`
    rule (PEP 495). Counted (`tz_skipped`).
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

EARLIEST = -2208988800.0  # 1900-01-01T00:00:00Z
LATEST = 4102444800.0  # 2100-01-01T00:00:00Z


class TimeError(ValueError):
    """A time that cannot be used; the message says why."""


def epoch_seconds(value: float) -> float:
    """Seconds from an epoch number in s, ms, µs or ns, told apart by magnitude."""
    size = abs(value)
    if size < 1e11:
        return value
    if size < 1e14:
        return value / 1e3
    if size < 1e17:
        return value / 1e6
    return value / 1e9


def epoch_seconds_array(values: np.ndarray) -> np.ndarray:
    """epoch_seconds for a column (NaN and inf pass through)."""
    size = np.abs(values)
    with np.errstate(invalid="ignore"):
        scale = np.where(size < 1e11, 1.0, np.where(size < 1e14, 1e3, np.where(size < 1e17, 1e6, 1e9)))
    return values / scale


def _compact(digits: str) -> float | None:
    """The seconds (its wall-clock reading as if UTC, like any naive time: a configured time zone
    applies) of YYYYMMDDhh, YYYYMMDDhhmm or YYYYMMDDhhmmss (DWD's MESS_DATUM) of a year
    1900-2099 that makes a date and time, else None (30 February, an hour 24), for digits that start
    as one (`_dated`). Applied to times written as text (`parse_iso`): as epoch numbers these would be
    seconds of 2030-2036, milliseconds of 1976 or microseconds of 1970, where a text column of digits
    is far likelier a compact date. A JSON number stays an epoch number (the usual carrier of epoch
    seconds: time.time(), Telegraf)."""
    try:
        return _wall_seconds(datetime(int(digits[:4]), *(int(digits[k:k + 2]) for k in range(4, len(digits), 2))))
    except ValueError:
        return None


def _dated(digits: str) -> bool:
    """10, 12 or 14 digits that start as a YYYYMMDD of 1900-2099 would (a month 01-12, a day 01-31):
    written as a compact date and time, not as an epoch number."""
    return (len(digits) in (10, 12, 14) and "1900" <= digits[:4] < "2100" and "01" <= digits[4:6] <= "12"
            and "01" <= digits[6:8] <= "31")


_ZERO, _NINE = ord("0"), ord("9")
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]  # YYYY MM DD hh mm ss in YYYY-MM-DDThh:mm:ss
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def iso_seconds_array(values: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`parse_iso` for a column of strings, in the common fixed-width forms, at numpy speed.

    Returns (seconds, naive, done): for each string `YYYY-MM-DDThh:mm:ss` (or a space for the
    `T`) alone (naive: seconds as if UTC, like parse_iso), followed by `Z`, or by `+hh:mm` /
    `-hh:mm`, that is a real date and time in the years 2-9998, `done` is True and `seconds` the number parse_iso
    gives. Any other string (fractions of a second, no seconds, spaces around, 30 February, an
    epoch number as text) has `done` False: parse it with parse_iso, which gives the reason when
    it fails. The digits are read as character codes; days from the civil date by H. Hinnant's
    `days_from_civil` (proleptic Gregorian, as `datetime`).
    """
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))

    def codes_of(rows: np.ndarray, width: int) -> np.ndarray:
        picked = [values[i] for i in rows.tolist()]
        return np.array(picked, dtype=f"U{width}").view(np.uint32).reshape(rows.size, width)

    return iso_seconds_fixed(lengths, codes_of)


def iso_seconds_fixed(lengths: np.ndarray, codes_of: Callable[[np.ndarray, int], np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`iso_seconds_array` of strings given by their lengths, and for a width the character codes of
    the strings of that width (`codes_of(rows, width)`: a rows x width integer array). Bytes of UTF-8
    do too, with their lengths in bytes: a multi-byte character is never a digit nor a separator."""
    n = lengths.size
    seconds = np.full(n, np.nan)
    naive = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)
    for width in (19, 20, 25):
        rows = np.flatnonzero(lengths == width)
        if rows.size == 0:
            continue
        codes = codes_of(rows, width)  # the columns used are taken as int64, not the whole array
        ok = ((codes[:, 4] == 45) & (codes[:, 7] == 45) & ((codes[:, 10] == 84) | (codes[:, 10] == 32))
              & (codes[:, 13] == 58) & (codes[:, 16] == 58))
        d = codes[:, _DIGITS].astype(np.int64) - _ZERO
        ok &= np.all((d >= 0) & (d <= 9), axis=1)
        year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
        month, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
        hour, minute, second = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
        ok &= ((year >= 2) & (year <= 9998) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
               & (hour < 24) & (minute < 60) & (second < 60))
        offset = np.zeros(rows.size, dtype=np.int64)
        if width == 20:
            ok &= codes[:, 19] == 90  # Z
        elif width == 25:
            z = codes[:, [20, 21, 23, 24]].astype(np.int64) - _ZERO
            oh, om = z[:, 0] * 10 + z[:, 1], z[:, 2] * 10 + z[:, 3]
            ok &= (((codes[:, 19] == 43) | (codes[:, 19] == 45)) & (codes[:, 22] == 58)
                   & np.all((z >= 0) & (z <= 9), axis=1) & (oh < 24) & (om < 60))
            offset = np.where(codes[:, 19] == 45, -1, 1) * (oh * 3600 + om * 60)
        y = year - (month <= 2)
        era = np.floor_divide(y, 400)
        yoe = y - era * 400
        doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
        days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
        secs = days * 86400 + hour * 3600 + minute * 60 + second - offset
        rows = rows[ok]
        seconds[rows] = secs[ok].astype(np.float64)
        naive[rows] = width == 19
        done[rows] = True
    return seconds, naive, done


@lru_cache(maxsize=16384)
def parse_iso(text: str) -> tuple[float, bool]:
    """(seconds as if UTC, naive) for an ISO 8601 string; raises TimeError.

    Many stations share each timestamp: parsing each distinct string once saves a
    third of validation. A naive time's seconds are its wall-clock reading taken as
    UTC; the caller applies a time zone when one is configured.
    """
    s = text.strip()
    if len(s) > 64:
        raise TimeError(f"unparseable timestamp: {s[:40]!r}…")
    if s[:1].isdigit() and len(s) >= 10 and s[4:5] == "/":
        s = s.replace("/", "-", 2)  # 2024/05/01 10:00, as spreadsheets write it
    whole = s.rstrip("0").removesuffix(".") if "." in s else s  # 2024010112.0: an integer column with gaps
    if whole.isascii() and whole.isdigit() and len(whole) == 8:
        s = whole  # 20240101.0 is the date 20240101, as 2024010112.0 is 2024010112
    if whole.isascii() and whole.isdigit() and len(whole) != 8:
        # Digits alone are an ISO date only as YYYYMMDD (a basic-format time needs its "T"); Python
        # 3.11's fromisoformat reads the first 8 of a longer run as one ("1704110400000", epoch
        # milliseconds, as 1704-11-04). 10, 12 or 14 that make a date and time are one (naive, as
        # written: `_compact`), and those that start as a date but make none (an hour 24, 30
        # February) are refused, not read as seconds of 2034; other runs are an epoch number.
        if not _dated(whole):
            return epoch_seconds(float(whole)), False
        compact = _compact(whole)
        if compact is None:
            raise TimeError(f"unparseable timestamp: {s[:40]!r} (starts as a date, YYYYMMDDhh[mm[ss]], "
                            "but makes no date and time)")
        return compact, True
    # A number's text with a sign, a fraction or an exponent is not handed to fromisoformat, which takes
    # any character for the "T" ("00010110000.5" was 0001-01-10 00:00:00.5, "20240501e0600" 06:00),
    # but for a date and a time after a dot ("20240101.1200", as some model and ARM files write them).
    number_form = not s.isdigit() and _NUMBER_TEXT.fullmatch(s) is not None and _DATE_DOT_TIME.fullmatch(s) is None
    if not number_form:
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            if _NUMBER_TEXT.fullmatch(s) is None:
                raise TimeError(f"unparseable timestamp: {s[:40]!r}") from None
            number_form = True
    if number_form:
        if len(s) == 8 and s.isdigit() and "1900" <= s[:4] < "2100":
            # eight digits that start like a year are a date that is none (20240230), not 1970's seconds
            raise TimeError(f"unparseable timestamp: {s[:40]!r} (starts as a date, YYYYMMDD, but makes none)")
        if _signed_or_split_date(s):
            raise TimeError(f"unparseable timestamp: {s[:40]!r} (digits that start as a date, YYYYMMDD[hh[mm[ss]]], "
                            "with a sign, a fraction or an exponent: neither a date nor an epoch number for sure)")
        number = _number(s)
        if number is None:
            raise TimeError(f"unparseable timestamp: {s[:40]!r} (a number too large)")
        return epoch_seconds(number), False
    if dt.tzinfo is None:
        return _wall_seconds(dt), True
    try:
        return dt.timestamp(), False
    except (OverflowError, ValueError):
        raise TimeError(f"timestamp out of range: {s[:40]!r}") from None


def _wall_seconds(dt: datetime) -> float:
    return (dt.replace(tzinfo=UTC) - _EPOCH).total_seconds()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# A date and a time after a dot: "20240101.1200" (YYYYMMDD.hhmm[ss]), read by fromisoformat.
_DATE_DOT_TIME = re.compile(r"[0-9]{8}\.[0-9]+")

# A number's text as JSON and C write it: an optional sign, digits with an optional fraction, an
# optional exponent. Python's float() reads more: any script's digits ("１７００００００００", where the
# same digits in a date, "２０２４-01-01", are refused by fromisoformat) and "_" between digits
# ("2024_01_01" was 1970-08-23).
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number(s: str) -> float | None:
    """An epoch number written as text ("1714557600", "1.7e9"), else None (see `_NUMBER_TEXT`)."""
    if _NUMBER_TEXT.fullmatch(s) is None:
        return None
    try:
        value = float(s)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _signed_or_split_date(s: str) -> bool:
    """Whether a number's text (`_NUMBER_TEXT`) has, after a sign or before a fraction or an exponent,
    the digits of a date: 8 that start as a year 1900-2099, or 10, 12 or 14 that start as a date
    (`_dated`). Unsigned and whole, those digits are a date (`parse_iso`); with "+", ".5" or "e0"
    they are read as neither ("+2024010112" as epoch seconds is 2034-02-20, "+20240101" 1970-08-23)."""
    mantissa = s.lstrip("+-").split("e")[0].split("E")[0]
    digits = mantissa.partition(".")[0]
    if digits == s or not digits.isdigit():
        return False  # unsigned and whole (the callers' own rules), or no digits before a point (.5e9)
    return (len(digits) == 8 and "1900" <= digits[:4] < "2100") or _dated(digits)


@dataclass
class TimeSpan:
    """The plausible span of message times, in epoch seconds [earliest, latest)."""

    earliest: float = EARLIEST
    latest: float = LATEST

    def check(self, seconds: float, shown: object) -> float:
        if not (self.earliest <= seconds < self.latest):
            raise TimeError(f"timestamp out of range: {_shown(shown)} is not within "
                            f"[{_iso(self.earliest)}, {_iso(self.latest)})")
        return seconds

    def inside(self, seconds: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return (seconds >= self.earliest) & (seconds < self.latest)

    def reason(self, shown: object) -> str:
        return (f"timestamp out of range: {_shown(shown)} is not within "
                f"[{_iso(self.earliest)}, {_iso(self.latest)})")


def _shown(value: object) -> str:
    from sources.text import brief

    return brief(value, 40)


@lru_cache(maxsize=64)  # a span's two ends, in every reason for a time outside it
def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def parse_time(value: object, span: TimeSpan | None = None) -> float:
    """Seconds since the epoch (UTC) from an ISO 8601 string or an epoch number (s/ms/µs/ns).

    A naive string is taken as UTC here (zones are applied by the decoder, which knows
    the station). Raises TimeError (a ValueError) for anything unusable, out of range included.
    """
    span = span or _DEFAULT_SPAN
    if isinstance(value, bool):
        raise TimeError(f"timestamp is not a time: {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = epoch_seconds(float(value))
        except OverflowError:
            raise TimeError(f"timestamp out of range: {_shown(value)}") from None
        if not math.isfinite(seconds):
            raise TimeError(f"timestamp is not finite: {value!r}")
        return span.check(seconds, value)
    if isinstance(value, str):
        seconds, _naive = parse_iso(value)
        return span.check(seconds, value)
    raise TimeError(f"timestamp is not a string or number: {_shown(value)}")


_DEFAULT_SPAN = TimeSpan()


@dataclass
class LocalTimes:
    """Naive wall-clock times to UTC under a zone's DST rules, with the repeated-hour state per station.

    A wall time the autumn change repeats has two instants: the first pass (fold 0) and the second
    (fold 1). Which one a reading is follows from the station's readings before it, in the order they
    come, and the way they go: oldest-first (a live feed, most files) the second pass once the
    station has been at or past the first, and, once its newest reading is in the second pass, for a
    reading not after it too (late, or a second line of that instant); newest-first (NDBC's files,
    many loggers' exports) the second pass while the station has not yet come down past it; with one
    reading before, the pass nearer to it (readings under an hour apart). The way is the station's
    net count of readings past its newest (later) and past its oldest (earlier) so far, so a late
    reading in an oldest-first stream does not turn it. A station's first reading, or one alone in
    the repeated hour with nothing to tell by, is the first pass. While the way is not known (the
    first reading or two), the readings after it in the batch (`ahead`, up to the first outside the
    repeated hour) tell the pass when one of the two makes them repeat no instant and go one way
    nearest together (`_by_ahead`): a logger whose readings start in the second pass (oldest-first,
    the next reading after the hour 15 min on, not 75), a newest-first file whose first lines are,
    readings 30-60 min apart. Rules of thumb for ambiguous input, not proofs: README's "Time zones"
    lists what they read wrong."""

    newest: dict[str, float] = field(default_factory=dict)  # station -> UTC seconds of its newest reading
    oldest: dict[str, float] = field(default_factory=dict)  # station -> UTC seconds of its oldest reading
    way: dict[str, int] = field(default_factory=dict)  # station -> readings going later minus earlier, +-3
    last: dict[str, float] = field(default_factory=dict)  # station -> UTC seconds of its last reading read
    repeated: int = 0
    skipped: int = 0
    depth: int = 0  # a copy looking ahead for another (`_by_ahead`): how many levels down
    looked: dict[str, int] = field(default_factory=dict)  # station -> times looked ahead (`_by_ahead`)

    def resolve(self, station: str, wall: float, zone: ZoneInfo,
                ahead: Callable[[], Sequence[float]] | None = None) -> float:
        """UTC seconds of the wall-clock time `wall` (its reading taken as if UTC) at `station` in `zone`.
        `ahead`: the station's next wall times after this one (as `wall`), asked for only while the
        way of its readings is not known yet and this one is in the repeated hour."""
        naive = datetime.fromtimestamp(wall, UTC).replace(tzinfo=None)
        first = naive.replace(tzinfo=zone, fold=0)
        second = naive.replace(tzinfo=zone, fold=1)
        off0, off1 = first.utcoffset(), second.utcoffset()
        newest, oldest = self.newest.get(station), self.oldest.get(station)
        if off0 is None or off1 is None or off0 == off1:
            utc = wall - (off0.total_seconds() if off0 is not None else 0.0)
        else:
            t0, t1 = wall - off0.total_seconds(), wall - off1.total_seconds()
            back = datetime.fromtimestamp(t0, zone).replace(tzinfo=None)
            if back != naive:  # a wall time the clock skipped: the offset before the change (fold=0)
                self.skipped += 1
                utc = t0
            else:
                self.repeated += 1
                way, last = self.way.get(station, 0), self.last.get(station)
                told = None if way or ahead is None or self.depth >= 2 else \
                    self._by_ahead(station, t0, t1, zone, ahead())
                if told is not None:
                    utc = told
                elif last is None:
                    utc = t0
                elif way > 0:  # oldest-first: the clock went back once the station was at or past the first pass,
                    # and a reading not after the newest is late in the pass the newest is in
                    utc = t1 if newest >= t0 and (t1 > newest or _offset(newest, zone) == off1) else t0
                elif way < 0:  # newest-first: the second pass until the readings come down past it
                    utc = t1 if t1 < oldest else t0
                else:  # no way yet (one reading before): the pass nearer to it (readings under an hour
                    # apart), but not its very instant: the same wall time again is the other pass
                    utc = t1 if t0 == last or (t1 != last and abs(t1 - last) < abs(t0 - last)) else t0
        self._keep(station, utc)
        return utc

    def _keep(self, station: str, utc: float) -> None:
        newest, oldest = self.newest.get(station), self.oldest.get(station)
        self.last[station] = utc
        if newest is None or oldest is None:
            self.newest[station] = self.oldest[station] = utc
        elif utc > newest:
            self.newest[station] = utc
            self.way[station] = min(3, self.way.get(station, 0) + 1)
        elif utc < oldest:
            self.oldest[station] = utc
            self.way[station] = max(-3, self.way.get(station, 0) - 1)

    def _by_ahead(self, station: str, t0: float, t1: float, zone: ZoneInfo, walls: Sequence[float]) -> float | None:
        """Of a reading's two instants (t0 the first pass, t1 the second), while its station's way is not
        known, the one from which its readings (the one before, if any, this one, then `walls`, read
        by the usual rule up to the first outside the repeated hour) never repeat an instant, and go
        one way nearest together: the smaller (repeats, span + 6 x turns), where span is the sum of the
        steps and turns how far they go back on their way (span less the distance from the first to
        the last); the next readings whose way is still not known are told so too, two levels down.
        When `walls` do not reach past the repeated hour, span does not count (readings
        inside it one way tell nothing: the first pass, or the pass nearer to the one before). None
        on a tie, or when the station was looked ahead for LOOKS times already (a station whose
        readings stay at one instant)."""
        looked = self.looked.get(station, 0)
        if looked >= LOOKS:
            return None
        self.looked[station] = looked + 1
        walls = walls[:AHEAD]
        scores = []
        for utc in (t0, t1):
            local = LocalTimes({}, {}, {}, {}, depth=self.depth + 1)
            for book in ("newest", "oldest", "way", "last"):
                if station in getattr(self, book):
                    getattr(local, book)[station] = getattr(self, book)[station]
            start = local.last.get(station, utc)
            span, repeats = abs(utc - start), int(station in local.last and utc == start)
            local._keep(station, utc)
            before, past = utc, False  # past: a reading after these lies outside the repeated hour
            for i, wall in enumerate(walls):  # the next ones whose way is not known yet looking ahead too
                now = local.resolve(station, wall, zone, functools.partial(operator.getitem, walls, slice(i + 1, None)))
                span += abs(now - before)
                repeats += now == before
                before = now
                if not local.repeated:
                    past = True
                    break
                local.repeated = 0
            # A step back costs thirteen times a step on (span counts it, turns twice, weighted 6): a
            # reading late by minutes in the right pass costs less than an hour's jump in the wrong one,
            # and a wrong pass that skips the hour with one step back no longer looks shorter (51-55 min
            # steps). Inside the repeated hour only a repeat or a turn tells: how near together says nothing.
            turns = span - abs(before - start)
            scores.append((repeats, 6.0 * turns + (span if past else 0.0)))
        return None if scores[0] == scores[1] else (t0 if scores[0] < scores[1] else t1)


def _offset(utc: float, zone: ZoneInfo) -> timedelta | None:
    """The UTC offset of `zone` at the instant `utc` (seconds)."""
    return datetime.fromtimestamp(utc, zone).utcoffset()


# The readings after one that `LocalTimes` looks at to tell its pass: to the first outside the
# repeated hour, at most this many (both passes of one-second data); and how many times a station's
# readings are looked ahead of at most (its first two readings, then a batch or two more).
AHEAD = 8192
LOOKS = 4


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; raises ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as Europe/Paris): {exc}") from None
