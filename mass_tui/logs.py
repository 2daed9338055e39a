"""Logging: a rotating file under the logs directory, and one line per event on stdout when headless.

Nothing here runs at import time; `setup_logging()` is called by commands.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

EVENTS = logging.getLogger("mass.events")


def setup_logging(log_dir: Path, *, stdout_events: bool, level: int = logging.INFO,
                  file_name: str = "mass.log") -> Path:
    """Log to `log_dir/file_name` (rotated at 5 MB, 5 kept); each process writes its own file (the UI's
    engine process writes `engine.log`), since two processes rotating one file would race."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / file_name
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_mass", False):
            root.removeHandler(handler)
            handler.close()
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=5 * 1024 * 1024, backupCount=5,
                                                        encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    file_handler._mass = True  # type: ignore[attr-defined]
    root.addHandler(file_handler)
    root.setLevel(level)
    EVENTS.propagate = True
    for handler in list(EVENTS.handlers):
        EVENTS.removeHandler(handler)
    if stdout_events:
        out = logging.StreamHandler(sys.stdout)
        out.setFormatter(logging.Formatter("%(message)s"))
        EVENTS.addHandler(out)
    return path
