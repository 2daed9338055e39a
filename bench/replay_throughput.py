"""`mass replay FILE --headless --max` on realistic recordings, each against a bare parsing loop.

    python bench/replay_throughput.py [--n 200000] [--layouts seed,meteo,...] [--seed 1] [--keep DIR]
                                      [--sinks auto|inline|process|split] [--rerun]

Layouts (one file each, `--n` lines):

- seed     the seed device's JSONL: `ts_iso` with `Z`, `provider`, `lat`/`lon`, no station
           (the station is `provider@lat,lon`), 3 locations
- meteo    Open-Meteo-like lines: `time` with `+00:00`, `station`, `latitude`/`longitude`, `tags`,
           7 variables under registry names and aliases, 3 stations
- building what `mass simulate` (the building scenario) writes: ISO `Z` times, tags, 24 stations
- bad      `meteo` with 1 % bad lines of 12 kinds (not JSON, a list, no time, an unparseable or
           out-of-range time, no station, a list as tags, a value not a number, out of range,
           a -9999 marker, a latitude of 200, NaN)
- csv      a CSV export: ISO times, station, 6 variables; two baselines: `csv.reader` plus
           `float()` on every numeric cell, and (the issue's measure for every layout) a bare
           json.loads loop over the same rows written as JSON lines
- epoch    the former benchmark's layout: epoch-second times, 10 stations, 7 variables
- asos     an ASOS-style CSV (as ../shared/data/weather/asos_*): station first, hourly, 10 stations,
           the hour's precipitation an empty cell when none fell; the two baselines of `csv`
- ndbc     a buoy's CSV (as ../shared/data/weather/ndbc*): no station column, ten-minute readings of
           eight quantities; the two baselines of `csv`

The baseline (a bare `json.loads` loop over the file's lines, or the csv loop; the fastest of three)
and the replay run in the same run on the same file, taking turns: with `--runs N`, N rounds of
baseline then replay, and the fastest replay is set against the baseline of its own round, so
both meet the same minute of a shared machine. The ratio still differs between machines as their
second core does: the replay works in two processes, the loop in one, and the header says how many
cores' worth two busy processes got (`effective_cores`; 1.2-1.9 on one 2-vCPU VM, 2.0 on real cores).
The replay is timed two ways: wall clock of the whole
`mass replay` process (process start, imports, store creation included) and the replay's own
`seconds` from its summary (reading, decoding, scoring, storing). `--seed` gives another recording
of the same kinds (other stations, coordinates, key order, values, start time): a held-out file for
checking. `--rerun` replays each file once more into the data dir of its last run: every reading is
then a duplicate the check finds in the store (`mass_tui.stored_keys`), a user replaying a file twice.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _iso(t: float, suffix: str = "Z") -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + suffix


def _order(rng: np.random.Generator, keys: list[str], seed: int) -> list[str]:
    """The variables' key order: as written for seed 1, shuffled for a held-out seed."""
    return keys if seed == 1 else [keys[i] for i in rng.permutation(len(keys))]


def weather(rng: np.random.Generator, t: np.ndarray, phase: float) -> dict[str, np.ndarray]:
    """Smooth series as a station records them (a daily cycle, slow weather, sensor noise), so the
    detectors see what they see on real data: a few anomalies, not one per row."""
    day = np.sin(2 * np.pi * (t / 86400.0 + phase))
    slow = np.sin(2 * np.pi * t / (5 * 86400.0) + 7 * phase)
    wind = np.abs(4 + 2 * slow + rng.normal(0, 0.4, t.size))
    return {
        "temp_c": 10 + 5 * day + 3 * slow + rng.normal(0, 0.2, t.size),
        "humidity_pct": np.clip(70 - 15 * day + rng.normal(0, 1, t.size), 5, 100),
        "pressure_hpa": 1008 + 6 * slow + rng.normal(0, 0.1, t.size),
        "wind_mps": wind,
        "gust_mps": wind * 1.6 + np.abs(rng.normal(0, 0.5, t.size)),
        "precip_mm": np.where(rng.random(t.size) < 0.05, np.round(rng.exponential(0.5, t.size), 1), 0.0),
        "cloud_cover_pct": np.clip(50 + 40 * slow + rng.normal(0, 5, t.size), 0, 100),
        "pm25_ugm3": np.abs(9 + 3 * day + rng.normal(0, 0.5, t.size)),
    }


def _rows(rng: np.random.Generator, n: int, stations: int, start: int, step: int
          ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Times, station index and values for n rows: every station once per step."""
    t = start + (np.arange(n) // stations) * step
    which = np.arange(n) % stations
    values: dict[str, np.ndarray] = {}
    for k in range(stations):
        part = weather(rng, t[which == k].astype(float), k / stations)
        for name, col in part.items():
            values.setdefault(name, np.zeros(n))[which == k] = col
    return t, which, values


def seed_device(path: Path, n: int, rng: np.random.Generator, seed: int) -> None:
    places = [(round(float(rng.uniform(-60, 60)), 4), round(float(rng.uniform(-170, 170)), 4)) for _ in range(3)]
    start = 1735689600 + int(rng.integers(0, 86400 * 30)) // 900 * 900
    names = _order(rng, ["temp_c", "pressure_hpa", "humidity_pct", "wind_mps", "gust_mps"], seed)
    t, which, v = _rows(rng, n, 3, start, 900)
    with path.open("w") as fh:
        for i in range(n):
            lat, lon = places[which[i]]
            obj = {"ts_iso": _iso(int(t[i])), "provider": "open-meteo", "lat": lat, "lon": lon}
            obj.update((k, int(v[k][i]) if k == "humidity_pct" else round(float(v[k][i]), 1)) for k in names)
            fh.write(json.dumps(obj) + "\n")


METEO = {"temp_c": "temp_c", "humidity_pct": "humidity_pct", "pressure_msl": "pressure_hpa",
         "wind_speed_10m": "wind_mps", "gust_mps": "gust_mps", "precip_mm": "precip_mm",
         "cloud_cover": "cloud_cover_pct"}


def _meteo_setup(rng: np.random.Generator, n: int, seed: int) -> tuple[list[dict], list[str]]:
    """The Open-Meteo-like objects of a file, in order."""
    cities = ["berlin", "lagos", "lima", "osaka", "perth", "quito", "tromso"]
    stations = [(f"om-{cities[int(rng.integers(len(cities)))]}-{k}", round(float(rng.uniform(-60, 60)), 3),
                 round(float(rng.uniform(-170, 170)), 3)) for k in range(3)]
    start = 1704067200 + int(rng.integers(0, 86400 * 60)) // 3600 * 3600
    names = _order(rng, list(METEO), seed)
    t, which, v = _rows(rng, n, 3, start, 3600)
    objs = []
    for i in range(n):
        name, lat, lon = stations[which[i]]
        obj = {"time": _iso(int(t[i]), "+00:00"), "station": name, "latitude": lat, "longitude": lon,
               "tags": {"provider": "open-meteo", "model": "best_match"}}
        obj.update((k, int(v[METEO[k]][i]) if k in ("humidity_pct", "cloud_cover") else
                    round(float(v[METEO[k]][i]), 2)) for k in names)
        objs.append(obj)
    return objs, names


def open_meteo(path: Path, n: int, rng: np.random.Generator, seed: int) -> None:
    objs, _names = _meteo_setup(rng, n, seed)
    with path.open("w") as fh:
        for obj in objs:
            fh.write(json.dumps(obj) + "\n")


def _bad_line(kind: int, obj: dict) -> str:
    """One bad line of kind `kind` (of 12) made from a good object."""
    obj = dict(obj)
    if kind == 0:
        return json.dumps(obj)[:37]  # cut short: not JSON
    if kind == 1:
        return json.dumps(list(obj.values())[:3])  # a list, not an object
    if kind == 2:
        del obj["time"]
    elif kind == 3:
        obj["time"] = "yesterday"
    elif kind == 4:
        obj["time"] = "2250-01-01T00:00:00+00:00"
    elif kind == 5:
        del obj["station"]
    elif kind == 6:
        obj["tags"] = ["open-meteo"]
    elif kind == 7:
        obj["temp_c"] = "warm"  # a bad field: the rest of the line is kept
    elif kind == 8:
        obj["humidity_pct"] = 180
    elif kind == 9:
        obj["pressure_msl"] = -9999
    elif kind == 10:
        obj["latitude"] = 200.0
    else:
        return json.dumps(obj).replace(str(obj["gust_mps"]), "NaN", 1)
    return json.dumps(obj)


def bad_lines(path: Path, n: int, rng: np.random.Generator, seed: int) -> None:
    objs, _names = _meteo_setup(rng, n, seed)
    bad_at = set(rng.choice(n, size=n // 100, replace=False).tolist())
    with path.open("w") as fh:
        for i, obj in enumerate(objs):
            fh.write((_bad_line(int(rng.integers(12)), obj) if i in bad_at else json.dumps(obj)) + "\n")


def building(path: Path, n: int, rng: np.random.Generator, seed: int) -> None:
    sys.path.insert(0, str(ROOT))
    from sources.simulator import Simulator

    sim = Simulator("building", seed=seed, days=max(1.0, n / 24 * 60 / 86400 + 1))
    written = 0
    with path.open("wb") as fh:
        while written < n:
            for raw in sim.poll().messages:
                if written < n:
                    fh.write(raw + b"\n")
                    written += 1


def csv_export(path: Path, n: int, rng: np.random.Generator, seed: int) -> None:
    stations = [f"ws-{int(rng.integers(100, 999))}-{k}" for k in range(4)]
    start = 1704067200 + int(rng.integers(0, 86400 * 60)) // 600 * 600
    names = _order(rng, ["temp_c", "humidity_pct", "pressure_hpa", "wind_mps", "gust_mps", "precip_mm"], seed)
    t, which, v = _rows(rng, n, len(stations), start, 600)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["time", "station", *names])
        for i in range(n):
            out.writerow([_iso(int(t[i])), stations[which[i]], *(f"{v[k][i]:.1f}" for k in names)])


def asos_csv(path: Path, n: int, rng: np.random.Generator, seed: int) -> None:
    """An ASOS-style CSV as `../shared/data/weather/asos_*` is written: station first, hourly at :51,
    10 stations, two decimals, the hour's precipitation an empty cell when none fell."""
    stations = [f"K{''.join(chr(65 + int(c)) for c in rng.integers(0, 26, 3))}" for _ in range(10)]
    start = 1286000000 // 3600 * 3600 + 51 * 60 + int(rng.integers(0, 200)) * 86400
    per = -(-n // len(stations))
    t = start + np.arange(per) * 3600.0
    series = [weather(rng, t, k / len(stations)) for k in range(len(stations))]
    names = _order(rng, ["air_temp_c", "dewpoint_c", "wind_dir_deg", "wind_speed_ms", "pressure_msl_hpa",
                         "precip_1h_mm"], seed)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["station", "time_utc", *names])
        written = 0
        for i in range(per):
            for k, station in enumerate(stations):
                if written == n:
                    break
                v = series[k]
                cells = {"air_temp_c": f"{v['temp_c'][i]:.2f}", "dewpoint_c": f"{v['temp_c'][i] - 5:.2f}",
                         "wind_dir_deg": f"{(i * 7 + k * 30) % 360:.2f}", "wind_speed_ms": f"{v['wind_mps'][i]:.2f}",
                         "pressure_msl_hpa": f"{v['pressure_hpa'][i]:.2f}",
                         "precip_1h_mm": f"{v['precip_mm'][i]:.2f}" if v["precip_mm"][i] > 0 else ""}
                out.writerow([station, _iso(int(t[i])), *(cells[name] for name in names)])
                written += 1


def ndbc_csv(path: Path, n: int, rng: np.random.Generator, seed: int) -> None:
    """A buoy's CSV as `../shared/data/weather/ndbc*` is written: no station column (the station is the
    file's name), ten-minute readings of eight quantities, one decimal."""
    start = 1350262200 + int(rng.integers(0, 200)) * 86400
    t = start + np.arange(n) * 600.0
    v = weather(rng, t, float(rng.random()))
    names = _order(rng, ["wind_dir_deg", "wind_speed_ms", "wind_gust_ms", "wave_height_m", "pressure_msl_hpa",
                         "air_temp_c", "water_temp_c", "dewpoint_c"], seed)
    with path.open("w") as fh:
        fh.write(",".join(["time_utc", *names]) + "\n")
        for i in range(n):
            cells = {"wind_dir_deg": f"{(i * 3) % 360}", "wind_speed_ms": f"{v['wind_mps'][i]:.1f}",
                     "wind_gust_ms": f"{v['gust_mps'][i]:.1f}", "wave_height_m": f"{1 + 0.1 * v['wind_mps'][i]:.2f}",
                     "pressure_msl_hpa": f"{v['pressure_hpa'][i]:.1f}", "air_temp_c": f"{v['temp_c'][i]:.1f}",
                     "water_temp_c": "13.1", "dewpoint_c": f"{v['temp_c'][i] - 3:.1f}"}
            fh.write(",".join([_iso(int(t[i])), *(cells[name] for name in names)]) + "\n")


def epoch_layout(path: Path, n: int, rng: np.random.Generator, seed: int) -> None:
    stations = [f"st-{i}" for i in range(10)]
    start = 1704067200 + int(rng.integers(0, 86400 * 60)) // 60 * 60
    names = _order(rng, ["temp_c", "humidity_pct", "pressure_hpa", "wind_mps", "gust_mps", "pm25_ugm3"], seed)
    t, which, v = _rows(rng, n, 10, start, 60)
    with path.open("w") as fh:
        for i in range(n):
            obj = {"ts": int(t[i]), "station": stations[which[i]], "source": "bench"}
            obj.update((k, round(float(v[k][i]), 2)) for k in names)
            fh.write(json.dumps(obj) + "\n")


LAYOUTS: dict[str, tuple[Callable[[Path, int, np.random.Generator, int], None], str]] = {
    "seed": (seed_device, "jsonl"),
    "meteo": (open_meteo, "jsonl"),
    "building": (building, "jsonl"),
    "bad": (bad_lines, "jsonl"),
    "csv": (csv_export, "csv"),
    "epoch": (epoch_layout, "jsonl"),
    "asos": (asos_csv, "csv"),
    "ndbc": (ndbc_csv, "csv"),
}
_TEXT_COLUMNS = ("time", "time_utc", "station")  # the CSV columns that are not numbers


def bare_json(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with path.open("rb") as fh:
        count = 0
        for line in fh:
            try:  # noqa: SIM105 - contextlib.suppress would slow the baseline down
                json.loads(line)
            except ValueError:
                pass
            count += 1
    return time.perf_counter() - start, count


def bare_csv(path: Path) -> tuple[float, int]:
    """csv.reader plus float() on every cell after the time and station (the leading text columns),
    empty cells left out: the least a CSV reader does."""
    start = time.perf_counter()
    count = 0
    with path.open(newline="") as fh:
        rows = csv.reader(fh)
        skip = sum(name in _TEXT_COLUMNS for name in next(rows))
        for row in rows:
            [float(c) for c in row[skip:] if c]
            count += 1
    return time.perf_counter() - start, count


def csv_as_json_lines(path: Path) -> list[bytes]:
    """The CSV's rows as the JSON lines a JSONL export of them would hold (numbers as numbers): the
    issue's measure for every layout is a bare json.loads loop, so the CSV gets one over its rows too."""
    with path.open(newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows)
        return [json.dumps({k: c if k in _TEXT_COLUMNS else float(c) if c else None
                            for k, c in zip(header, r, strict=True)}).encode()
                for r in rows]


def bare_json_lines(lines: list[bytes]) -> tuple[float, int]:
    start = time.perf_counter()
    for line in lines:
        json.loads(line)
    return time.perf_counter() - start, len(lines)


def best(measure: Callable[[], tuple[float, int]], runs: int = 3) -> tuple[float, int]:
    """The fastest of `runs` timings: a busy moment slows a run down, nothing speeds one up."""
    return min((measure() for _ in range(runs)), key=lambda got: got[0])


_SPIN = ("import time\nt = time.perf_counter()\ns = 0\nfor i in range(6_000_000): s += i * i\n"
         "print(time.perf_counter() - t)")


def effective_cores(rounds: int = 5) -> float:
    """How many cores' worth of work two busy processes get done at once, against one alone (2.0 on
    two real cores; less where the two vCPUs share a core or a CPU quota). The replay runs a writer
    process and polars' threads beside the engine: on a machine that gives two processes 1.3 cores'
    worth, its ratio is lower than where the same code gets two, while the bare loop, one thread,
    runs as fast on both. Bounded: `rounds` of one loop alone then two at once (~0.5 s each)."""
    def spin(count: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, text=True)
                 for _ in range(count)]
        return max(float(p.communicate(timeout=60)[0]) for p in procs)

    # one alone then two at once, round after round: the median of the rounds' ratios, as the
    # machine's speed drifts within seconds
    return float(np.median([2 * spin(1) / spin(2) for _ in range(rounds)]))


def replay(path: Path, data_dir: Path, sinks: str = "auto") -> tuple[float, dict]:
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin"), "MASS_SINKS": sinks}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mass_tui", "replay", str(path), "--headless", "--max", "-q",
         "--data-dir", str(data_dir)],
        cwd=data_dir.parent, capture_output=True, text=True, check=True, env=env,
    )
    wall = time.perf_counter() - start
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000, help="lines per layout")
    ap.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated, of: " + ", ".join(LAYOUTS))
    ap.add_argument("--seed", type=int, default=1, help="another seed: another recording of the same kinds")
    ap.add_argument("--keep", type=Path, help="write the recordings here and keep them")
    ap.add_argument("--runs", type=int, default=1, help="replays per layout; the fastest is shown")
    ap.add_argument("--rerun", action="store_true",
                    help="also replay each file a second time into the data dir of its last run (every "
                         "reading a duplicate, looked up in the store) and print both walls")
    ap.add_argument("--sinks", default="auto", choices=("auto", "inline", "process", "split"),
                    help="where the store's sinks run (MASS_SINKS): auto (the default: writer processes from "
                         "8 MiB of input on two CPUs or more), inline, one writer process, or two (split)")
    args = ap.parse_args()
    names = [s.strip() for s in args.layouts.split(",") if s.strip()]
    unknown = [s for s in names if s not in LAYOUTS]
    if unknown:
        ap.error(f"unknown layouts: {', '.join(unknown)}")
    print(f"{args.n:,} lines per layout, seed {args.seed}, sinks {args.sinks}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, {effective_cores():.1f} cores' worth for two "
          "busy processes")
    print(f"{'layout':9} {'baseline':>20} {'replay wall':>12} {'in-process':>11} {'ratio wall':>10} "
          f"{'in-process':>10}  rows stored / quarantined")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            write, kind = LAYOUTS[name]
            path = folder / f"{name}-{args.seed}.{kind}"
            if not path.exists():
                write(path, args.n, np.random.default_rng(args.seed * 100 + len(name)), args.seed)
            baseline = functools.partial(bare_csv if kind == "csv" else bare_json, path)
            # the CSV's rows as JSON lines, against the json.loads loop (every layout's measure)
            as_json = functools.partial(bare_json_lines, csv_as_json_lines(path)) if kind == "csv" else None
            bares, json_bares, runs = [], [], []
            for _ in range(args.runs):  # taking turns: a slow minute slows both sides alike
                bares.append(best(baseline))
                if as_json is not None:
                    json_bares.append(best(as_json))
                with tempfile.TemporaryDirectory(dir=tmp) as run:
                    runs.append(replay(path, Path(run) / "d", args.sinks))
                    if args.rerun and len(runs) == args.runs:
                        again, summary = replay(path, Path(run) / "d", args.sinks)
                        rerun = (runs[-1][0], again, summary.get("duplicates", 0))
            # the fastest replay against the baseline of its own round: the machine's speed drifts
            # from minute to minute (json.loads alone went 130-220 k lines/s within the hour)
            fastest = min(range(len(runs)), key=lambda r: runs[r][0])
            (bare, lines), (wall, summary) = bares[fastest], runs[fastest]
            inside = summary.get("seconds") or math.nan
            stored, rejected = summary["observations"], summary["rejected"]
            assert stored + rejected + summary.get("duplicates", 0) == lines, (name, lines, summary)
            label = "csv+float" if kind == "csv" else "json.loads"
            print(f"{name:9} {label:>10} {lines / bare:9,.0f}/s {lines / wall:10,.0f}/s {lines / inside:9,.0f}/s "
                  f"{bare / wall:9.2f}x {bare / inside:9.2f}x  {stored:,} / {rejected:,} + "
                  f"{summary.get('fields_rejected', 0):,} fields", flush=True)
            if args.rerun:
                first, again, duplicates = rerun
                print(f"{'':9} {'rerun':>10} first {first:.2f} s, second {again:.2f} s into the same data dir "
                      f"({duplicates:,} duplicates)", flush=True)
            if json_bares:
                bare, lines = json_bares[fastest]
                print(f"{'':9} {'json.loads':>10} {lines / bare:9,.0f}/s {'':>12} {'':>11} "
                      f"{bare / wall:9.2f}x {bare / inside:9.2f}x  (its rows as JSON lines)", flush=True)


if __name__ == "__main__":
    main()
