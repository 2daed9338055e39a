"""The PostgreSQL/TimescaleDB schema of mass: tables, keys, migrations.

Observations are wide: one row per (station, ts) with one `double precision`
column per registry variable (`gust_mps`, `temp_c`, ...). A narrow table
(station, ts, variable, value) would hold the same data in about six times
as many rows; wide rows make "one row per station and time" the primary key
that makes re-delivery idempotent, are what Grafana's time-series panels
and plain SQL read without a pivot (`SELECT ts, gust_mps FROM observations`),
and the registry is small and fixed (a NULL costs one bit). A variable
added to the registry is added as a column at start.

Every table's key includes `ts`, so each can be a TimescaleDB hypertable
(its unique indexes must include the partitioning column). The
`mass_schema` table holds the schema version; `migrate()` brings a database
of any older version up to `VERSION` in one transaction.

Keys (at-least-once delivery never duplicates a row):
observations (station, ts); anomalies (station, ts, variable, detector);
alerts (station, ts, rule, kind); aggregates ("window", scope, key,
variable, ts); daily_summary (station, ts); mass_position (store, stream).
"""

from __future__ import annotations

from typing import Any

from sources.variables import REGISTRY

VERSION = 1

OBSERVATION_COLUMNS = ["station", "ts", "source", "lat", "lon", "tags", *REGISTRY, "anomaly_score"]
ANOMALY_COLUMNS = ["station", "ts", "variable", "value", "detector", "severity", "score", "reason", "episode"]
ALERT_COLUMNS = ["station", "ts", "kind", "rule", "variable", "value", "unit", "detector", "severity", "reason",
                 "anomaly_ts", "episode_start", "readings"]
AGGREGATE_COLUMNS = ["window", "scope", "key", "variable", "ts", "end", "station", "count", "mean", "min", "min_ts",
                     "max", "max_ts", "sum", "late", "final"]
DAILY_COLUMNS = ["station", "ts", "day", "observations", "gust_max", "gust_max_ts", "wind_max", "temp_min",
                 "temp_min_ts", "temp_max", "temp_max_ts", "temp_mean", "precip_total", "pressure_min",
                 "pressure_max", "pressure_range", "pressure_variable", "final"]

# table -> (columns, conflict key, what a row whose key is there already does)
TABLES: dict[str, tuple[list[str], list[str], str]] = {
    # A second report for the same station and time (ASOS sends a special report beside the routine one,
    # one of them with the precipitation) fills in and overrides what it carries; a re-sent one changes nothing.
    "observations": (OBSERVATION_COLUMNS, ["station", "ts"], "merge"),
    "anomalies": (ANOMALY_COLUMNS, ["station", "ts", "variable", "detector"], "nothing"),
    "alerts": (ALERT_COLUMNS, ["station", "ts", "rule", "kind"], "nothing"),
    # A window written at stop (final: false) is written again whole after a restart: the last one wins.
    "aggregates": (AGGREGATE_COLUMNS, ["window", "scope", "key", "variable", "ts"], "update"),
    "daily_summary": (DAILY_COLUMNS, ["station", "ts"], "update"),
}

_VARIABLES = ",\n".join(f"    {name} double precision" for name in REGISTRY)

_V1 = [
    f"""CREATE TABLE IF NOT EXISTS observations (
    station text NOT NULL,
    ts timestamptz NOT NULL,
    source text,
    lat double precision,
    lon double precision,
    tags jsonb,
{_VARIABLES},
    anomaly_score jsonb,
    PRIMARY KEY (station, ts)
)""",
    """CREATE TABLE IF NOT EXISTS anomalies (
    station text NOT NULL,
    ts timestamptz NOT NULL,
    variable text NOT NULL,
    value double precision,
    detector text NOT NULL,
    severity text,
    score double precision,
    reason text,
    episode jsonb,
    PRIMARY KEY (station, ts, variable, detector)
)""",
    """CREATE TABLE IF NOT EXISTS alerts (
    station text NOT NULL,
    ts timestamptz NOT NULL,
    kind text NOT NULL,
    rule text NOT NULL,
    variable text,
    value double precision,
    unit text,
    detector text,
    severity text,
    reason text,
    anomaly_ts timestamptz,
    episode_start timestamptz,
    readings integer,
    PRIMARY KEY (station, ts, rule, kind)
)""",
    """CREATE TABLE IF NOT EXISTS aggregates (
    "window" text NOT NULL,
    scope text NOT NULL,
    key text NOT NULL,
    variable text NOT NULL,
    ts timestamptz NOT NULL,
    "end" timestamptz,
    station text,
    count bigint,
    mean double precision,
    min double precision,
    min_ts timestamptz,
    max double precision,
    max_ts timestamptz,
    sum double precision,
    late bigint,
    final boolean,
    PRIMARY KEY ("window", scope, key, variable, ts)
)""",
    """CREATE TABLE IF NOT EXISTS daily_summary (
    station text NOT NULL,
    ts timestamptz NOT NULL,
    day date,
    observations bigint,
    gust_max double precision,
    gust_max_ts timestamptz,
    wind_max double precision,
    temp_min double precision,
    temp_min_ts timestamptz,
    temp_max double precision,
    temp_max_ts timestamptz,
    temp_mean double precision,
    precip_total double precision,
    pressure_min double precision,
    pressure_max double precision,
    pressure_range double precision,
    pressure_variable text,
    final boolean,
    PRIMARY KEY (station, ts)
)""",
    """CREATE TABLE IF NOT EXISTS mass_position (
    store text NOT NULL,
    stream text NOT NULL,
    file text NOT NULL,
    inode bigint NOT NULL,
    "offset" bigint NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store, stream)
)""",
    "CREATE INDEX IF NOT EXISTS observations_ts ON observations (ts)",
    "CREATE INDEX IF NOT EXISTS anomalies_ts ON anomalies (ts)",
]

# version -> the statements that bring version-1 to it.
MIGRATIONS: dict[int, list[str]] = {1: _V1}
HYPERTABLES = ("observations", "anomalies", "alerts", "aggregates", "daily_summary")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def migrate(conn: Any, schema: str | None = None) -> dict[str, Any]:
    """Create or upgrade the schema (in `schema` when given, created if missing) in one transaction.

    Returns {"from": old version, "to": VERSION, "timescaledb": bool}. Registry variables the
    observations table lacks are added as columns. With the timescaledb extension available,
    the tables become hypertables on ts."""
    with conn.transaction():
        # One migrator at a time: two processes starting together must not both create tables.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('mass_schema'))")
        if schema:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        conn.execute("CREATE TABLE IF NOT EXISTS mass_schema (version integer NOT NULL, "
                     "applied timestamptz NOT NULL DEFAULT now())")
        row = conn.execute("SELECT max(version) FROM mass_schema").fetchone()
        old = (row[0] if row else None) or 0
        for version in sorted(MIGRATIONS):
            if version > old:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute("INSERT INTO mass_schema (version) VALUES (%s)", (version,))
        for name in REGISTRY:
            conn.execute(f"ALTER TABLE observations ADD COLUMN IF NOT EXISTS {quote(name)} double precision")
        timescale = _timescale(conn)
        if timescale:
            for table in HYPERTABLES:
                conn.execute(f"SELECT create_hypertable('{table}', 'ts', if_not_exists => TRUE, "
                             "migrate_data => TRUE)")
    return {"from": old, "to": VERSION, "timescaledb": timescale}


def _timescale(conn: Any) -> bool:
    """Whether TimescaleDB is installed in this database, installing it when the server has it."""
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if not available:
        return False
    try:
        with conn.transaction():  # a savepoint: lacking the right to create it is not an error
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except Exception:  # noqa: BLE001 - psycopg's error: the plain tables work without it
        return False
    return True
