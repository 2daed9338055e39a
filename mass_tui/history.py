"""SQL over the JSONL store with DuckDB: views over every file of each stored stream, rotated ones included.

Views (each over `NAME.jsonl` and its rotated `NAME.YYYY-MM-DD.N.jsonl`):

- `observations`: one row per stored observation (`consumer_stream`): ts, station,
  source, lat, lon, tags, one DOUBLE column per registry variable (`gust_mps`,
  `temp_c`, ...; NULL where a station does not report it) and anomaly_score, a
  struct (`anomaly_score.gust_mps`).
- `anomalies`: ts, station, variable, value, detector, severity, score, reason, episode.
- `alerts`: ts, kind, station, rule, variable, value, unit, detector, severity,
  reason, anomaly_ts, episode_start, readings.
- `rejected`: reason, raw, received_at.
- `aggregates`: the window records of `mass_tui.aggregates` (kind, ts, end, window,
  scope, key, station, variable, count, mean, min, max, sum, ...), one per window.

Files are read by column name (`union_by_name`): stations of different kinds
carry different variables, and each file's whole content is used to find
its columns. A torn last line (a crash mid-write) is skipped. Times are
TIMESTAMP WITH TIME ZONE, shown in UTC.

DuckDB: https://duckdb.org/docs/data/json/loading_json (read_json,
union_by_name), https://duckdb.org/docs/sql/statements/copy (COPY ... TO, Parquet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mass_tui.sinks.aggregates import AGGREGATES
from mass_tui.store import ALERTS, ANOMALIES, REJECTED, STREAM, JsonlStore
from mass_tui.window_stats import SUMMED
from sources.variables import REGISTRY

VIEWS = {"observations": STREAM, "anomalies": ANOMALIES, "alerts": ALERTS, "rejected": REJECTED,
         "aggregates": AGGREGATES}
# Fields holding times, per view: read as TIMESTAMPTZ.
_TIMES = ("ts", "end", "min_ts", "max_ts", "gust_max_ts", "temp_min_ts", "temp_max_ts", "anomaly_ts",
          "episode_start", "received_at")
# Columns every view has even when no file does (an empty store, a station kind never seen).
_ALWAYS: dict[str, dict[str, str]] = {
    "observations": {"ts": "TIMESTAMPTZ", "station": "VARCHAR", "source": "VARCHAR",
                     **{name: "DOUBLE" for name in REGISTRY}},
    "anomalies": {"ts": "TIMESTAMPTZ", "station": "VARCHAR", "variable": "VARCHAR", "value": "DOUBLE",
                  "detector": "VARCHAR", "severity": "VARCHAR", "score": "DOUBLE", "reason": "VARCHAR"},
    "alerts": {"ts": "TIMESTAMPTZ", "kind": "VARCHAR", "station": "VARCHAR", "rule": "VARCHAR",
               "variable": "VARCHAR", "value": "DOUBLE", "reason": "VARCHAR"},
    "rejected": {"reason": "VARCHAR", "raw": "VARCHAR", "received_at": "TIMESTAMPTZ"},
    "aggregates": {"kind": "VARCHAR", "ts": "TIMESTAMPTZ", "end": "TIMESTAMPTZ", "window": "VARCHAR",
                   "scope": "VARCHAR", "key": "VARCHAR", "station": "VARCHAR", "variable": "VARCHAR",
                   "count": "BIGINT", "mean": "DOUBLE", "min": "DOUBLE", "max": "DOUBLE", "sum": "DOUBLE",
                   "observations": "BIGINT", "final": "BOOLEAN"},
}


class QueryError(ValueError):
    """A query DuckDB refused (syntax, unknown column); the message is DuckDB's."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(db_dir: Path, sql: str | None = None) -> Any:
    """An in-memory DuckDB connection with the store's views (see the module docstring).

    With `sql`, only the views it names read their files (each view reads its files once to find
    their columns); the others are empty."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    store = JsonlStore.__new__(JsonlStore)  # only to list files: no directory is created
    store.db_dir = Path(db_dir)
    for view, name in VIEWS.items():
        wanted = sql is None or re.search(rf"\b{view}\b", sql, re.IGNORECASE) is not None
        files = [str(p) for p in store.files(name)] if wanted and store.db_dir.is_dir() else []
        definition = _aggregates_sql(con, files) if view == "aggregates" else _view_sql(con, view, files)
        con.execute(f"CREATE VIEW {view} AS {definition}")
    return con


def _view_sql(con: Any, view: str, files: list[str]) -> str:
    wanted = _ALWAYS[view]
    if not files:
        cols = ", ".join(f"CAST(NULL AS {t}) AS {_quote(c)}" for c, t in wanted.items())
        return f"SELECT {cols} WHERE false"
    source = (f"read_json([{', '.join(map(_literal, files))}], format = 'newline_delimited', "
              "union_by_name = true, sample_size = -1, ignore_errors = true)")
    found = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    select = []
    for col in found:
        q = _quote(col)
        if col in _TIMES:
            select.append(f"CAST({q} AS TIMESTAMPTZ) AS {q}")
        elif col in wanted:
            select.append(f"CAST({q} AS {wanted[col]}) AS {q}")
        else:
            select.append(q)
    select += [f"CAST(NULL AS {t}) AS {_quote(c)}" for c, t in wanted.items() if c not in found]
    # A torn line reads as a row of NULLs: every stored line has its first field.
    first = "reason" if view == "rejected" else "ts"
    sql = f"SELECT {', '.join(select)} FROM {source} WHERE {_quote(first)} IS NOT NULL"
    return sql


# The stored aggregate lines: "windows" lines (arrays, one entry per window of one variable) and "daily" lines.
_WINDOW_ARRAYS = {"start": "DOUBLE[]", "count": "BIGINT[]", "mean": "DOUBLE[]", "min": "DOUBLE[]",
                  "min_ts": "DOUBLE[]", "max": "DOUBLE[]", "max_ts": "DOUBLE[]", "sum": "DOUBLE[]",
                  "value": "DOUBLE[]", "at": "DOUBLE[]",
                  "late": "BIGINT[]"}
_AGGREGATE_SCALARS = {"kind": "VARCHAR", "window": "VARCHAR", "scope": "VARCHAR", "key": "VARCHAR",
                      "station": "VARCHAR", "variable": "VARCHAR", "final": "BOOLEAN", "seconds": "DOUBLE",
                      "ts": "VARCHAR", "end": "VARCHAR", "day": "DATE", "observations": "BIGINT",
                      "gust_max_ts": "VARCHAR", "temp_min_ts": "VARCHAR", "temp_max_ts": "VARCHAR",
                      **{c: "DOUBLE" for c in ("gust_max", "wind_max", "temp_min", "temp_max", "temp_mean",
                                               "precip_total", "pressure_min", "pressure_max", "pressure_range")},
                      "pressure_variable": "VARCHAR"}
_DAILY = [c for c in _AGGREGATE_SCALARS if c not in ("variable", "seconds")]
_WINDOW_SCALARS = {"first": "DOUBLE", "step": "DOUBLE"}  # evenly spaced starts (mass_tui.aggregates)


def _aggregates_sql(con: Any, files: list[str]) -> str:
    """One row per window and per day: "windows" lines unnested; a window written at stop
    (final: false) and again, whole, once it closed after a restart counts once (the final, fullest).

    Of two records alike in `final` and count, the first written is read: a rerun after a killed
    writer writes again windows the killed run had closed (its aggregates were ahead of the
    stream), the same readings summed in other groups (the restart's rebuild, then the rerun's
    batches), so a mean at a half-way tie of its 6th decimal may round the other way; the first
    was summed in the batches a run without the kill sums them in. Taking whichever line DuckDB's
    parallel scan met first read one or the other from the same files, run to run."""
    wanted = {**_AGGREGATE_SCALARS, **_WINDOW_SCALARS, **_WINDOW_ARRAYS}
    if files:
        source = (f"read_json([{', '.join(map(_literal, files))}], format = 'newline_delimited', "
                  "union_by_name = true, sample_size = -1, ignore_errors = true)")
        found = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        cols = [f"CAST({_quote(c)} AS {t}) AS {_quote(c)}" if c in found else f"CAST(NULL AS {t}) AS {_quote(c)}"
                for c, t in wanted.items()]
        # `_line`: the line's place in the files (oldest first), the order the lines were written in
        base = f"SELECT {', '.join(cols)}, ordinality AS _line FROM {source} WITH ORDINALITY WHERE kind IS NOT NULL"
    else:
        base = ("SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {_quote(c)}" for c, t in wanted.items())
                + ", CAST(NULL AS BIGINT) AS _line WHERE false")

    def tz(expr: str) -> str:
        return f"CAST({expr} AS TIMESTAMPTZ)"

    # Window times are stored as epoch seconds.
    # A compact line of one-reading windows (`value`, `at`; mass_tui.aggregates.expand) reads as
    # the full form: count 1, late 0, min = max = the value, their times `at` or the starts.
    summed = ", ".join(map(_literal, sorted(SUMMED)))
    windows = ("SELECT 'window' AS kind, \"window\", scope, key, station, variable, final, "
               "to_timestamp(unnest(start)) AS ts, to_timestamp(unnest(start) + seconds) AS \"end\", "
               "unnest(coalesce(count, [1 for x in start])) AS count, unnest(coalesce(mean, \"value\")) AS mean, "
               "unnest(coalesce(min, \"value\")) AS min, "
               "to_timestamp(unnest(coalesce(min_ts, \"at\", start))) AS min_ts, "
               "unnest(coalesce(max, \"value\")) AS max, "
               "to_timestamp(unnest(coalesce(max_ts, \"at\", start))) AS max_ts, "
               f"unnest(coalesce(sum, CASE WHEN \"value\" IS NOT NULL AND variable IN ({summed}) "
               "THEN coalesce(mean, \"value\") END)) AS sum, "
               "unnest(coalesce(late, [0 for x in start])) AS late, _line FROM stepped WHERE kind = 'windows'")
    # Evenly spaced starts written as `first` and `step`: start k = first + step * k, as `expand` does.
    stepped = ("SELECT * REPLACE (coalesce(start, [first + step * k for k in "
               "range(coalesce(len(\"value\"), len(count)))]) AS start) FROM base")
    daily_cols = [tz(_quote(c)) + f" AS {_quote(c)}" if c in _TIMES else _quote(c) for c in _DAILY]
    daily = f"SELECT {', '.join(daily_cols)}, _line FROM base WHERE kind = 'daily'"
    return (f"WITH base AS ({base}), stepped AS ({stepped}) SELECT * EXCLUDE (_line) FROM "
            f"({windows} UNION ALL BY NAME {daily}) "
            "QUALIFY row_number() OVER (PARTITION BY kind, \"window\", scope, key, variable, ts "
            "ORDER BY final DESC, coalesce(count, observations) DESC, _line) = 1")


def query(db_dir: Path, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one SQL statement over the store's views: (column names, rows). Raises QueryError."""
    import duckdb

    if not sql.strip():
        raise QueryError('empty SQL: expected one statement, e.g. "SELECT count(*) FROM observations"')
    con = connect(db_dir, sql)
    try:
        rel = con.execute(sql)
        if rel is None or rel.description is None:  # a comment only, or a statement that returns nothing
            return [], []
        return [d[0] for d in rel.description], rel.fetchall()
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    finally:
        con.close()


def export(db_dir: Path, output: Path, *, fmt: str = "parquet", view: str = "observations",
           since: float | None = None, until: float | None = None, stations: Iterable[str] = ()) -> int:
    """Write `view` rows with since <= ts < until (epoch seconds) of the given stations (all when
    empty) to `output` as Parquet or CSV; returns the row count. In CSV, nested fields (tags,
    anomaly_score, episode) are JSON text."""
    if view not in VIEWS:
        raise QueryError(f"no view {view!r}: expected one of {', '.join(VIEWS)}")
    if fmt not in ("parquet", "csv"):
        raise QueryError(f"format {fmt!r}: expected parquet or csv")
    import duckdb

    con = connect(db_dir)
    try:
        where = []
        time_col = "received_at" if view == "rejected" else "ts"
        if since is not None:
            where.append(f"{time_col} >= to_timestamp({float(since)!r})")
        if until is not None:
            where.append(f"{time_col} < to_timestamp({float(until)!r})")
        names = list(stations)
        if names and view != "rejected":
            where.append(f"station IN ({', '.join(map(_literal, names))})")
        columns = "*"
        if fmt == "csv":
            types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view})").fetchall())
            nested = [c for c, t in types.items() if t.startswith(("STRUCT", "MAP", "LIST")) or t.endswith("[]")]
            if nested:
                columns = "* REPLACE (" + ", ".join(f"to_json({_quote(c)}) AS {_quote(c)}" for c in nested) + ")"
        sql = f"SELECT {columns} FROM {view}" + (f" WHERE {' AND '.join(where)}" if where else "")
        order = f" ORDER BY {time_col}" + (", station" if view != "rejected" else "")
        output.parent.mkdir(parents=True, exist_ok=True)
        options = "FORMAT PARQUET" if fmt == "parquet" else "FORMAT CSV, HEADER"
        con.execute(f"COPY ({sql}{order}) TO {_literal(str(output))} ({options})")
        return int(con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0])
    except duckdb.Error as exc:  # the output cannot be written (a directory, no permission, a full disk)
        raise QueryError(f"cannot write {output}: {exc}") from None
    finally:
        con.close()
