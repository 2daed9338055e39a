"""The `mass` command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from mass_tui import cli_checks as checks
from mass_tui import cli_history
from mass_tui.config import Config, ConfigError, load_config
from mass_tui.data_lock import DataDirBusy, DataDirLock
from sources.text import json_bytes, safe_text

PRECEDENCE = "Settings: built-in defaults < mass.toml < .env < environment variables < command-line flags."
DEMO_FILE = "ndbc44005_gulf_of_maine_2012-10_sandy.csv"
DEMO_STATION = "ndbc-44005"
# Sandy's 20 hours at the buoy pass in about a minute; the days before fill the charts at full speed.
DEMO_SPEED = 1200.0
DEMO_FROM = "2012-10-28T12:00:00Z"


DETECTOR_CHOICES = ("ensemble", "spike", "shift", "level", "drift", "burst", "stuck", "zscore", "ewma", "cusum")


COMMON = ("config", "data_dir", "z", "window", "cusum_h")  # the dests of _add_common's options
_BEFORE = "before_"  # their dests when given before the command (`mass --config m.toml replay ...`)


def _add_common(p: argparse.ArgumentParser, before: bool = False) -> None:
    """The options every command takes; `before`: on the main parser, where they are given before the
    command (stored under `before_DEST`, absent unless given: `_with_options_before` merges them)."""
    def dest(name: str) -> dict[str, Any]:
        if not before:
            return {"dest": name}
        return {"dest": _BEFORE + name, "default": argparse.SUPPRESS, "metavar": name.upper()}

    p.add_argument("--config", type=Path, help="TOML file (default: ./mass.toml when present)", **dest("config"))
    p.add_argument("--data-dir", help="where db/ and transport/ go (MASS_DATA_DIR, default ./data); logs go to "
                   "MASS_LOG_DIR (default ./logs)", **dest("data_dir"))
    p.add_argument("--z", type=float, help="z threshold (Z_THRESHOLD)", **dest("z"))
    p.add_argument("--window", type=int, help="baseline window in points (WINDOW_POINTS)", **dest("window"))
    p.add_argument("--cusum-h", type=float, help="CUSUM decision threshold h in sigma", **dest("cusum_h"))


def _with_options_before(args: argparse.Namespace) -> argparse.Namespace:
    """`args` with the common options given before the command taken as given after it; given in both
    places, the one after the command wins (it is the nearer)."""
    for name in COMMON:
        if hasattr(args, _BEFORE + name):
            value = getattr(args, _BEFORE + name)
            delattr(args, _BEFORE + name)
            if getattr(args, name, None) is None:
                setattr(args, name, value)
    return args


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mass-monitor")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """--version, looked up only when asked (importlib.metadata and the lookup cost every run ~30 ms)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"mass {_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mass",
        description="M.A.S.S.: real-time monitor for weather and environmental sensor streams.",
        epilog=PRECEDENCE,
    )
    ap.add_argument("--version", action=_VersionAction)
    _add_common(ap, before=True)
    sub = ap.add_subparsers(dest="command")

    p = sub.add_parser("config", help="print the effective configuration (secrets masked)", epilog=PRECEDENCE)
    _add_common(p)

    p = sub.add_parser("score", help="score a timestamp,value CSV (NAB layout)", epilog=PRECEDENCE)
    _add_common(p)
    p.add_argument("--input", "-i", type=Path, required=True)
    p.add_argument("--output", "-o", type=Path, required=True)
    p.add_argument("--detector", default="ensemble", choices=DETECTOR_CHOICES,
                   help="ensemble (every view), one view of it, or a plain detector; all calibrated alike")

    p = sub.add_parser("replay", help="replay a JSONL or CSV recording through the detectors", epilog=PRECEDENCE)
    _add_common(p)
    p.add_argument("file", type=Path)
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--max", action="store_true", help="as fast as possible (the default when headless)")
    pace.add_argument("--speed", type=checks.speed, help="N times the recorded pace (0.01 to 10000000)")
    p.add_argument("--station", help="station name for records without one (default: the file name)")
    p.add_argument("--headless", action="store_true", help="no terminal UI: log anomalies, print a JSON summary")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print one line per anomaly")
    p.add_argument("--alerts", action="store_true", help="send alerts (as ALERTS_ENABLED=true)")
    p.add_argument("--from", dest="from_", metavar="TIME", type=checks.time_flag,
                   help="replay what comes before TIME (ISO 8601) at full speed, then at --speed")
    p.add_argument("--format", default="auto", choices=("auto", "jsonl", "json", "csv", "ndbc", "iem"),
                   help="the file's format (default: detected from its content)")
    p.add_argument("--na", help="missing markers, comma-separated (inputs.na; default: empty,NA,N/A,NaN,null,M,MM,-)")
    p.add_argument("--tz", help="IANA zone of times without an offset, e.g. America/Chicago (inputs.tz; default UTC)")

    p = sub.add_parser("simulate", help="the UI on the simulator", epilog=PRECEDENCE)
    _add_common(p)
    p.add_argument("--scenario", default="building", choices=("building", "smoke"))
    p.add_argument("--transport", default="file", choices=("file", "kafka"))
    p.add_argument("--max", action="store_true", help="simulated time, as fast as possible")

    p = sub.add_parser("run", help="run the consumer as a service", epilog=PRECEDENCE)
    _add_common(p)
    p.add_argument("--headless", action="store_true", help="no terminal UI: log lines and a JSON summary")
    p.add_argument("--source", type=checks.source_name,
                   help="also run the producer: open-meteo, openweathermap, simulator[:smoke]")
    p.add_argument("--transport", default="file", choices=("file", "kafka"), help="between producer and consumer")
    p.add_argument("--max-seconds", type=checks.max_seconds, help="stop after this many seconds (headless)")
    p.add_argument("--max-messages", type=checks.max_messages, help="stop the producer after this many messages")
    p.add_argument("--max", action="store_true", help="simulator: simulated time, as fast as possible")
    p.add_argument("--metrics-port", type=checks.port, metavar="PORT",
                   help="serve Prometheus metrics on 127.0.0.1:PORT (1-65535)")
    p.add_argument("--tz", help="IANA zone of times without an offset, e.g. America/Chicago (inputs.tz; default UTC)")
    p.add_argument("--quiet", "-q", action="store_true", help="log alerts only, not every anomaly")
    p.add_argument("--alerts", action="store_true", help="send alerts (as ALERTS_ENABLED=true)")

    p = sub.add_parser("produce", help="run the producer alone", epilog=PRECEDENCE)
    _add_common(p)
    p.add_argument("--source", type=checks.source_name,
                   help="open-meteo (default from WEATHER_PROVIDER), openweathermap, simulator[:smoke]")
    p.add_argument("--transport", default="file", choices=("file", "kafka"))
    p.add_argument("--max-seconds", type=checks.max_seconds, help="stop after this many seconds")
    p.add_argument("--max-messages", type=checks.max_messages, help="stop after this many messages")
    p.add_argument("--max", action="store_true", help="simulator: simulated time, as fast as possible")

    p = sub.add_parser("alert", help="alert tools", epilog=PRECEDENCE)
    alert_sub = p.add_subparsers(dest="alert_command", required=True)
    t = alert_sub.add_parser("test", help="send one test alert through every configured channel")
    _add_common(t)
    cli_history.register(sub, _add_common)
    from mass_tui.cli_alerts import register

    COMMANDS.update(register(sub, alert_sub, _add_common))
    return ap


def _config(args: argparse.Namespace) -> Config:
    overrides = {
        "alerts.enabled": True if getattr(args, "alerts", False) else None,
        "data.dir": getattr(args, "data_dir", None),
        "detectors.z": getattr(args, "z", None),
        "detectors.window_points": getattr(args, "window", None),
        "detectors.cusum_h": getattr(args, "cusum_h", None),
        "store.postgres_url": getattr(args, "sink", None),
        "inputs.na": getattr(args, "na", None),
        "inputs.tz": getattr(args, "tz", None),
    }
    return load_config(config_file=getattr(args, "config", None), overrides=overrides)


def cmd_config(args: argparse.Namespace) -> int:
    from mass_tui.sinks.offload import arrangement

    cfg = _config(args)
    arrangement(0)  # MASS_SINKS, checked here as a bulk replay checks it (ConfigError: one line, exit 78)
    from detectors.bank import RuleConfigError, RuleSet
    from mass_tui.engine import unheard_kinds

    try:  # the rules as every engine builds them: a bad table is said here too (exit 78)
        rules = RuleSet(cfg.get("rules"))
    except RuleConfigError as exc:
        raise ConfigError(str(exc)) from None
    out = cfg.masked()
    out["config_file"] = str(cfg.config_file) if cfg.config_file else None
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    for warning in unheard_kinds(cfg, rules):
        print(f"mass config: warning: {warning}", file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from mass_tui.config import input_policy
    from mass_tui.engine import ensemble_params
    from mass_tui.scoring import ScoreInputError, score_csv

    cfg = _config(args)
    problem = regular_file_problem(args.input)
    if problem:
        print(f"mass score: --input {safe_text(args.input)} {problem}", file=sys.stderr)
        return 2
    if args.output.is_dir():
        print(f"mass score: --output {safe_text(args.output)} is a directory: expected a file name", file=sys.stderr)
        return 2
    if not args.output.parent.is_dir():
        print(f"mass score: --output {safe_text(args.output)}: no directory {safe_text(args.output.parent)} to "
              "write it in", file=sys.stderr)
        return 2
    if args.output.exists() and args.output.resolve() == args.input.resolve():
        print(f"mass score: --output {safe_text(args.output)} is the input: expected another file "
              "(the scores would overwrite the readings)", file=sys.stderr)
        return 2
    policy = input_policy(cfg)
    rejected = args.output.with_name(args.output.name + ".rejected.jsonl")
    try:
        stats = score_csv(args.input, args.output, args.detector, ensemble_params(cfg), na=policy.na,
                          span=policy.span, rejected=rejected)
    except ScoreInputError as exc:
        print(f"mass score: {safe_text(exc)}", file=sys.stderr)
        return 2
    first = stats.pop("first_rejected")
    if first is not None:
        codes = ", ".join(f"{n} {code}" for code, n in sorted(stats["rejected_by_reason"].items()))
        print(f"mass score: {stats['quarantined']} of {stats['rows']} rows quarantined, not scored ({codes}); "
              f"each with its reason in {safe_text(rejected)}; the first: line {first['line']} "
              f"{safe_text(first['raw'], 60)!r}: {first['reason']}", file=sys.stderr)
        stats["rejected_file"] = str(rejected)
    print(orjson.dumps({"output": str(args.output), "detector": args.detector, **stats}).decode())
    return 0


def regular_file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as an input file ("does not exist", "is a directory", "is not a regular
    file"), or None when it is a regular file."""
    if path.is_file():
        return None
    if path.is_dir():
        return "is a directory: expected a file"
    if path.exists():
        return "is not a regular file (a device, a pipe or a socket): expected a file"
    return "does not exist"


def _print_summary(text: str) -> None:
    """A headless run's summary line on stdout; a pipe whose reader is gone (`| head`) is pointed at
    /dev/null instead of failing a run that stored everything."""
    from mass_tui.logs import silence_stdout

    try:
        print(text, flush=True)
    except BrokenPipeError:
        silence_stdout()


def cmd_replay(args: argparse.Namespace) -> int:
    from mass_tui.engine import Engine
    from mass_tui.logs import setup_logging
    from mass_tui.replay import replay_file, uncompressed_size
    from mass_tui.service import log_events, open_store, redacted_summary
    from mass_tui.sinks.configured import store_sinks
    from mass_tui.sinks.offload import OffloadedSinks
    from mass_tui.sinks.offload import arrangement as sinks_arrangement
    from mass_tui.sinks.ordered import OrderedStoreSinks
    from sources.formats import RecordingError, open_recording

    cfg = _config(args)
    path: Path = args.file
    problem = regular_file_problem(path)
    if problem:
        print(f"mass replay: {safe_text(path)} {problem}", file=sys.stderr)
        return 2
    try:
        open_recording(path, args.format)
    except RecordingError as exc:
        print(f"mass replay: {safe_text(exc)}", file=sys.stderr)
        return 2
    speed = None if args.max or args.speed is None else args.speed  # --speed is checked by argparse
    fast_until = getattr(args, "from_", None)  # epoch seconds (checks.time_flag)
    if not args.headless:
        from mass_tui.ui.launch import replay_app

        setup_logging(cfg.made_dir("logs.dir"), stdout_events=False, secrets=cfg.secret_values())
        return _run_app(*replay_app(cfg, path, speed=speed, station=args.station, fast_until=fast_until,
                                    format=args.format))
    setup_logging(cfg.made_dir("logs.dir"), stdout_events=True, secrets=cfg.secret_values())
    lock = DataDirLock(cfg.made_dir("data.dir")).acquire()  # one consumer per data dir
    alerts = None
    if cfg.get("alerts.enabled"):  # the alert stack is imported only when alerts are on
        from mass_tui.alerts.service import AlertService

        alerts = AlertService.from_config(cfg)

    started = time.perf_counter()
    # SIGTERM and SIGINT end the replay between two batches: nothing read is lost or torn. The handlers
    # were installed by main() before anything was loaded, so a signal at any time ends in a summary.
    stop = STOP
    previous = {sig: signal.signal(sig, STOP.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    if speed is None:  # flat out: numpy temporaries of megabytes per batch (mass_tui.malloc_tuning)
        from mass_tui.malloc_tuning import keep_freed_blocks

        keep_freed_blocks()
    with open_store(cfg) as store:
        # Flat out on two CPUs or more, the store's sinks write in writer processes (mass_tui.sinks.offload).
        how = sinks_arrangement(uncompressed_size(path)) if speed is None else "inline"
        if how == "split" and not cfg.get("store.aggregate_windows"):
            how = "process"
        writer: Any = OffloadedSinks(cfg, "stream" if how == "split" else "all") if how != "inline" else None
        if writer is None and speed is None:  # inline, in the same order as a writer process (sinks.ordered)
            writer = OrderedStoreSinks(cfg, store)
        aggregates = [OffloadedSinks(cfg, "aggregates")] if how == "split" else []
        if aggregates:
            writer.after = aggregates  # its first rows wait until the aggregates' writer has rebuilt its windows
        sinks = store_sinks(cfg, store, aggregates=writer is None, bulk=speed is None)
        engine = Engine(cfg, store, alerts, sinks=[*sinks, *aggregates], store_sink=writer)
        try:
            common = {"station": args.station, "stop": stop, "format": args.format,
                      "on_batch": lambda result: log_events(result, args.quiet)}
            if fast_until is not None and speed is not None:  # the lead-in at full speed, then paced
                done = replay_file(engine, path, speed=None, until=fast_until, **common)
                interrupted = not (done and replay_file(engine, path, speed=speed, since=fast_until, **common))
            else:
                interrupted = not replay_file(engine, path, speed=speed, **common)
            engine.sinks.sync()  # inline, the JSONL sink's sync is this store's: fsynced once
            if writer is not None:  # the files this process writes itself (rejected lines)
                store.sync()  # raises StoreWriteError if the disk refused part of it: said in one line by main()
        finally:
            # a durable sink that fails at close (the writer killed while it wrote the windows still
            # open) lost what it held then: raised below, so the run is not reported a success
            unclosed = engine.sinks.close()
            store.flush()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if alerts is not None:
                alerts.close(timeout=30.0)
            lock.release()
    if unclosed is not None:
        raise unclosed
    elapsed = time.perf_counter() - started
    summary = engine.summary(
        file=str(path),
        db=str(cfg.db_dir),
        seconds=round(elapsed, 3),
        obs_per_s=round(engine.counters.observations / elapsed, 1) if elapsed > 0 else None,
        interrupted=interrupted,
    )
    summary.update(cli_history.sink_summaries(engine))
    summary["store_sinks"] = how
    if alerts is not None:
        summary.update(alerts.summary())
    _print_summary(json_bytes(redacted_summary(cfg, summary)).decode())
    return stop.exit_status() if interrupted else 0


def cmd_run(args: argparse.Namespace) -> int:
    from mass_tui.logs import setup_logging
    from mass_tui.service import run_consumer, transport_path

    cfg = _config(args)
    if not args.headless:
        from mass_tui.ui.launch import live_app

        setup_logging(cfg.made_dir("logs.dir"), stdout_events=False, secrets=cfg.secret_values())
        return _run_app(*live_app(cfg, source=args.source, transport=args.transport, max_speed=args.max))
    log_file = setup_logging(cfg.made_dir("logs.dir"), stdout_events=True, secrets=cfg.secret_values())
    k = cfg.get("kafka")
    consuming = transport_path(cfg) if args.transport == "file" else \
        f"Kafka topic {k['topic']} at {k['bootstrap_servers']} (group {k['group_id']})"
    with DataDirLock(cfg.made_dir("data.dir")):  # one consumer per data dir: refused before saying what it consumes
        print(f"mass run: consuming {consuming}; store {cfg.db_dir}; log {log_file}", file=sys.stderr)
        summary = run_consumer(cfg, transport=args.transport, source=args.source, max_seconds=args.max_seconds,
                               max_messages=args.max_messages, max_speed=args.max, metrics_port=args.metrics_port,
                               quiet=args.quiet, reload_config=lambda: _config(args), stop=STOP)
    print(json_bytes(summary).decode(), flush=True)
    if summary.get("store_error"):  # stopped while the store could not be written: the position was kept
        print(f"mass run: {summary['store_error']}", file=sys.stderr)
        return 1
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    """The producer alone. On Kafka, what was delivered is counted from delivery reports: messages
    still undelivered after the final flush are logged and make the exit status 1."""
    import logging

    from mass_tui.logs import setup_logging
    from mass_tui.pipeline import make_sink, make_source, open_retrying, run_producer
    from mass_tui.service import open_store, redacted_summary

    cfg = _config(args)
    setup_logging(cfg.made_dir("logs.dir"), stdout_events=False, stderr_notices=True,
                  secrets=cfg.secret_values())
    cfg.made_dir("data.dir")  # the transport file (and a store with --store) go under it
    log = logging.getLogger("mass.produce")
    name = args.source or cfg.get("source.provider")
    source = make_source(cfg, name, max_speed=args.max)
    stop = STOP  # SIGTERM/SIGINT set it from the start of main()
    previous = {sig: signal.signal(sig, STOP.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = time.perf_counter()
    # --max-seconds: a timer stops it as a signal would (between two polls, nothing half-sent)
    timer = threading.Timer(args.max_seconds, stop.set) if getattr(args, "max_seconds", None) else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    deadline = time.monotonic() + args.max_seconds if getattr(args, "max_seconds", None) else None
    unreachable: list[str] = []  # why the broker did not answer, while it did not

    def retrying(why: str) -> None:
        unreachable[:] = [why]
        print(f"mass produce: {why}; retrying", file=sys.stderr)

    sink = open_retrying(lambda: make_sink(cfg, args.transport, stop=stop, deadline=deadline), stop,
                         deadline=deadline, on_retry=retrying)
    if sink is None:  # stopped (or out of time) before the broker answered
        if timer is not None:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        k = cfg.get("kafka")
        print(f"mass produce: stopped before the Kafka broker at {k['bootstrap_servers']} answered; "
              "nothing produced", file=sys.stderr)
        from sources.base import SourceState

        state = SourceState("kafka producer")
        state.mark_down(unreachable[0] if unreachable else "stopped before the first attempt ended", None)
        # nothing was polled: the source is not asked for data no transport could take
        _print_summary(orjson.dumps(redacted_summary(cfg, {
            "produced": 0, "delivered": 0, "undelivered": 0, "source": source.state.summary(),
            "transport": args.transport, "seconds": round(time.perf_counter() - started, 3),
            "transport_state": state.to_dict()})).decode())
        return 1
    try:
        with open_store(cfg) as store:
            sent = run_producer(source, sink, stop, store=store, max_messages=args.max_messages, max_speed=args.max)
    finally:
        if timer is not None:
            timer.cancel()
        sink.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    elapsed = time.perf_counter() - started
    summary: dict[str, Any] = {"produced": sent, "source": source.state.summary(), "transport": args.transport,
                               "seconds": round(elapsed, 3)}
    status = 1 if source.state.stopped else 0
    if hasattr(sink, "summary"):  # Kafka: the delivery reports, and the broker's state
        report = sink.summary()
        summary.update(delivered=report["delivered"], undelivered=report["undelivered"],
                       transport_state=report["state"])
        if report["undelivered"]:
            why = report["state"]["last_error"] or "no delivery report before the final flush ended"
            log.error("%d of %d messages not delivered to Kafka (%s)", report["undelivered"], sent, why)
            print(f"mass produce: {report['undelivered']} of {sent} messages not delivered to Kafka ({why})",
                  file=sys.stderr)
            status = 1
    _print_summary(json_bytes(redacted_summary(cfg, summary)).decode())
    return status


def cmd_simulate(args: argparse.Namespace) -> int:
    from mass_tui.logs import setup_logging
    from mass_tui.ui.launch import live_app

    cfg = _config(args)
    setup_logging(cfg.made_dir("logs.dir"), stdout_events=False, secrets=cfg.secret_values())
    return _run_app(*live_app(cfg, source=f"simulator:{args.scenario}", transport=args.transport,
                              max_speed=args.max))


def _run_app(app: Any, cleanup: Any) -> int:
    try:
        app.run()
    finally:
        cleanup()
        stats = os.environ.get("MASS_UI_STATS")
        if stats:  # for bench/ui_cost.py: ingest-to-screen latency, message-weighted
            lat = sorted((s, n) for s, n in app.latencies)
            total = sum(n for _, n in lat)

            def pct(q: float) -> float | None:
                acc = 0
                for s, n in lat:
                    acc += n
                    if acc >= q * total:
                        return s
                return None

            snap = getattr(app, "snapshot", None)
            Path(stats).write_text(orjson.dumps({"p50": pct(0.5), "p99": pct(0.99), "messages": total,
                                                 "key_shown": getattr(app, "key_shown", []),
                                                 "episodes": len(snap.episodes) if snap is not None else 0,
                                                 }).decode())
    return 0


def cmd_alert(args: argparse.Namespace) -> int:
    from detectors.base import Anomaly
    from mass_tui.alerts.manager import AlertEvent
    from mass_tui.alerts.service import build_channels

    cfg = _config(args)
    channels = build_channels(cfg)
    if not channels:
        print("mass alert test: no channel configured (SMTP_HOST + ALERT_EMAIL_TO, SMS_*, SLACK_WEBHOOK_URL, "
              "ALERT_WEBHOOK_URL, CLOUDEVENTS_URL, or [alerts] exec_command)", file=sys.stderr)
        return 2
    now = time.time()
    anomaly = Anomaly(now, "mass-test", "gust_mps", 16.2, "gust_limit", "warning", 1.08,
                      "test alert: gust 16.2 m/s over the 15 m/s limit")
    event = AlertEvent("alert", now, "mass-test", "test", anomaly, now, 1, "m/s")
    failed = 0
    for ch in channels:
        try:
            ch.send(event)
            print(f"{ch.name}: sent")
        except Exception as exc:  # noqa: BLE001 - report every channel's failure, then go on
            failed += 1
            print(f"{ch.name}: FAILED: {type(exc).__name__}: {exc}")
    return 1 if failed else 0


def cmd_default(args: argparse.Namespace) -> int:
    """`mass` with no command: the UI on the bundled Sandy recording, the storm passing in about a minute."""
    from importlib import resources  # 20 ms of start-up, for this command only

    demo = resources.files("mass_tui") / "demo" / DEMO_FILE
    with resources.as_file(demo) as path:
        ns = argparse.Namespace(
            **{name: getattr(args, name, None) for name in COMMON}, file=path, max=False,
            speed=DEMO_SPEED, station=DEMO_STATION, headless=False, quiet=False, alerts=False,
            from_=checks.time_flag(DEMO_FROM),
            format="auto", na=None, tz=None,
        )
        return cmd_replay(ns)


COMMANDS = {"config": cmd_config, "score": cmd_score, "replay": cmd_replay, "run": cmd_run, "produce": cmd_produce,
            "alert": cmd_alert, "simulate": cmd_simulate, **cli_history.COMMANDS}


# sysexits.h EX_CONFIG: systemd's RestartPreventExitStatus=78 stops a restart loop on a bad configuration.
EX_CONFIG = 78


class StopEvent(threading.Event):
    """A stop asked for by a signal: `signum` is the first signal that set it (None: not a signal)."""

    signum: int | None = None

    def on_signal(self, signum: int, _frame: Any = None) -> None:
        """A signal handler: remember the signal (the first one), then set."""
        if self.signum is None:
            self.signum = signum
        self.set()

    def clear(self) -> None:
        self.signum = None
        super().clear()

    def exit_status(self) -> int:
        """128 + the signal's number, the shell's convention for a command a signal ended: 130 for
        SIGINT (Ctrl-C), 143 for SIGTERM; 130 when no signal was recorded."""
        return 128 + (self.signum if self.signum is not None else signal.SIGINT)


# Set by SIGTERM/SIGINT in the headless commands from the first thing main() does: a signal while the
# modules load or the configuration is read still ends in a clean stop and a summary.
STOP = StopEvent()


def _headless(argv: list[str]) -> bool:
    """Whether argv runs a command without the UI (where SIGINT/SIGTERM are ours to handle, not Textual's)."""
    from mass_tui.argv import command as command_of
    from mass_tui.argv import given

    command = command_of(argv)
    return command == "produce" or (command in ("run", "replay") and given(argv, "--headless"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    previous = {}
    STOP.clear()
    if _headless(argv) and threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, STOP.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C where no handler was installed (the UI's start, a one-shot command)
        print("mass: interrupted", file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv: list[str]) -> int:
    args = _with_options_before(build_parser().parse_args(argv))
    handler = COMMANDS.get(args.command, cmd_default)
    if args.command == "alert" and getattr(args, "alert_command", None) != "test":
        handler = COMMANDS[f"alert {args.alert_command}"]
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"mass: configuration error: {safe_text(exc)}", file=sys.stderr)
        return EX_CONFIG
    except OSError as exc:  # a disk that is full or read-only, a file that cannot be opened: one line
        import logging

        if logging.getLogger().handlers:  # the log file's, with the traceback; before logging is set up,
            logging.getLogger("mass").error("%s", exc, exc_info=True)  # Python's last resort prints it
        print(f"mass: {safe_text(exc)}", file=sys.stderr)
        return 1
    except DataDirBusy as exc:
        print(f"mass: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a recording found unreadable while it is read (past the sniffing): one line
        from sources.formats.opener import RecordingError

        if not isinstance(exc, RecordingError):
            raise
        print(f"mass {args.command}: {safe_text(exc)}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        from mass_tui.sinks.offload import WriterDied

        if not isinstance(exc, WriterDied):
            raise
        import logging

        logging.getLogger("mass").error("%s", exc, exc_info=True)
        print(f"mass: {safe_text(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
