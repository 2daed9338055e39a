"""`mass query`, `mass export` and the `--sink` flag: the history subcommands, registered by `mass_tui.cli`."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

SINK_HELP = "also write to PostgreSQL/TimescaleDB at this postgresql:// URL (as [store] postgres_url)"


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `query` and `export` to the subcommands, and `--sink` to replay, run, simulate and config."""
    for name in ("replay", "run", "simulate", "config"):
        if name in sub.choices:
            sub.choices[name].add_argument("--sink", metavar="URL", help=SINK_HELP)

    p = sub.add_parser("query", help="SQL over the stored history (DuckDB): observations, anomalies, alerts, "
                                     "rejected, aggregates")
    add_common(p)
    p.add_argument("sql", help='e.g. "SELECT station, max(gust_mps) FROM observations GROUP BY station"')
    p.add_argument("--format", "-f", default="table", choices=("table", "csv", "json"))

    p = sub.add_parser("export", help="write stored observations (or another view) to Parquet or CSV")
    add_common(p)
    p.add_argument("--format", "-f", choices=("parquet", "csv"),
                   help="default: from the output's extension (.csv, .parquet), else parquet")
    p.add_argument("--from", dest="from_", metavar="TIME", help="from this time (ISO 8601, inclusive)")
    p.add_argument("--to", metavar="TIME", help="up to this time (exclusive)")
    p.add_argument("--station", action="append", default=[], help="only this station (repeatable)")
    p.add_argument("--view", default="observations",
                   choices=("observations", "anomalies", "alerts", "rejected", "aggregates"))
    p.add_argument("--output", "-o", type=Path,
                   help="the file to write (default: ./VIEW.FORMAT, e.g. ./observations.parquet); - for stdout")
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")


def _config(args: argparse.Namespace) -> Any:
    from mass_tui.cli import _config as config

    return config(args)


def _store_problem(cfg: Any, command: str) -> bool:
    """Say so (True) when the data dir has no store: a typo in --data-dir must not read as 0 rows."""
    from mass_tui.cli_alerts import NoStore, require_store

    try:
        require_store(cfg.db_dir)
    except NoStore as exc:
        print(f"mass {command}: {exc}", file=sys.stderr)
        return True
    return False


def cmd_query(args: argparse.Namespace) -> int:
    from mass_tui.history import QueryError, query

    cfg = _config(args)
    if _store_problem(cfg, "query"):
        return 1
    try:
        columns, rows = query(cfg.db_dir, args.sql)
    except QueryError as exc:
        print(f"mass query: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(format_rows(columns, rows, args.format))
    return 0


# What an output's name says about its format, so `-o day.csv` is never a Parquet file by surprise.
EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def cmd_export(args: argparse.Namespace) -> int:
    from mass_tui.history import QueryError, export
    from sources.schema import parse_time

    cfg = _config(args)
    try:
        since = parse_time(args.from_) if args.from_ else None
        until = parse_time(args.to) if args.to else None
    except ValueError as exc:
        print(f"mass export: --from/--to: {exc}", file=sys.stderr)
        return 2
    by_name = EXTENSIONS.get(args.output.suffix.lower()) if args.output is not None else None
    if args.format and by_name and args.format != by_name:
        print(f"mass export: -o {args.output} names a {by_name} file but --format is {args.format}: "
              "expected the two to agree", file=sys.stderr)
        return 2
    args.format = args.format or by_name or "parquet"
    output = args.output or Path(f"{args.view}.{args.format}")
    to_stdout = str(output) == "-"
    if not to_stdout:
        named = f"-o {output}" if args.output else f"./{output} (the default output, without -o)"
        if output.is_dir():
            print(f"mass export: {named} is a directory: expected a file name", file=sys.stderr)
            return 2
        if output.exists() and not args.force:
            print(f"mass export: {named} exists: add --force to overwrite it, give another -o, "
                  "or -o - for stdout", file=sys.stderr)
            return 2
    if _store_problem(cfg, "export"):
        return 1
    try:
        if to_stdout:
            rows = _export_to_stdout(cfg.db_dir, args, since, until)
        else:
            rows = export(cfg.db_dir, output, fmt=args.format, view=args.view, since=since, until=until,
                          stations=args.station)
    except QueryError as exc:
        print(f"mass export: {exc}", file=sys.stderr)
        return 2
    summary = orjson.dumps({"output": str(output), "format": args.format, "view": args.view, "rows": rows}).decode()
    print(summary, file=sys.stderr if to_stdout else sys.stdout)  # stdout is the data with -o -
    return 0


def _export_to_stdout(db_dir: Path, args: argparse.Namespace, since: float | None, until: float | None) -> int:
    """export() into a temporary file (DuckDB's COPY writes files), then its bytes to stdout."""
    import shutil
    import tempfile

    from mass_tui.history import export

    with tempfile.TemporaryDirectory(prefix="mass-export-") as tmp:
        path = Path(tmp) / f"{args.view}.{args.format}"
        rows = export(db_dir, path, fmt=args.format, view=args.view, since=since, until=until, stations=args.station)
        with path.open("rb") as fh:
            shutil.copyfileobj(fh, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    return rows


COMMANDS = {"query": cmd_query, "export": cmd_export}


def sink_summaries(engine: Any) -> dict[str, Any]:
    """What each history sink did (aggregate records, late readings, PostgreSQL rows), for a run's summary."""
    out: dict[str, Any] = {}
    for s in engine.sinks:
        if callable(getattr(s, "summaries", None)):  # sinks run in a writer process (mass_tui.sinks.offload)
            out.update(s.summaries())
        elif callable(getattr(s, "summary", None)):
            out[s.name] = s.summary()
    return out


# --- output formats -----------------------------------------------------------
def _plain(value: Any) -> Any:
    """A DuckDB value as JSON would have it: times in ISO 8601 UTC, decimals as numbers."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond
                                                          else "") + "Z"
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def format_rows(columns: list[str], rows: list[tuple], fmt: str) -> str:
    """Rows as an aligned text table, CSV (RFC 4180, header first) or a JSON array of objects."""
    if fmt == "json":
        return orjson.dumps([dict(zip(columns, map(_plain, row), strict=True)) for row in rows]).decode() + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(v) for v in row] for row in rows)
        return buf.getvalue()
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in rows) and bool(rows)
               for i in range(len(columns))]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return " | ".join(v.rjust(w) if num else v.ljust(w)
                          for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    out = [line(columns), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"
