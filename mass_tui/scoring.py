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
from sources.formats.csv_table import sniff_separator
from sources.formats.opener import RecordingError, open_text
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
    kept); a timestamp is carried through as written. The input is read as
    spreadsheets write it (`sources.formats`): a byte-order mark, UTF-16 or
    Windows-1252, CRLF, gzip; `,` `;` or tab separated, with decimal commas
    (`12,5`) when the separator is `;`. Raises ScoreInputError for a file
    without the two columns or that is no text at all.
    """
    try:
        fh = open_text(src)
    except RecordingError as exc:
        raise ScoreInputError(str(exc)) from None
    with fh:
        lines = (line for line in fh if line.strip())
        first = next(lines, None)
        if first is None:
            raise ScoreInputError(f"{src}: empty file, expected a header timestamp,value")
        sep = sniff_separator(first)
        header = next(csv.reader([first], delimiter=sep))
        names = [h.strip().lstrip("\ufeff").lower() for h in header]
        if "timestamp" not in names or "value" not in names:
            raise ScoreInputError(f"{src}: header {header!r}, expected columns timestamp and value")
        ti, vi = names.index("timestamp"), names.index("value")
        rows = [row for row in csv.reader(lines, delimiter=sep) if row]
    comma = sep == ";"
    stamps = [row[ti] if ti < len(row) else "" for row in rows]
    values = np.array([_number(row[vi], comma) if vi < len(row) else math.nan for row in rows])
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


def _number(cell: str, decimal_comma: bool = False) -> float:
    try:
        v = float(cell.replace(",", ".") if decimal_comma else cell)
    except ValueError:
        return math.nan
    return v if math.isfinite(v) else math.nan


def _seconds(stamp: str) -> float:
    try:
        return parse_time(stamp)
    except InvalidMessage:
        return math.nan
