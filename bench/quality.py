"""Detection quality: event precision/recall of the ensemble and of a plain z-score.

    python bench/quality.py [--shared tests/data]

Scores synthetic series with labelled spikes, shifts, drifts and variance
bursts (hourly and 5-minute), the two labelled NAB sensor files and the
pressure of the Sandy buoy recording. An alarm is anomaly_score >= 0.5 (a
detector at its threshold). Recall counts labelled events with at least one
alarm inside their window; precision counts alarm episodes (alarms merged
when closer than 3 points) that overlap a labelled window.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.ensemble import Ensemble, EnsembleParams, to_unit_score  # noqa: E402
from detectors.zscore import RollingZScore  # noqa: E402
from sources.simulator import Simulator  # noqa: E402
from sources.synthetic_series import KINDS, event_scores, make_series  # noqa: E402

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def ensemble_scorer(**overrides: float) -> Scorer:
    def score(t: np.ndarray, x: np.ndarray) -> np.ndarray:
        return Ensemble(EnsembleParams(**overrides)).anomaly_score(x, t)

    return score


def zscore_scorer(window: int = 48, z: float = 3.0) -> Scorer:
    def score(t: np.ndarray, x: np.ndarray) -> np.ndarray:
        return to_unit_score(RollingZScore(window=window, z=z).step(x, t))

    return score


def _time_index(times: list[str], stamp: str) -> int:
    return int(np.searchsorted(np.array(times), stamp))


def nab_cases(shared: Path) -> list[tuple[str, np.ndarray, np.ndarray, list[tuple[int, int]]]]:
    labels = json.loads((shared / "sensors" / "nab_labels.json").read_text())
    cases = []
    for path in sorted((shared / "sensors").glob("nab_*.csv")):
        rows = list(csv.DictReader(path.open()))
        stamps = [r["timestamp"] for r in rows]
        x = np.array([float(r["value"]) for r in rows])
        t = np.array([datetime.fromisoformat(s).timestamp() for s in stamps])
        wins = labels["files"][path.name]["anomaly_windows"]
        windows = [(_time_index(stamps, a[:19]), _time_index(stamps, b[:19])) for a, b in wins]
        cases.append((path.stem, t, x, windows))
    return cases


def sandy_case(shared: Path) -> tuple[str, np.ndarray, np.ndarray, list[tuple[int, int]]]:
    path = shared / "weather" / "ndbc44005_gulf_of_maine_2012-10_sandy.csv"
    rows = [r for r in csv.DictReader(path.open()) if r["pressure_msl_hpa"]]
    stamps = [r["time_utc"] for r in rows]
    t = np.array([datetime.fromisoformat(s).timestamp() for s in stamps])
    x = np.array([float(r["pressure_msl_hpa"]) for r in rows])
    windows = [
        (_time_index(stamps, "2012-10-29T10:00"), _time_index(stamps, "2012-10-30T06:00")),
        (_time_index(stamps, "2012-11-07T12:00"), _time_index(stamps, "2012-11-08T18:00")),
    ]
    return "sandy pressure_msl", t, x, windows


def evaluate(scorer: Scorer, cases) -> dict[str, float]:
    totals = np.zeros(4)
    for _name, t, x, windows in cases:
        alarm = scorer(t, x) >= 0.5
        totals += event_scores(alarm, windows)
    det, n_ev, true, n_eps = totals
    recall = det / n_ev if n_ev else float("nan")
    precision = true / n_eps if n_eps else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"recall": recall, "precision": precision, "f1": f1, "events": n_ev, "alarms": n_eps}


def synthetic_cases(seeds: range, step_seconds: float, kinds=KINDS):
    cases = []
    for seed in seeds:
        n = int(90 * 86400 / step_seconds) if step_seconds >= 3600 else int(20 * 86400 / step_seconds)
        t, x, events = make_series(seed, n=n, step_seconds=step_seconds, kinds=kinds)
        cases.append((f"synthetic-{seed}", t, x, [(e.start, e.end) for e in events]))
    return cases


def building_cases(seed: int = 7, days: float = 14.0, step_seconds: float = 300.0):
    """Every station of the simulated building, for each variable with labelled faults:
    CO2 and energy step up every working morning, which a detector must not call an anomaly."""
    sim = Simulator("building", seed=seed, step_seconds=step_seconds, days=days)
    variables = sorted({lb.variable for lb in sim.labels})
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(int(days * 86400 / step_seconds)):
        for raw in sim.poll().messages:
            msg = json.loads(raw)
            t = datetime.fromisoformat(msg["ts"].replace("Z", "+00:00")).timestamp()
            for var in variables:
                series.setdefault((msg["station"], var), []).append((t, msg[var]))
    cases = []
    for (station, var), points in sorted(series.items()):
        t = np.array([p[0] for p in points])
        x = np.array([p[1] for p in points])
        windows = [(int(np.searchsorted(t, lb.start)), int(np.searchsorted(t, lb.end)))
                   for lb in sim.labels if lb.station == station and lb.variable == var]
        cases.append((f"{station}/{var}", t, x, windows))
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "data")
    ap.add_argument("--seeds", type=int, default=40)
    args = ap.parse_args()

    suites = {
        "synthetic hourly": synthetic_cases(range(args.seeds), 3600.0),
        "synthetic 5-min": synthetic_cases(range(1000, 1000 + args.seeds // 2), 300.0),
    }
    for kind in KINDS:
        suites[f"  only {kind} (hourly)"] = synthetic_cases(range(500, 500 + args.seeds // 2), 3600.0, (kind,))
    if args.shared.exists():
        suites["NAB sensors (2 files)"] = nab_cases(args.shared)
        suites["Sandy buoy pressure"] = [sandy_case(args.shared)]
    suites["simulated building (14 d)"] = building_cases()

    scorers = {"ensemble": ensemble_scorer(), "zscore w=48 z=3": zscore_scorer()}
    print(f"{'suite':28s} {'detector':18s} {'recall':>7s} {'precision':>9s} {'F1':>6s} {'events':>6s} {'alarms':>6s}")
    for suite, cases in suites.items():
        for name, scorer in scorers.items():
            r = evaluate(scorer, cases)
            print(
                f"{suite:28s} {name:18s} {r['recall']:7.2f} {r['precision']:9.2f} {r['f1']:6.2f} "
                f"{int(r['events']):6d} {int(r['alarms']):6d}"
            )


if __name__ == "__main__":
    main()
