"""Detection quality on every suite, the NAB v1.1 score included; optionally beside an older build.

    python bench/quality.py                          # every suite
    python bench/quality.py --suites nab,weather     # some of them
    python bench/quality.py --baseline-ref 50f2da0   # the same suites on that commit too, same run

Suites (see the README's "Detection quality"):

- corpus:    a varied synthetic corpus in the NAB layout (smooth, spiky, count, weekly, square-wave,
             random-walk and quantized series; spikes, shifts, drifts, bursts, flatlines, lost
             rhythm, dropouts, spike storms; NAB windows): NAB score and event precision/recall.
- synthetic: the older synthetic suite (daily cycle, wander, AR noise; spikes, shifts, drifts,
             bursts), hourly and 5-minute: event precision/recall/F1 and delay.
- nab:       the two NAB files we have (held in: checked at the end of a design round only).
- building:  the simulated building as `mass run --source simulator --max --max-messages 100000`
             scores it: alarm episodes per (room, variable), precision, recall, false episodes per
             room-day, delay.
- smoke:     the smoke-sensor simulator: fires caught, delay, false episodes per sensor-day.
- storms:    the Sandy buoy recording: gust and pressure-fall anomalies in both storms, and the
             statistical episodes.
- weather:   a typical year of ordinary hourly weather (Miami TMY2): false statistical alarm
             episodes per station-day (episode: anomalies of one station and variable less than
             60 min apart; the pressure-tendency and gust rules not counted).

An alarm of the calibrated build is an announced reading (an episode's onset or escalation);
of an older build, a reading with anomaly_score >= 0.5.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(os.environ.get("MASS_BENCH_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

from detectors.evaluation import EventScore, NabFile, episodes, event_score, nab_score, nab_windows  # noqa: E402
from detectors.zscore import RollingZScore  # noqa: E402
from sources.synthetic_series import KINDS, make_corpus_series, make_series  # noqa: E402

LEGACY = False  # set by --legacy: the build under test has no SeriesModel (anomaly_score >= 0.5 alarms)
SHARED = Path(__file__).resolve().parents[1] / "tests" / "data"
DAY = 86400.0


# --- scorers: (times, values) -> (anomaly_score per row, alarm rows) ----------------------------------------

def model_scores(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from detectors.ensemble import Ensemble, EnsembleParams

    if LEGACY:
        score = Ensemble(EnsembleParams()).anomaly_score(x, t)
        return score, np.flatnonzero(score >= 0.5)
    from detectors.series import SeriesModel

    p = EnsembleParams()
    model = SeriesModel(Ensemble(p), p.alarm_rarity, p.episode_quiet, p.level_window, p.learning_hours * 3600.0)
    score = model.step(x, t)
    return score, np.flatnonzero(model.detail["flags"] > 0)


def zscore_scores(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from detectors.ensemble import to_unit_score

    score = to_unit_score(RollingZScore(window=48, z=3.0).step(x))
    return score, np.flatnonzero(score >= 0.5)


SCORERS = {"ensemble": model_scores, "zscore w=48": zscore_scores}


# --- series suites ------------------------------------------------------------------------------------------

def corpus(seeds: range) -> list:
    return [make_corpus_series(s) for s in seeds]


def nab_files() -> list:
    from detectors.evaluation import nab_windows as _  # noqa: F401

    labels = json.loads((SHARED / "sensors" / "nab_labels.json").read_text())
    out = []
    for path in sorted((SHARED / "sensors").glob("nab_*.csv")):
        rows = list(csv.DictReader(path.open()))
        stamps = [r["timestamp"] for r in rows]
        where = {s: i for i, s in enumerate(stamps)}
        t = np.array([datetime.fromisoformat(s).timestamp() for s in stamps])
        x = np.array([float(r["value"]) for r in rows])
        wins = [(where[a[:19]], where[b[:19]]) for a, b in labels["files"][path.name]["anomaly_windows"]]
        out.append((path.stem, t, x, wins))
    return out


def series_suite(cases: list, scorer) -> dict:
    """cases: (name, t, x, windows as row ranges). NAB score, event metrics (row units), alarms per 1000 rows."""
    files = []
    total = EventScore(0, 0, 0, 0, [])
    rows = 0
    for name, t, x, windows in cases:
        score, alarms = scorer(t, x)
        files.append(NabFile(name, score, windows))
        total = total + event_score(alarms.astype(float), windows, gap=12)
        rows += x.size
    nab = nab_score(files)
    return {"nab": round(nab.score, 1), "nab_threshold": round(nab.threshold, 3),
            "nab_detected": f"{nab.detected}/{nab.windows}", "nab_fp_rows": nab.false_positives,
            **_events(total), "alarms_per_1000": round(1000 * total.episodes / max(rows, 1), 2)}


def _events(s: EventScore) -> dict:
    return {"recall": round(s.recall, 3), "precision": round(s.precision, 3), "f1": round(s.f1, 3),
            "events": s.events, "episodes": s.episodes, "false_episodes": s.false_episodes,
            "delay_median": round(float(np.median(s.delays)), 1) if s.delays else None}


def corpus_cases(seeds: range) -> list:
    out = []
    for c in corpus(seeds):
        out.append((c.name, c.t, c.x, nab_windows(c.x.size, c.anomalies)))
    return out


def synthetic_cases(seeds: range, step_seconds: float, kinds=KINDS) -> list:
    cases = []
    for seed in seeds:
        n = int(90 * DAY / step_seconds) if step_seconds >= 3600 else int(20 * DAY / step_seconds)
        t, x, events = make_series(seed, n=n, step_seconds=step_seconds, kinds=kinds)
        cases.append((f"synthetic-{seed}", t, x, [(e.start, e.end) for e in events]))
    return cases


# --- engine suites: what `mass run` / `mass replay` store ---------------------------------------------------

def _engine():
    from mass_tui.config import load_config
    from mass_tui.engine import Engine

    empty = Path(tempfile.mkdtemp()) / "mass.toml"
    empty.write_text("")
    return Engine(load_config(empty, env={}, dotenv_file=None))


def _record(a) -> dict:
    return {"ts": a.ts, "station": a.station, "variable": a.variable, "detector": a.detector,
            "severity": a.severity, "score": a.score}


def run_simulator(scenario: str, messages: int, days: float) -> tuple[list[dict], list, float, int]:
    from sources.simulator import Simulator

    step = 300.0 if scenario == "building" else 10.0
    sim = Simulator(scenario, seed=7, step_seconds=step, interval=0.0, days=days)
    engine = _engine()
    found: list[dict] = []
    sent = 0
    while sent < messages:
        raws = []
        for _ in range(200):
            raws.extend(sim.poll().messages)
        raws = raws[: messages - sent]
        sent += len(raws)
        found.extend(_record(a) for a in engine.ingest(raws).anomalies)
    span = sim.now() - sim.start
    return found, sim.labels, span, len(sim.stations)


def _episodes_by_series(found: list[dict], skip: tuple[str, ...] = ()) -> dict:
    by: dict[tuple[str, str], list[float]] = {}
    for a in found:
        if a["detector"].split("/")[0] in skip:
            continue
        by.setdefault((a["station"], a["variable"]), []).append(a["ts"])
    return by


def building_suite() -> dict:
    # As `mass run --source simulator`: faults planned over the simulator's default 7 days, run for 14.5.
    found, labels, span, rooms = run_simulator("building", 100_000, 7.0)
    room_days = rooms * span / DAY
    total = EventScore(0, 0, 0, 0, [])
    by = _episodes_by_series(found)
    keys = set(by) | {(lb.station, lb.variable) for lb in labels}
    for key in keys:
        events = [(lb.start, lb.end) for lb in labels if (lb.station, lb.variable) == key]
        total = total + event_score(np.array(by.get(key, [])), events, gap=3600.0)
    out = _events(total)
    out["false_per_room_day"] = round(total.false_episodes / room_days, 3)
    out["anomalies"] = len(found)
    if out["delay_median"] is not None:
        out["delay_median"] = f"{out['delay_median'] / 60:.0f} min"
    kinds: dict[str, list[int]] = {}
    for lb in labels:
        hit = any(lb.start <= t <= lb.end for t in by.get((lb.station, lb.variable), []))
        kinds.setdefault(lb.kind, [0, 0])[0] += hit
        kinds[lb.kind][1] += 1
    out["recall_by_kind"] = {k: f"{a}/{b}" for k, (a, b) in sorted(kinds.items())}
    false_by: dict[str, int] = {}
    for (station, variable), times in by.items():
        for s, e in episodes(np.array(times), 3600.0):
            if not any(lb.station == station and lb.variable == variable and s <= lb.end and e >= lb.start
                       for lb in labels):
                det = next(a["detector"] for a in found if a["station"] == station and a["variable"] == variable
                           and a["ts"] == s)
                false_by[f"{variable} {det}"] = false_by.get(f"{variable} {det}", 0) + 1
    out["false_by"] = dict(sorted(false_by.items(), key=lambda kv: -kv[1]))
    return out


def smoke_suite() -> dict:
    days = 4.0
    found, labels, span, sensors = run_simulator("smoke", int(days * 86400 / 10) * 4, days)
    caught, delays = 0, []
    for lb in labels:
        hits = [a["ts"] for a in found if a["station"] == lb.station and a["detector"] in ("fire", "bands")
                and lb.start <= a["ts"] <= lb.end]
        if hits:
            caught += 1
            delays.append(min(hits) - lb.start)
    false = 0
    for (station, _var), times in _episodes_by_series(found).items():
        for s, e in episodes(np.array(times), 3600.0):
            # a fire's aftermath (cooling, air clearing) counts with it for an hour
            if not any(lb.station == station and s <= lb.end + 3600 and e >= lb.start for lb in labels):
                false += 1
    return {"fires": len(labels), "caught": caught,
            "delay_median": f"{np.median(delays) / 60:.1f} min" if delays else None,
            "false_episodes": false, "false_per_sensor_day": round(false / (sensors * span / DAY), 3),
            "anomalies": len(found)}


def replay_anomalies(path: Path, station: str | None = None) -> list[dict]:
    from mass_tui.replay import replay_file

    engine = _engine()
    found: list[dict] = []
    replay_file(engine, path, speed=None, station=station,
                on_batch=lambda result: found.extend(_record(a) for a in result.anomalies))
    return found


def storm_suite() -> dict:
    found = replay_anomalies(SHARED / "weather" / "ndbc44005_gulf_of_maine_2012-10_sandy.csv")

    def within(det: str, a: str, b: str) -> int:
        lo, hi = datetime.fromisoformat(a).timestamp(), datetime.fromisoformat(b).timestamp()
        return sum(1 for f in found if f["detector"].startswith(det) and lo <= f["ts"] <= hi)

    stat = _episodes_by_series([f for f in found if not f["detector"].startswith(("gust", "pressure"))])
    count = sum(len(episodes(np.array(v), 3600.0))
                   for v in stat.values())
    return {"sandy_gusts": within("gust_limit", "2012-10-29T10:00+00:00", "2012-10-30T06:00+00:00"),
            "athena_gusts": within("gust_limit", "2012-11-07T12:00+00:00", "2012-11-08T18:00+00:00"),
            "athena_pressure_fall": within("pressure_tendency", "2012-11-07T12:00+00:00", "2012-11-08T18:00+00:00"),
            "statistical_episodes": count, "days": 32}


def weather_suite() -> dict:
    path = SHARED / "weather" / "tmy2_miami_typical_year_hourly.csv"
    found = replay_anomalies(path)
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    days = (datetime.fromisoformat(rows[-1]["time_utc"].replace("Z", "+00:00")).timestamp()
            - datetime.fromisoformat(rows[0]["time_utc"].replace("Z", "+00:00")).timestamp()) / DAY
    by = _episodes_by_series(found, skip=("pressure_tendency", "gust_limit"))
    per_var = {f"{k[1]}": len(episodes(np.array(v), 3600.0)) for k, v in sorted(by.items())}
    total = sum(per_var.values())
    return {"episodes": total, "days": round(days, 1), "per_station_day": round(total / days, 3),
            "by_variable": per_var, "by_detector": _count_by(found, skip=("pressure_tendency", "gust_limit"))}


def _count_by(found: list[dict], skip: tuple[str, ...] = ()) -> dict:
    out: dict[str, int] = {}
    for f in found:
        if f["detector"].split("/")[0] not in skip:
            out[f["detector"]] = out.get(f["detector"], 0) + 1
    return dict(sorted(out.items()))


def run(suites: list[str], seeds: int) -> dict:
    results: dict = {}
    for suite in suites:
        started = time.perf_counter()
        if suite == "corpus":
            cases = corpus_cases(range(seeds * 3))
            results[suite] = {name: series_suite(cases, f) for name, f in SCORERS.items()}
        elif suite == "synthetic":
            results[suite] = {}
            for label, cases in (("hourly", synthetic_cases(range(seeds), 3600.0)),
                                 ("5-min", synthetic_cases(range(1000, 1000 + seeds // 2), 300.0))):
                for name, f in SCORERS.items():
                    results[suite][f"{label} {name}"] = series_suite(cases, f)
        elif suite == "nab":
            results[suite] = {name: series_suite(nab_files(), f) for name, f in SCORERS.items()}
        elif suite == "building":
            results[suite] = building_suite()
        elif suite == "smoke":
            results[suite] = smoke_suite()
        elif suite == "storms":
            results[suite] = storm_suite()
        elif suite == "weather":
            results[suite] = weather_suite()
        else:
            raise SystemExit(f"unknown suite {suite!r}")
        results[suite]["seconds"] = round(time.perf_counter() - started, 1)
    return results


def baseline(ref: str, suites: list[str], seeds: int) -> dict:
    """The same suites on an older commit (its detectors, engine and sources), in a subprocess."""
    tmp = Path(tempfile.mkdtemp(prefix="mass-baseline-"))
    try:
        archive = subprocess.run(["git", "archive", ref, "detectors", "mass_tui", "sources"], cwd=ROOT,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        # the measuring code is this build's: scoring rules and data generators, no detection
        shutil.copy(ROOT / "detectors" / "evaluation.py", tmp / "detectors" / "evaluation.py")
        shutil.copy(ROOT / "sources" / "synthetic_series.py", tmp / "sources" / "synthetic_series.py")
        env = {**os.environ, "MASS_BENCH_ROOT": str(tmp)}
        out = subprocess.run([sys.executable, __file__, "--legacy", "--json", "--suites", ",".join(suites),
                              "--seeds", str(seeds)], env=env, cwd=tmp, check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    global LEGACY
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suites", default="corpus,synthetic,nab,building,smoke,storms,weather")
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--baseline-ref", help="also run the suites on this git commit, in the same run")
    ap.add_argument("--legacy", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="one JSON line instead of tables")
    args = ap.parse_args()
    LEGACY = args.legacy
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    results = {"now": run(suites, args.seeds)}
    if args.baseline_ref:
        results[args.baseline_ref] = baseline(args.baseline_ref, suites, args.seeds)
    if args.json:
        print(json.dumps(results["now"] if args.legacy else results))
        return
    for build, res in results.items():
        print(f"== {build}")
        for suite, r in res.items():
            print(f"-- {suite}")
            for key, value in r.items():
                print(f"   {key}: {value}")


if __name__ == "__main__":
    main()
