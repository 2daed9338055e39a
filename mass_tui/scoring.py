"""`mass score`: a NAB-layout CSV (timestamp,value) in, the same rows with anomaly_score out.

The score is the one the engine stores: the detector's raw score calibrated
on the series' own history and discounted inside an announced episode
(`detectors.series.SeriesModel`), computed causally (row t uses rows <= t).
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from detectors.base import Detector
from detectors.cusum import Cusum
from detectors.ensemble import COMPONENTS, Ensemble, EnsembleParams
from detectors.ewma import EwmaChart
from detectors.series import SeriesModel
from detectors.zscore import RollingZScore
from sources.schema import InvalidMessage, parse_time

DETECTORS = ("ensemble", *COMPONENTS, "zscore", "ewma", "cusum")


def make_detector(name: str, params: EnsembleParams) -> SeriesModel:
    """The calibrated detector `mass score --detector NAME` uses: the ensemble, one of its views, or a
    plain rolling z-score, EWMA chart or CUSUM on the values."""
    raw: Detector
    if name == "ensemble":
        raw = Ensemble(params)
    elif name in COMPONENTS:
        raw = Ensemble(replace(params, views=(name,)))
    elif name == "zscore":
        raw = RollingZScore(window=params.window, z=params.z)
    elif name == "ewma":
        raw = EwmaChart(lam=params.lam, L=params.L, window=params.window)
    elif name == "cusum":
        raw = Cusum(k=params.k, h=params.h, window=params.window)
    else:
        raise ValueError(f"unknown detector {name!r}: expected one of {', '.join(DETECTORS)}")
    return SeriesModel(raw, params.alarm_rarity, params.episode_quiet, params.level_window,
                       params.learning_hours * 3600.0)


class ScoreInputError(ValueError):
    pass


def score_csv(src: Path, dst: Path, detector: str, params: EnsembleParams) -> dict[str, int]:
    """Write `timestamp,value,anomaly_score`, one row per input row, in order.

    A value that is empty or not a number gets an empty score (the row is
    kept); a timestamp is carried through as written.
    """
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would hide the header "timestamp".
    with src.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ScoreInputError(f"{src}: empty file, expected a header timestamp,value")
        names = [h.strip().lstrip("\ufeff").lower() for h in header]
        if "timestamp" not in names or "value" not in names:
            raise ScoreInputError(f"{src}: header {header!r}, expected columns timestamp and value")
        ti, vi = names.index("timestamp"), names.index("value")
        rows = [row for row in reader if row]
    stamps = [row[ti] if ti < len(row) else "" for row in rows]
    values = np.array([_number(row[vi]) if vi < len(row) else math.nan for row in rows])
    times = np.array([_seconds(s) for s in stamps])
    det = make_detector(detector, params)
    scores = det.step(values, times)
    with dst.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for row, stamp, score in zip(rows, stamps, scores.tolist(), strict=True):
            raw_value = row[vi] if vi < len(row) else ""
            writer.writerow([stamp, raw_value, "" if math.isnan(score) else f"{score:.6f}"])
    return {"rows": len(rows), "missing": int(np.isnan(values).sum())}


def _number(cell: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        return math.nan
    return v if math.isfinite(v) else math.nan


def _seconds(stamp: str) -> float:
    try:
        return parse_time(stamp)
    except InvalidMessage:
        return math.nan
