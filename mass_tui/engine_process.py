"""The engine beside the UI, in a worker process: it decodes, scores, stores and alerts; the UI draws.

In one interpreter the engine's thread and the UI's event loop take turns at
the GIL, and a key waits behind every turn the engine takes: hundreds of ms
under a flat-out ingest (`bench/ui_cost.py` measures it). Here the engine (a
replay, or the producer/consumer pipeline) runs in its own process, started
with the `spawn` method (a fresh interpreter: no inherited threads or locks,
and Textual is never imported there), and the UI gets compact updates:

    UI process                                  engine process
    EngineLink.stop/paused/... ── controls ───▶ control thread: pause, thresholds, transport, retry, stop
    reader thread ◀───────────── updates ────── sender thread ◀─ Outbox ◀─ UpdateSink ◀─ Engine
    LiveState.apply(update)                     replay or pipeline (main thread)

Both pipes are one-way `multiprocessing` pipes of pickled objects. Updates
(`mass_tui.live_update.Update`) go out at most every `SEND_INTERVAL` s and
coalesce while the UI reads slowly (the pipe's write blocks, the outbox
grows, bounded). Controls: `("pause", bool)`, `("thresholds", {"alarm_rarity", "critical_rarity"} or {"z", "h"})`,
`("transport", "file" | "kafka")`, `("retry", None)`, `("stop", None)`.
Acknowledgements and silences never cross: the UI writes them to the SQLite
alert store under the data dir, which the engine's alert service reads too
(each process opens it for itself; WAL lets both).

Ending:
- `q`: the UI sends stop; the engine ends the batch in hand, flushes and
  fsyncs the store (the transport position is committed only after), closes
  the alert service, sends the final update and exits. `EngineLink.close()`
  waits up to `CLOSE_SECONDS`, then sends SIGTERM (the same clean stop),
  then SIGKILL, always by the child's PID.
- The UI killed: the engine sees its controls pipe end (EOF) or its parent
  PID change (polled every `WATCH_SECONDS`), and stops the same clean way.
  SIGTERM and SIGHUP stop it cleanly too; SIGINT is ignored (the UI's own).
- The engine killed or crashed: the updates pipe ends without a final
  update; the UI shows the exit code or signal and the last line the engine
  wrote to `logs/engine.err` (its stderr) instead of waiting.
- The data dir lock is taken by the UI before the engine starts, so a second
  mass is refused at once, and its file descriptor is handed to the engine:
  the lock holds while either process lives.

`EngineLink(host="thread")` runs the same `serve()` in a thread of the UI's
process, through the same pipes: the tests and the benchmark's comparison
use it; only the process boundary differs.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from detectors.ensemble import EnsembleParams
from mass_tui.config import Config
from mass_tui.live_state import LiveState
from mass_tui.live_update import Outbox, Update
from sources.base import Poll, Source

log = logging.getLogger(__name__)

SEND_INTERVAL = 0.05  # s between updates at most 20 a second; the UI redraws at 4 Hz by default
CLOSE_SECONDS = 20.0  # for a clean stop (the batch in hand, fsync, alert deliveries get 5 s) before SIGTERM
WATCH_SECONDS = 0.5  # how often the engine checks that its parent (the UI) still lives
# Bounded time slices, for the thread host only (bench/ui_cost.py compares): the interpreter switches
# threads every millisecond instead of every 5, and a flat-out replay reads 256 KB at a time, not 1 MB.
SLICE_SWITCH_INTERVAL = 0.001
SLICE_BATCH_BYTES = 256 << 10
HOSTS = ("process", "thread")
# The engine process runs at a lower CPU priority than the UI (nice +10, MASS_ENGINE_NICE overrides): on a
# busy machine the scheduler then runs the UI first when a key wakes it; an idle core is the engine's all
# the same. With the thread host there is no such choice: one process, one priority.
ENGINE_NICE = 10


class EngineFailure(RuntimeError):
    """The engine stopped on an error or died; the message says how, in words for the screen."""


@dataclass
class ReplayJob:
    path: Path
    speed: float | None  # None: as fast as possible
    station: str | None = None
    fast_until: float | None = None  # the readings before this data time at full speed, then `speed`
    format: str = "auto"
    until: float | None = None  # stop before this data time (None: the whole file)


@dataclass
class LiveJob:
    source: str | None  # None: consume the transport only
    transport: str = "file"
    max_speed: bool = False


@dataclass
class EngineSpec:
    """What the engine side builds itself from; pickled to the spawned process."""

    config: Config
    replay: ReplayJob | None = None
    live: LiveJob | None = None
    capacity: int = 20_000  # chart rows per series the UI keeps (the outbox cuts to it)
    slices: bool = False  # bounded time slices (thread host)
    nice: int = ENGINE_NICE  # added to the engine process's nice value (process host)
    lock: InheritedFd | None = None  # the data dir lock, held by the engine process too


class InheritedFd:
    """A file descriptor the spawned process receives (as multiprocessing passes a pipe's)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Callable[..., InheritedFd], tuple[Any, ...]]:
        return _adopt_fd, (reduction.DupFd(self.fd),)


def _adopt_fd(dup: Any) -> InheritedFd:
    return InheritedFd(dup.detach())


# --- the engine side ---------------------------------------------------------------------------------
class PacedSource:
    """A source whose waits the UI can see and cut short.

    The producer loop waits `next_delay()` between polls; this wrapper asks it
    back every half second instead and polls the real source only when its
    time has come, or at once after `retry_now()` (the `r` key)."""

    TICK = 0.5

    def __init__(self, source: Source) -> None:
        self.source = source
        self.name = source.name
        self.state = source.state
        self.labels = getattr(source, "labels", None)
        self.due = 0.0  # wall time of the next real poll
        self._now = threading.Event()

    def poll(self) -> Poll:
        if time.time() < self.due and not self._now.is_set():
            return Poll()
        self._now.clear()
        try:
            return self.source.poll()
        finally:
            self.due = time.time() + self.source.next_delay()

    def next_delay(self) -> float:
        return max(0.0, min(self.TICK, self.due - time.time()))

    def retry_now(self) -> bool:
        """Poll at the next tick; False when the source is up (nothing to retry)."""
        if self.state.up is not False and not getattr(self.state, "stopped", False):
            return False
        self._now.set()
        return True


class EngineSide:
    """The engine, its store and alerts, and the replay or pipeline that feeds it, wired to an outbox."""

    def __init__(self, spec: EngineSpec, outbox: Outbox, stop: threading.Event, paused: threading.Event) -> None:
        from mass_tui.alerts.service import AlertService
        from mass_tui.engine import Engine
        from mass_tui.pipeline import Pipeline, make_source
        from mass_tui.service import open_store
        from mass_tui.sinks.configured import store_sinks
        from mass_tui.sinks.live import UpdateSink

        self.spec, self.outbox, self.stop, self.paused = spec, outbox, stop, paused
        config = spec.config
        self.store = open_store(config)
        try:
            live = spec.live is not None and spec.live.source is not None and not spec.live.max_speed
            self.alerts = AlertService.from_config(config, live=live) if config.get("alerts.enabled") else None
        except BaseException:
            self.store.close()
            raise
        self._sink_states: dict[str, str] = {}
        try:
            # The history sinks (aggregates; PostgreSQL when configured), their state to the status bar.
            sinks = store_sinks(config, self.store, on_status=self._sink_state)
        except BaseException:
            self.store.close()
            if self.alerts is not None:
                self.alerts.close(timeout=5.0)
            raise
        self.engine = Engine(config, self.store, self.alerts, sinks=sinks)
        daily = next((s for s in sinks if s.name == "aggregates"), None)
        self.updates = UpdateSink(outbox, self.engine.labels, getattr(daily, "open_daily", None))
        self.engine.sinks.add(self.updates)  # last: what it sends includes the other sinks' work on the batch
        self.pipeline: Any = None
        self.paced: PacedSource | None = None
        self.source: Source | None = None
        if spec.live is not None:
            self.pipeline = Pipeline(config, self.engine, self.store, spec.live.transport)
            self.pipeline.stop, self.pipeline.paused = stop, paused
            if spec.live.source is not None:
                self.source = make_source(config, spec.live.source, max_speed=spec.live.max_speed)
                if not spec.live.max_speed:
                    self.paced = PacedSource(self.source)

    def run(self) -> None:
        """Until the replay ends or `stop` is set."""
        try:
            if self.spec.replay is not None:
                self._replay(self.spec.replay)
            else:
                self._live()
        finally:
            self.updates.send_open_daily(everything=True)

    def _sink_state(self, name: str, text: str) -> None:
        self._sink_states = {**self._sink_states, name: text}
        self.outbox.set_status(sinks=self._sink_states)

    def _replay(self, job: ReplayJob) -> None:
        from mass_tui.replay import UI_FLAT_OUT_BYTES, replay_file

        chunk = SLICE_BATCH_BYTES if self.spec.slices else UI_FLAT_OUT_BYTES
        # The UI starts showing data at once: it sorts a file whole only up to one chunk (1 MB, an NDBC
        # realtime file fits), bigger files chunk by chunk; headless replay sorts up to 64 MiB.
        common = {"station": job.station, "stop": self.stop, "paused": self.paused, "format": job.format,
                  "sort_bytes": UI_FLAT_OUT_BYTES}
        if job.fast_until is not None:
            # The lead-in at full speed, then the recorded pace: charts start with history.
            lead_in = job.fast_until if job.until is None else min(job.fast_until, job.until)
            replay_file(self.engine, job.path, speed=None, until=lead_in, chunk_bytes=chunk, **common)
            replay_file(self.engine, job.path, speed=job.speed, since=job.fast_until, until=job.until, **common)
        else:
            replay_file(self.engine, job.path, speed=job.speed, chunk_bytes=chunk, until=job.until, **common)
        self.store.flush()

    def _live(self) -> None:
        self.publish()
        self.engine.warm()
        if self.source is not None:
            producer = self.paced if self.paced is not None else self.source
            self.pipeline.start_producer(producer, max_speed=self.spec.live.max_speed)  # type: ignore[union-attr]
        self.pipeline.run(on_batch=lambda _result: self.publish(), on_idle=self.publish)
        self.publish()  # why it ended, when the store did it (a failed fsync: `Pipeline._store`)

    def publish(self) -> None:
        """The source's state, the transport's, the consumer lag and the next poll, for the status bar."""
        p = self.pipeline
        status: dict[str, Any] = {"transport_error": p.transport_status(), "transport": p.transport,
                                  "requested": p.requested}
        while p.notices:
            self.outbox.notice(p.notices.pop(0))
        if p.source is not None:
            status["source_state"] = p.source.state.to_dict()
        consumer = p.consumer
        if consumer is not None:
            lag = consumer.lag_bytes()
            status["lag"] = f"{lag / 1e6:.1f} MB" if p.transport == "file" else f"{lag} msgs"
        if self.paced is not None:
            status["next_poll"] = self.paced.due or None
        self.outbox.set_status(**status)

    def command(self, kind: str, body: Any) -> None:
        """One control from the UI (the control thread calls this)."""
        if kind == "pause":
            if body:
                self.paused.set()
            else:
                self.paused.clear()
            self.outbox.set_status(engine_paused=bool(body))
        elif kind == "thresholds":
            self.engine.request_thresholds(**body)
            self.outbox.set_status(thresholds=dict(body))
        elif kind == "transport" and self.pipeline is not None:
            self.pipeline.switch_transport(body)
        elif kind == "retry" and self.paced is not None:
            self.paced.retry_now()
        else:
            log.warning("engine: control %r ignored here", kind)

    def close(self) -> None:
        """Flush and fsync the store, then close it and the alert service (deliveries get 5 s)."""
        try:
            self.store.flush()
            self.engine.sync()
        finally:
            try:
                self.engine.sinks.close()
                self.store.close()
            finally:
                if self.alerts is not None:
                    self.alerts.close(timeout=5.0)


def serve(spec: EngineSpec, updates: Connection, controls: Connection, parent_pid: int | None = None) -> None:
    """The engine side's whole life: build, run, close, in the process (or thread) it was started in.

    `parent_pid` is given in a spawned process: the engine then also stops when that process is gone."""
    stop, paused = threading.Event(), threading.Event()
    if parent_pid is not None:
        _become_engine_process(spec.config, stop, parent_pid, spec.nice)
    elif spec.slices:
        sys.setswitchinterval(SLICE_SWITCH_INTERVAL)
    outbox = Outbox(spec.capacity)
    sender = threading.Thread(target=_send_updates, args=(outbox, updates, stop), name="mass-engine-sender",
                              daemon=True)
    sender.start()
    side: EngineSide | None = None
    error: str | None = None
    try:
        side = EngineSide(spec, outbox, stop, paused)
        outbox.set_status(engine={"pid": os.getpid(), "textual_loaded": "textual" in sys.modules})
        threading.Thread(target=_take_controls, args=(controls, side, stop, paused), name="mass-engine-controls",
                         daemon=True).start()
        side.run()
    except Exception as exc:  # noqa: BLE001 - the UI shows it instead of a dead screen
        log.exception("engine stopped")
        error = f"{type(exc).__name__}: {exc}"
    finally:
        outbox.finish(error)
        try:
            if side is not None:
                side.close()
        except Exception:  # noqa: BLE001 - logged; the final update still goes out
            log.exception("engine: closing the store failed")
        outbox.close()
        sender.join(CLOSE_SECONDS)
        updates.close()
        controls.close()
        if spec.lock is not None:
            os.close(spec.lock.fd)


def _send_updates(outbox: Outbox, conn: Connection, stop: threading.Event) -> None:
    while True:
        update = outbox.take(SEND_INTERVAL)
        if update is None:
            continue
        try:
            conn.send(update)
        except (BrokenPipeError, EOFError, OSError):  # the UI is gone
            outbox.abandon()
            stop.set()
            return
        except Exception:  # noqa: BLE001 - a bad update must not leave the UI waiting on a live engine
            log.exception("engine: an update could not be sent; stopping")
            outbox.abandon()
            stop.set()
            return
        if update.final:
            return


def _take_controls(conn: Connection, side: EngineSide, stop: threading.Event, paused: threading.Event) -> None:
    while True:
        try:
            kind, body = conn.recv()
        except Exception:  # noqa: BLE001 - EOF (the UI closed its end or died), or the pipe closed under us
            kind, body = "stop", None
        if kind == "stop":
            stop.set()
            paused.clear()
            return
        try:
            side.command(kind, body)
        except Exception:  # noqa: BLE001 - one bad control must not end the engine
            log.exception("engine: control %r failed", kind)


def _become_engine_process(config: Config, stop: threading.Event, parent_pid: int, nice: int) -> None:
    """Signals, a lower priority, a log of its own, stderr off the UI's terminal, a watch on the parent."""
    from mass_tui.logs import setup_logging

    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the process group; the UI decides
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    log_dir = config.logs_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    # The UI owns the terminal: whatever the engine prints (a crash's traceback) goes to a file.
    err = os.open(log_dir / "engine.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(err, 1)
    os.dup2(err, 2)
    os.close(err)
    os.close(null)
    faulthandler.enable()  # a fatal signal's stack, to engine.err
    setup_logging(log_dir, stdout_events=False, secrets=config.secret_values(), file_name="engine.log")
    threading.Thread(target=_watch_parent, args=(parent_pid, stop), name="mass-engine-watch", daemon=True).start()


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    while not stop.wait(WATCH_SECONDS):
        if os.getppid() != parent_pid:
            log.warning("engine: the UI (pid %d) is gone; stopping", parent_pid)
            stop.set()
            return


# --- the UI side -----------------------------------------------------------------------------------
class RemoteFlag(threading.Event):
    """An event the UI sets and clears as before, each change also sent to the engine as a control."""

    def __init__(self, send: Callable[[str, Any], None], command: str) -> None:
        super().__init__()
        self._send, self._command = send, command

    def set(self) -> None:
        super().set()
        self._send(self._command, True)

    def clear(self) -> None:
        was = self.is_set()
        super().clear()
        if was:
            self._send(self._command, False)


class EngineLink:
    """The UI's handle on the engine: starts it, applies its updates to `state`, sends the UI's controls.

    What the UI reads of the engine: `params` (the detectors' parameters, for the what-if and the
    episode view), `labels` (station labels, for silences), `alerts_enabled`, `db_dir` and
    `open_daily()` (the daily screen), and the status the engine sends (`state.status`: transport,
    source state, next poll, history sinks' state, `engine_error` once it died).
    """

    def __init__(self, spec: EngineSpec, state: LiveState, *, host: str = "process", lock: Any = None) -> None:
        from mass_tui.engine import build_bank

        if host not in HOSTS:
            raise ValueError(f"engine host {host!r}: expected one of {', '.join(HOSTS)}")
        self.params: EnsembleParams = build_bank(spec.config).params  # a bad rule raises ConfigError here
        self.alerts_enabled = bool(spec.config.get("alerts.enabled"))
        self.spec, self.state, self.host, self.lock = spec, state, host, lock
        self.thresholds: dict[str, float] = {}  # the last ones sent
        self.error: str | None = None
        self.done = threading.Event()  # the engine's run ended (or it died)
        self.closed = threading.Event()  # its final update came (or the pipe ended)
        self.process: Any = None
        self.thread: threading.Thread | None = None
        self._started = False
        self._send_lock = threading.Lock()
        ctx = multiprocessing.get_context("spawn")
        self._ctx = ctx
        self._updates, self._updates_child = ctx.Pipe(duplex=False)
        self._controls_child, self._controls = ctx.Pipe(duplex=False)
        self.paused = RemoteFlag(self._send, "pause")
        self.stop = RemoteFlag(self._send, "stop")

    @property
    def labels(self) -> dict[str, dict[str, str]]:
        return self.state.labels

    @property
    def db_dir(self) -> Path:
        """The store's directory (the daily screen reads the closed days there)."""
        return self.spec.config.db_dir

    def open_daily(self, station: str) -> list[dict[str, Any]]:
        """The station's days not closed yet (today so far), as the engine last sent them."""
        return self.state.days_open(station)

    @property
    def pid(self) -> int | None:
        """The engine process's PID (None with the thread host, or before it started)."""
        return self.process.pid if self.process is not None else None

    # --- life ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.host == "process":
            if self.lock is not None:
                self.spec.lock = InheritedFd(self.lock.fileno())
            self.process = self._ctx.Process(target=serve, name="mass-engine", daemon=True,
                                             args=(self.spec, self._updates_child, self._controls_child,
                                                   os.getpid()))
            self.process.start()
            self.spec.lock = None
            # Only the engine holds these ends now: when it dies, reads here see EOF, and its reads there.
            self._updates_child.close()
            self._controls_child.close()
        else:
            self.thread = threading.Thread(target=serve, name="mass-engine", daemon=True,
                                           args=(self.spec, self._updates_child, self._controls_child))
            self.thread.start()
        threading.Thread(target=self._read, name="mass-engine-updates", daemon=True).start()

    def run(self) -> None:
        """The UI's engine worker: returns when the engine's run ended (a replay's end) or on stop;
        raises `EngineFailure` when it failed or died first."""
        self.start()
        while not self.done.wait(0.2):
            if self.stop.is_set():
                return
        if self.error:
            raise EngineFailure(self.error)

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Stop the engine cleanly (it flushes and fsyncs its store), wait for it, then release the lock.

        Past `timeout` the process gets SIGTERM (the same clean stop), then SIGKILL."""
        try:
            if self._started:
                self.paused.clear()
                self.stop.set()
                self.closed.wait(timeout)
                if self.process is not None:
                    self.process.join(5.0)
                    if self.process.is_alive():
                        log.warning("engine process %d did not stop in %.0f s: SIGTERM", self.process.pid, timeout)
                        self.process.terminate()
                        self.process.join(10.0)
                    if self.process.is_alive():
                        log.error("engine process %d did not stop on SIGTERM: SIGKILL", self.process.pid)
                        self.process.kill()
                        self.process.join(5.0)
                if self.thread is not None:
                    self.thread.join(timeout)
        finally:
            for conn in (self._updates, self._controls, self._updates_child, self._controls_child):
                conn.close()
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    # --- the engine's updates ------------------------------------------------------------------
    def _read(self) -> None:
        final = False
        try:
            while True:
                update: Update = self._updates.recv()
                self.state.apply(update)
                if update.done:
                    self.error = update.error
                    self.done.set()
                if update.final:
                    final = True
                    return
        except (EOFError, OSError):
            pass
        except Exception:  # noqa: BLE001 - reported below as the engine's death, not a silent stop
            log.exception("the engine's updates could not be read")
        finally:
            if not final:
                self.error = self._death_words()
                log.error("%s", self.error)
                self.state.update_status(engine_error=self.error)
            self.done.set()
            self.closed.set()

    def _death_words(self) -> str:
        if self.process is None:
            return "engine thread ended without closing"
        self.process.join(2.0)
        code = self.process.exitcode
        if code is None:
            how = "stopped talking (still running)"
        elif code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        words = f"engine process {self.process.pid} {how}"
        last = _last_line(self.spec.config.logs_dir / "engine.err")
        return f"{words}; its last words: {last}" if last else words

    # --- controls ------------------------------------------------------------------------------
    def _send(self, kind: str, body: Any) -> None:
        # A closed pipe: the engine has ended, and there is nothing left to control.
        with self._send_lock, contextlib.suppress(BrokenPipeError, EOFError, OSError):
            self._controls.send((kind, body))

    def request_thresholds(self, **thresholds: float) -> None:
        """New alarm and critical rarities (or z / h) for the detectors; the engine applies them before its
        next batch, keeping state."""
        self.thresholds = dict(thresholds)
        self._send("thresholds", self.thresholds)

    def transport(self) -> str:
        live = self.spec.live
        return self.state.status.get("transport") or (live.transport if live else "memory")

    def switch_transport(self) -> str:
        """Ask for the other transport; returns it (the engine may refuse, and says why in a notice)."""
        current = self.state.status.get("requested") or self.transport()
        target = "kafka" if current == "file" else "file"
        self._send("transport", target)
        return target

    def retry(self) -> bool:
        """Poll a down source now; False when it is up (nothing to retry)."""
        source = self.state.status.get("source_state") or {}
        if source.get("up") is not False and not source.get("stopped"):
            return False
        self._send("retry", None)
        return True

    def next_poll(self) -> float | None:
        """Wall time of the source's next poll, as the engine last said."""
        return self.state.status.get("next_poll")


def _last_line(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - size))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""
