"""The sinks a configuration asks for beside the JSONL store: aggregates, and PostgreSQL when set.

Every place that builds an engine with a store (headless replay, the
service, the UI) asks here, so a new destination is added in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mass_tui.aggregates import Aggregator, parse_window
from mass_tui.config import Config, ConfigError
from mass_tui.sinks.aggregates import AggregateSink
from mass_tui.sinks.base import Sink
from mass_tui.store import JsonlStore

# A bulk replay's aggregates take this many rows at a time (two flat-out batches): building
# simulator lines (24 stations, 39 scopes) 0.91 -> 0.69 s of CPU for 200 k lines; no gain
# with 3 stations, and more rows put more of the work after the last batch is scored.
BULK_ROWS = 1 << 16


def aggregator(config: Config) -> Aggregator:
    windows = {spec: parse_window(spec) for spec in config.get("store.aggregate_windows")}
    return Aggregator(windows, lateness=config.get("store.aggregate_lateness_min") * 60.0,
                      groups=config.get("store.aggregate_groups"))


def aggregate_sinks(config: Config, store: JsonlStore, *, bulk: bool = False) -> list[Sink]:
    """The aggregates sink when `[store] aggregate_windows` asks for windows (else none); `bulk` (a
    replay flat out) aggregates batches together (`BULK_ROWS` rows at a time)."""
    if not config.get("store.aggregate_windows"):
        return []
    return [AggregateSink(store, aggregator(config), coalesce_rows=BULK_ROWS if bulk else 0)]


def store_sinks(config: Config, store: JsonlStore, *, postgres_url: str | None = None, metrics: Any = None,
                on_status: Callable[[str, str], None] | None = None, aggregates: bool = True,
                bulk: bool = False) -> list[Sink]:
    """The aggregates sink (unless `aggregates` is False: it runs elsewhere, `mass_tui.sinks.offload`;
    `bulk` as `aggregate_sinks`), and the PostgreSQL sink when `postgres_url` (or `[store]
    postgres_url`) is set.

    `on_status(sink name, text)` hears a sink's state changes (the UI's status bar)."""
    sinks: list[Sink] = aggregate_sinks(config, store, bulk=bulk) if aggregates else []
    url = postgres_url or config.get("store.postgres_url")
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"--sink {url!r}: expected a postgresql:// URL")
        from mass_tui.sinks.postgres import PostgresSink

        sinks.append(PostgresSink(url, store, password=config.secret("PGPASSWORD"), metrics=metrics,
                                  on_status=on_status, windows=config.get("store.postgres_windows")))
    return sinks
