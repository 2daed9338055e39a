"""Replay a recording into a store with the configured history sinks (aggregates), in process."""

from __future__ import annotations

from pathlib import Path

import orjson

from mass_tui.config import Config, load_config
from mass_tui.engine import Engine
from mass_tui.replay import replay_file
from mass_tui.service import open_store
from mass_tui.sinks.configured import store_sinks


def config_for(data_dir: Path, **overrides) -> Config:
    return load_config(env={}, dotenv_file=None, overrides={"data.dir": str(data_dir), **overrides})


def replay_into(data_dir: Path, recording: Path, station: str | None = None, **overrides) -> Engine:
    cfg = config_for(data_dir, **overrides)
    store = open_store(cfg)
    engine = Engine(cfg, store, sinks=store_sinks(cfg, store))
    try:
        replay_file(engine, recording, station=station)
    finally:
        engine.sinks.close()
        store.close()
    return engine


def stored(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def aggregate_records(db: Path) -> list[dict]:
    """The records of a store's aggregates files, oldest first (a "windows" line expanded per window)."""
    from mass_tui.aggregates import decode
    from mass_tui.sinks.aggregates import AGGREGATES
    from mass_tui.store import JsonlStore

    store = JsonlStore(db)
    return decode(line for path in store.files(AGGREGATES) for line in path.read_bytes().splitlines() if line.strip())


def decoded(engine, path: Path, station: str | None = None):
    """A whole recording decoded by the engine into one batch, in file order (to feed it in parts)."""
    from sources.batch import concat
    from sources.formats import open_recording

    recording = open_recording(path, "auto", station=station, chunk_bytes=4 << 20)
    defaults = {"default_station": recording.station, "default_source": f"replay:{path.name}"}
    return concat([engine.decode(chunk, **defaults).batch for chunk in recording.chunks()])


def parts(batch, size: int):
    """The batch cut into consecutive parts of `size` rows."""
    import numpy as np

    return [batch.select(np.arange(i, min(i + size, len(batch)))) for i in range(0, len(batch), size)]
