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
import orjson

from detectors.base import Detector
from detectors.cusum import Cusum
from detectors.ensemble import COMPONENTS, Ensemble, EnsembleParams
from detectors.ewma import EwmaChart
from detectors.series import SeriesModel
from detectors.zscore import RollingZScore
from sources.fields import na_markers
from sources.formats.csv_table import sniff_separator
from sources.formats.opener import RecordingError, open_text
from sources.text import safe_text
from sources.times import TimeError, TimeSpan, parse_time
from sources.variables import REGISTRY

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


# The physical range of a value without a known variable: the registry's catch-all "value".
VALUE_RANGE = (REGISTRY["value"].low, REGISTRY["value"].high)


def score_csv(src: Path, dst: Path, detector: str, params: EnsembleParams, *, na: frozenset[str] | None = None,
              span: TimeSpan | None = None, rejected: Path | None = None) -> dict[str, object]:
    """Write `timestamp,value,anomaly_score`, one row per input row, in order.

    A value that is empty or a missing marker (`na`, default `inputs.na`'s)
    gets an empty score and the row is kept. A row whose timestamp is not a
    time or is outside `span` (`inputs.earliest`/`latest`), whose value is
    not a number or outside the physical range [-1e12, 1e12], or that has
    more or fewer cells than the header (`malformed_row`), is quarantined
    as replay quarantines it: kept in the output with an empty score, not
    shown to the detector (the others are scored as if it were not there),
    and written with its line number, raw text, `reason` and `code` to
    `rejected` (a JSON line each; the file is removed when nothing is
    rejected). A timestamp is carried through as written. The input is read
    as spreadsheets write it (`sources.formats`): a byte-order mark, UTF-16
    or Windows-1252, CRLF, gzip; `,` `;` or tab separated, with decimal
    commas (`12,5`) when the separator is `;`. Returns counts: rows,
    missing, quarantined and rejected_by_reason. Raises ScoreInputError for
    a file without the two columns or that is no text at all.
    """
    na = na_markers() if na is None else na
    span = span or TimeSpan()
    try:
        fh = open_text(src)
    except RecordingError as exc:
        raise ScoreInputError(str(exc)) from None
    try:
        with fh:
            numbered = ((n, line) for n, line in enumerate(fh, 1) if line.strip())
            first = next(numbered, None)
            if first is None:
                raise ScoreInputError(f"{src}: empty file, expected a header timestamp,value")
            sep = sniff_separator(first[1])
            header = next(csv.reader([first[1]], delimiter=sep))
            names = [h.strip().lstrip("\ufeff").lower() for h in header]
            if "timestamp" not in names or "value" not in names:
                raise ScoreInputError(f"{src}: header {safe_text(header, 120)}, expected columns timestamp and value")
            ti, vi = names.index("timestamp"), names.index("value")
            lines = [(n, line) for n, line in numbered]
            rows = [next(csv.reader([line], delimiter=sep), []) for _n, line in lines]
    except (UnicodeDecodeError, csv.Error) as exc:  # a text file with binary in it, a field past csv's limit
        raise ScoreInputError(f"{src}: not a readable CSV ({safe_text(exc, 120)}): expected text with a header "
                              "timestamp,value") from None
    comma = sep == ";"
    stamps = [row[ti] if ti < len(row) else "" for row in rows]
    values = np.full(len(rows), math.nan)
    times = np.full(len(rows), math.nan)
    bad: list[dict[str, object]] = []
    for j, row in enumerate(rows):
        why = _row_problem(row, ti, vi, comma, na, span, values, times, j) if len(row) == len(header) else \
            (f"CSV row has {len(row)} cells for {len(header)} columns", "malformed_row")  # as replay says it
        if why is not None:
            values[j] = math.nan  # quarantined: the detector does not see it
            n, line = lines[j]
            bad.append({"line": n, "raw": line.rstrip("\r\n")[:400], "reason": why[0], "code": why[1]})
    det = make_detector(detector, params)
    scores = det.step(values, times)
    with dst.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for row, stamp, score in zip(rows, stamps, scores.tolist(), strict=True):
            raw_value = row[vi] if vi < len(row) else ""
            writer.writerow([stamp, raw_value, "" if math.isnan(score) else f"{score:.6f}"])
    if rejected is not None:
        if bad:
            rejected.write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in bad))
        else:
            rejected.unlink(missing_ok=True)  # a file left by an earlier run would describe another input
    by_reason: dict[str, int] = {}
    for b in bad:
        by_reason[str(b["code"])] = by_reason.get(str(b["code"]), 0) + 1
    return {"rows": len(rows), "missing": int(np.isnan(values).sum()) - len(bad), "quarantined": len(bad),
            "rejected_by_reason": by_reason, "first_rejected": bad[0] if bad else None}


def _row_problem(row: list[str], ti: int, vi: int, comma: bool, na: frozenset[str], span: TimeSpan,
                 values: np.ndarray, times: np.ndarray, j: int) -> tuple[str, str] | None:
    """Fill values[j] and times[j] from the row; (reason, code) when the row must be quarantined."""
    stamp = row[ti].strip() if ti < len(row) else ""
    if not stamp:
        return "no timestamp", "missing_ts"
    try:
        times[j] = parse_time(stamp, span)
    except TimeError as exc:
        text = str(exc)
        return safe_text(text, 200), "ts_out_of_range" if "out of range" in text else "bad_ts"
    cell = row[vi].strip() if vi < len(row) else ""
    if cell.casefold() in na:
        return None  # missing: an empty score, as a gap
    try:
        v = float(cell.replace(",", ".") if comma else cell)
    except ValueError:
        return f"value={safe_text(cell, 40)!s} is not a number", "not_a_number"
    low, high = VALUE_RANGE
    if not low <= v <= high:
        return f"value={cell[:40]} outside the physical range [{low:g}, {high:g}]", "out_of_range"
    values[j] = v
    return None
