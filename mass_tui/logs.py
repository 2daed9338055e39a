"""Logging: a rotating file under the logs directory, one line per event on stdout when headless,
and the few problems an operator must see at once (the store cannot be written) on stderr too.

Every record that reaches a handler of ours passes one filter that
- drops repeats: a warning or error of one kind (same logger, level and text
  but for its numbers: ports, offsets, milliseconds) is written at most once
  per `REPEAT_SECONDS`; the next one that passes says "(repeated K times in the
  last N s)" (a broker that is down makes librdkafka report every 50 ms);
- redacts every configured secret (`sources.text.Redactor`), in the message,
  its arguments and any traceback, and escapes control characters in the
  message (`sources.text.safe_text`): station names come from data.
httpx and httpcore log each request URL at INFO, and an OpenWeatherMap URL
carries the API key: those loggers are set to WARNING.

Nothing here runs at import time; `setup_logging()` is called by commands.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from sources.text import Redactor, safe_text

_DIGITS = re.compile(r"\d+")
# librdkafka's note that it held back copies of an error ("..., 1 identical error(s) suppressed"): the same kind
_SUPPRESSED = re.compile(r",? ?# identical error\(s\) suppressed")

EVENTS = logging.getLogger("mass.events")
# Problems that stop storing (disk full, read-only): logged and, when headless, said on stderr.
NOTICE = logging.getLogger("mass.notice")
REPEAT_SECONDS = 30.0
QUIET_LOGGERS = ("httpx", "httpcore")


class RecordFilter(logging.Filter):
    """Rate-limits repeated warnings and redacts secrets; one instance shared by every handler,
    so a record gets the same decision and text in the file, on stdout and on stderr."""

    def __init__(self, redact: Redactor | None = None, every: float = REPEAT_SECONDS,
                 clock=time.monotonic) -> None:
        super().__init__()
        self.redact = redact or Redactor()
        self.every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str, int], tuple[float, int]] = {}  # kind -> (written at, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "_mass_pass", None)
        if decided is not None:
            return decided
        passed = self._rate(record)
        if passed:
            self._scrub(record)
        record._mass_pass = passed  # type: ignore[attr-defined]
        return passed

    def _rate(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        kind = (record.name, _SUPPRESSED.sub("", _DIGITS.sub("#", record.getMessage()))[:200], record.levelno)
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last[0] < self.every:
                self._last[kind] = (last[0], last[1] + 1)
                return False
            self._last[kind] = (now, 0)
            if len(self._last) > 4096:  # kinds are message templates: few, but never unbounded
                self._last = {k: v for k, v in self._last.items() if now - v[0] < self.every}
        if last is not None and last[1]:
            record.msg = f"{record.getMessage()} (repeated {last[1]} times in the last {now - last[0]:.0f} s)"
            record.args = None
        return True

    def _scrub(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        # A message is one line of inert text: a station name from data cannot recolour or clear
        # a terminal showing the log, nor forge a second log line.
        clean = safe_text(self.redact(message)) if self.redact else safe_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if not self.redact:
            return
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)


class _FileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file that, when it cannot be written (disk full), says so in one line on stderr
    at most once a minute instead of printing a traceback per record."""

    _told = 0.0

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        now = time.monotonic()
        if now - self._told >= 60.0:
            self._told = now
            exc = sys.exc_info()[1]
            why = getattr(exc, "strerror", None) or exc
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"mass: cannot write the log {self.baseFilename}: {why}\n")


class _StdoutHandler(logging.StreamHandler):
    """Events on stdout. When the reader of a pipe goes away (`mass replay ... | head`), stdout is
    pointed at /dev/null, once: the run goes on storing and ends as it would, without a traceback
    per record (the events are in the log file all the same)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if isinstance(sys.exc_info()[1], BrokenPipeError) and silence_stdout():
            return
        super().handleError(record)


def silence_stdout() -> bool:
    """Point descriptor 1 at /dev/null (its reader is gone: EPIPE); False when that cannot be done."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
        finally:
            os.close(devnull)
    except OSError:
        return False
    return True


def _ours(handler: logging.Handler) -> bool:
    return getattr(handler, "_mass", False)


def setup_logging(log_dir: Path, *, stdout_events: bool, level: int = logging.INFO,
                  secrets: Iterable[str | None] = (), stderr_notices: bool | None = None,
                  file_name: str = "mass.log") -> Path:
    """Log to `log_dir/file_name` (rotating, 5 x 5 MB); events to stdout and notices to stderr
    when `stdout_events` (headless) unless `stderr_notices` says otherwise. `secrets` are
    redacted from every record. Returns the log file's path. Each process writes its own file
    (the UI's engine process `engine.log`): two processes rotating one file would race."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / file_name
    root = logging.getLogger()
    for logger in (root, EVENTS, NOTICE):
        for handler in list(logger.handlers):
            if _ours(handler):
                logger.removeHandler(handler)
                handler.close()
    shared = RecordFilter(Redactor(secrets))
    file_handler = _FileHandler(path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _mark(file_handler, shared)
    root.addHandler(file_handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    EVENTS.propagate = True
    NOTICE.propagate = True
    if stdout_events:
        out = _StdoutHandler(sys.stdout)
        out.setFormatter(logging.Formatter("%(message)s"))
        _mark(out, shared)
        EVENTS.addHandler(out)
    if stdout_events if stderr_notices is None else stderr_notices:
        err = logging.StreamHandler(sys.stderr)
        err.setFormatter(logging.Formatter("mass: %(message)s"))
        _mark(err, shared)
        NOTICE.addHandler(err)
    return path


def _mark(handler: logging.Handler, shared: RecordFilter) -> None:
    handler._mass = True  # type: ignore[attr-defined]
    handler.addFilter(shared)
