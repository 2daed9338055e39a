"""`mass silence add|list|expire`, `mass ack EPISODE`, `mass alert list`: the alert state from the shell.

They write the same SQLite alert state (`DATA_DIR/db/alert_state.sqlite3`)
the UI and the headless service read, so a silence added here applies to a
running `mass run` at its next batch, without a restart or a signal.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from mass_tui.alerts.durations import DurationError, format_duration, parse_duration
from mass_tui.alerts.matchers import MatcherError, parse_matchers
from mass_tui.alerts.message import printable
from mass_tui.alerts.state import FILE_NAME, AlertState, StateError
from mass_tui.config import ConfigError
from sources.schema import InvalidMessage, iso_utc, parse_time

EX_USAGE = 2


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "")


def register(sub: Any, alert_sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> dict[str, Any]:
    """Add the subcommands to `mass`'s parser; returns their handlers by command name."""
    p = sub.add_parser("silence", help="silences: mute alerts matching labels over a span of data time")
    ss = p.add_subparsers(dest="silence_command", required=True)
    add = ss.add_parser("add", help="add a silence, e.g. station=ndbc-44005 variable=gust_mps --for 6h",
                        description="Matchers as Alertmanager's: NAME=VALUE, NAME!=VALUE, NAME=~REGEX, NAME!~REGEX "
                        "on station, variable, rule, severity, detector and station labels (source, kind, tags). "
                        "The span is data time: a replay honours a silence over a past span.")
    add_common(add)
    add.add_argument("matchers", nargs="+", metavar="MATCHER")
    add.add_argument("--from", dest="from_", metavar="TIME", help="start (ISO 8601, default now)")
    span = add.add_mutually_exclusive_group()
    span.add_argument("--until", metavar="TIME", help="end (ISO 8601)")
    span.add_argument("--for", dest="for_", metavar="DURATION",
                      help="length from the start: 90m, 6h, 2d (default 1h, at most 10y)")
    add.add_argument("--comment", "-c", default="", help="why (shown in listings)")
    add.add_argument("--by", default=None, help="who (default: the current user)")
    lst = ss.add_parser("list", help="list silences")
    add_common(lst)
    lst.add_argument("--format", choices=("table", "json"), default="table")
    lst.add_argument("--all", action="store_true", help="include expired silences")
    exp = ss.add_parser("expire", help="expire a silence by id (or a unique prefix of it)")
    add_common(exp)
    exp.add_argument("id")

    p = sub.add_parser("ack", help="acknowledge an alert episode: no repeats until it resolves")
    add_common(p)
    p.add_argument("episode", help="episode id (or a unique prefix), as in the alert message")
    p.add_argument("--comment", "-c", default="",
                   help="why (acknowledging again without one keeps the earlier comment)")
    p.add_argument("--by", default=None, help="who (default: the current user)")

    lst = alert_sub.add_parser("list", help="list open alert episodes")
    add_common(lst)
    lst.add_argument("--format", choices=("table", "json"), default="table")
    return {"silence": cmd_silence, "ack": cmd_ack, "alert list": cmd_alert_list}


# The longest silence `--for` takes: longer is a typo (999999999d is 2.7 million years), and a span past
# the calendar's year 9999 cannot even be shown.
MAX_SILENCE = "10y"


class NoStore(ValueError):
    """A read command pointed at a data dir with no store in it (a typo in --data-dir, most often)."""


def _state(args: argparse.Namespace, *, create: bool = False, read_only: bool = False) -> AlertState:
    """The alert state of the configured data dir. A command that only reads or changes what is there
    (`create` False) raises NoStore rather than making an empty data dir where a typo points; one that
    only lists (`read_only`) makes no file and no table there (`AlertState`)."""
    from mass_tui.cli import _config

    cfg = _config(args)
    db_dir = cfg.db_dir
    if create:
        cfg.made_dir("data.dir")  # one line naming data.dir when it cannot be made or written
    else:
        require_store(db_dir)
    return AlertState.in_dir(db_dir, read_only=read_only)


def require_store(db_dir: Any) -> None:
    """Raise NoStore naming the data dir when the data dir of `db_dir` (DATA_DIR/db) is not a directory.
    An existing data dir with nothing stored yet is fine: its views are empty."""
    from pathlib import Path

    data_dir = Path(db_dir).parent
    if not data_dir.is_dir():
        why = "is not a directory" if data_dir.exists() else "does not exist"
        raise NoStore(f"data dir {printable(str(data_dir))} {why}: expected the --data-dir (MASS_DATA_DIR) "
                      "that mass run or mass replay stored into")


def _for(value: str) -> float:
    limit = parse_duration(MAX_SILENCE)
    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        raise DurationError(f"--for {exc}") from None
    if not 0 < seconds <= limit:
        raise DurationError(f"--for {value!r}: expected a duration longer than 0s and at most {MAX_SILENCE} "
                            "(e.g. 90m, 6h, 2d)")
    return seconds


def _time(value: str, flag: str) -> float:
    if value.strip().lower() == "now":
        return time.time()
    try:
        return parse_time(value)
    except InvalidMessage:
        raise ValueError(f"{flag} {value!r}: expected an ISO 8601 time such as 2012-10-01T00:00:00Z") from None


def cmd_silence(args: argparse.Namespace) -> int:
    try:
        if args.silence_command == "add":
            return _silence_add(args)
        if args.silence_command == "list":
            with _state(args, read_only=True) as state:
                _said_unread("silence list", state)
                return _silence_list(state, args)
        with _state(args) as state:
            silence = state.expire_silence(args.id)
        print(f"expired {silence.id}")
        return 0
    except NoStore as exc:
        print(f"mass silence: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        if args.silence_command == "list":  # it only reads
            return _state_error("silence list", args, exc, reading=True)
        return _state_error("silence", args, exc)
    except ConfigError:
        raise  # said by main() as for every command: "configuration error", exit 78
    except (ValueError, StateError, MatcherError, DurationError) as exc:
        print(f"mass silence: {exc}", file=sys.stderr)
        return EX_USAGE


def _state_error(command: str, args: argparse.Namespace, exc: Exception, *, reading: bool = False) -> int:
    """One line for an alert state SQLite cannot open or write (a read-only data dir, a full disk), or,
    `reading` (the listing commands, which write nothing), cannot read."""
    from mass_tui.cli import _config

    path = _config(args).db_dir / FILE_NAME
    if reading:
        print(f"mass {command}: cannot read the alert state {printable(str(path))}: {exc} (expected the "
              "alert_state.sqlite3 that mass wrote there)", file=sys.stderr)
    else:
        print(f"mass {command}: cannot use the alert state {printable(str(path))}: {exc} (is the data dir "
              "writable?)", file=sys.stderr)
    return 1


def _said_unread(command: str, state: AlertState) -> None:
    """A note on stderr when part of a state opened read-only could not be read (`AlertState.unread`)."""
    if state.unread:
        print(f"mass {command}: note: {printable(state.unread)}", file=sys.stderr)


def _silence_add(args: argparse.Namespace) -> int:
    matchers = parse_matchers(args.matchers)
    start = _time(args.from_, "--from") if args.from_ else time.time()
    end = _time(args.until, "--until") if args.until else start + _for(args.for_ or "1h")
    with _state(args, create=True) as state:
        silence = state.add_silence(matchers, start, end, created_by=args.by if args.by is not None else _user(),
                                    comment=args.comment)
    print(silence.id)
    return 0


def _silence_list(state: AlertState, args: argparse.Namespace) -> int:
    silences = state.silences(include_expired=args.all)
    now = time.time()
    if args.format == "json":
        print(orjson.dumps([s.to_dict(now) for s in silences], option=orjson.OPT_INDENT_2).decode())
        return 0
    rows = [("ID", "MATCHERS", "FROM", "UNTIL", "LENGTH", "STATUS", "BY", "COMMENT")]
    for s in silences:
        rows.append((s.id, " ".join(str(m) for m in s.matchers), iso_utc(s.starts_at), iso_utc(s.ends_at),
                     format_duration(s.ends_at - s.starts_at), s.status(now), s.created_by, s.comment))
    _table(rows)
    return 0


def _table(rows: list[tuple[Any, ...]]) -> None:
    cells = [[printable(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def cmd_ack(args: argparse.Namespace) -> int:
    try:
        with _state(args) as state:
            ack = state.ack(args.episode, args.by if args.by is not None else _user(), args.comment)
    except NoStore as exc:
        print(f"mass ack: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        return _state_error("ack", args, exc)
    except StateError as exc:
        print(f"mass ack: {exc} (mass alert list shows the open episodes)", file=sys.stderr)
        return EX_USAGE
    print(f"acknowledged {ack.episode}")
    return 0


def cmd_alert_list(args: argparse.Namespace) -> int:
    try:
        with _state(args, read_only=True) as state:
            _said_unread("alert list", state)
            episodes = state.episodes()
            acks = state.acks()
    except NoStore as exc:
        print(f"mass alert list: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        return _state_error("alert list", args, exc, reading=True)
    out = []
    for e in episodes:
        b = e.body
        ack = acks.get(e.id)
        out.append({"id": e.id, "station": e.station, "rule": e.rule, "variable": b.get("part") or None,
                    "state": e.state, "since": iso_utc(b["start"]), "last": iso_utc(b["last"]),
                    "readings": b.get("count"), "severity": b.get("notified_severity"),
                    "reason": b["worst"][7], "muted": b.get("muted"),
                    "acked": {"by": ack.by, "comment": ack.comment, "at": iso_utc(ack.at)} if ack else None})
    if args.format == "json":
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return 0
    rows = [("EPISODE", "STATION", "RULE", "SINCE", "SEVERITY", "ACKED", "REASON")]
    for o in out:
        rows.append((o["id"], o["station"], o["rule"] + (f"/{o['variable']}" if o["variable"] else ""), o["since"],
                     o["severity"], o["acked"]["by"] or "yes" if o["acked"] else "", o["reason"]))
    _table(rows)
    return 0
