"""Where a scored batch goes: each sink is one small module with one job.

The engine scores a batch once and hands the same `ScoredBatch` to every
sink in turn (the JSONL store, the UI's live state, metrics, a database).
Sinks never call back into scoring. A sink that must not lose data is
`durable`: the transport position is committed only after every durable
sink's `sync()` returned (at least once delivery; Quix Streams' checkpoint,
Telegraf's outputs).
"""

from mass_tui.sinks.base import Sink, SinkSet

__all__ = ["Sink", "SinkSet"]
