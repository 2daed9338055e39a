"""The `mass` command line."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from mass_tui.config import Config, ConfigError, load_config

PRECEDENCE = "Settings: built-in defaults < mass.toml < .env < environment variables < command-line flags."
DEMO_FILE = "ndbc44005_gulf_of_maine_2012-10_sandy.csv"
DEMO_STATION = "ndbc-44005"


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML file (default: ./mass.toml when present)")
    p.add_argument("--data-dir", help="where db/ and logs/ go (MASS_DATA_DIR, default ./data)")
    p.add_argument("--z", type=float, dest="z", help="z threshold (Z_THRESHOLD)")
    p.add_argument("--window", type=int, help="baseline window in points (WINDOW_POINTS)")
    p.add_argument("--cusum-h", type=float, help="CUSUM decision threshold h in sigma")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mass",
        description="M.A.S.S.: real-time monitor for weather and environmental sensor streams.",
        epilog=PRECEDENCE,
    )
    sub = ap.add_subparsers(dest="command")

    p = sub.add_parser("config", help="print the effective configuration (secrets masked)", epilog=PRECEDENCE)
    _add_common(p)

    p = sub.add_parser("score", help="score a timestamp,value CSV (NAB layout)", epilog=PRECEDENCE)
    _add_common(p)
    p.add_argument("--input", "-i", type=Path, required=True)
    p.add_argument("--output", "-o", type=Path, required=True)
    p.add_argument("--detector", default="ensemble", choices=("ensemble", "zscore", "ewma", "cusum"))

    p = sub.add_parser("replay", help="replay a JSONL or CSV recording through the detectors", epilog=PRECEDENCE)
    _add_common(p)
    p.add_argument("file", type=Path)
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--max", action="store_true", help="as fast as possible (the default when headless)")
    pace.add_argument("--speed", type=float, help="N times the recorded pace")
    p.add_argument("--station", help="station name for records without one (default: the file name)")
    p.add_argument("--headless", action="store_true", help="no terminal UI: log anomalies, print a JSON summary")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print one line per anomaly")
    return ap


def _config(args: argparse.Namespace) -> Config:
    overrides = {
        "data.dir": getattr(args, "data_dir", None),
        "detectors.z": getattr(args, "z", None),
        "detectors.window_points": getattr(args, "window", None),
        "detectors.cusum_h": getattr(args, "cusum_h", None),
    }
    return load_config(config_file=getattr(args, "config", None), overrides=overrides)


def cmd_config(args: argparse.Namespace) -> int:
    cfg = _config(args)
    out = cfg.masked()
    out["config_file"] = str(cfg.config_file) if cfg.config_file else None
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from mass_tui.engine import ensemble_params
    from mass_tui.scoring import ScoreInputError, score_csv

    cfg = _config(args)
    if not args.input.is_file():
        print(f"mass score: input {args.input} does not exist", file=sys.stderr)
        return 2
    try:
        stats = score_csv(args.input, args.output, args.detector, ensemble_params(cfg))
    except ScoreInputError as exc:
        print(f"mass score: {exc}", file=sys.stderr)
        return 2
    print(orjson.dumps({"output": str(args.output), "detector": args.detector, **stats}).decode())
    return 0


def _format_anomaly(a: Any) -> str:
    from sources.schema import iso_utc

    # Reasons and station names come from data: printed as plain text, never markup.
    return f"{iso_utc(a.ts)} {a.severity.upper():8s} {a.station} {a.variable} {a.detector}: {a.reason}"


def cmd_replay(args: argparse.Namespace) -> int:
    from mass_tui.engine import Engine
    from mass_tui.replay import replay_file
    from mass_tui.store import JsonlStore

    if not args.headless:
        print("mass replay: the terminal UI is not built yet; running headless.", file=sys.stderr)
    cfg = _config(args)
    path: Path = args.file
    if not path.is_file():
        print(f"mass replay: {path} does not exist", file=sys.stderr)
        return 2
    speed = None if args.max or args.speed is None else args.speed
    if speed is not None and speed <= 0:
        print(f"mass replay: --speed {speed}: expected a positive number", file=sys.stderr)
        return 2

    def on_batch(result: Any) -> None:
        if not args.quiet:
            for a in result.anomalies:
                print(_format_anomaly(a), flush=speed is not None)

    started = time.perf_counter()
    interrupted = False
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    with JsonlStore(cfg.db_dir) as store:
        engine = Engine(cfg, store)
        try:
            replay_file(engine, path, speed=speed, station=args.station, on_batch=on_batch)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            store.flush()
            signal.signal(signal.SIGTERM, previous)
    elapsed = time.perf_counter() - started
    summary = engine.summary(
        file=str(path),
        db=str(cfg.db_dir),
        seconds=round(elapsed, 3),
        obs_per_s=round(engine.counters.observations / elapsed, 1) if elapsed > 0 else None,
        interrupted=interrupted,
    )
    print(orjson.dumps(summary).decode(), flush=True)
    return 130 if interrupted else 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_default(args: argparse.Namespace) -> int:
    """`mass` with no command: until the terminal UI lands, replay the bundled storm headless."""
    demo = resources.files("mass_tui") / "demo" / DEMO_FILE
    print(
        "mass: the terminal UI is not built yet; replaying the bundled Sandy buoy recording headless.\n"
        "      Try `mass replay FILE --headless`, `mass score --input X.csv --output Y.csv`, `mass config`.",
        file=sys.stderr,
    )
    with resources.as_file(demo) as path:
        ns = argparse.Namespace(
            config=None, data_dir=None, z=None, window=None, cusum_h=None, file=path, max=True,
            speed=None, station=DEMO_STATION, headless=True, quiet=False,
        )
        return cmd_replay(ns)


COMMANDS = {"config": cmd_config, "score": cmd_score, "replay": cmd_replay}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = COMMANDS.get(args.command, cmd_default)
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"mass: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
