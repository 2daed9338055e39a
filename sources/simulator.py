"""Simulated sensors: a smart-building scenario and a smoke-sensor scenario.

Seeded and deterministic: the same seed gives the same messages, step by
step. Anomalies are injected at planned times and written out as labels
(station, variable, kind, start, end), so detection can be scored against
them. `max_speed=True` runs on simulated time as fast as it can be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from sources.base import Poll, SourceState
from sources.schema import iso_utc

START = 1736121600.0  # 2025-01-06T00:00Z, a Monday
ROOMS = {"office": 12, "meeting": 8}


@dataclass(frozen=True)
class Label:
    station: str
    variable: str
    kind: str
    start: float
    end: float

    def to_record(self) -> dict[str, Any]:
        return {"station": self.station, "variable": self.variable, "kind": self.kind,
                "start": iso_utc(self.start), "end": iso_utc(self.end), "source": "simulator"}


class Simulator:
    """Both scenarios share this: stations, a clock, planned anomalies, one message per station per step."""

    name = "simulator"

    def __init__(self, scenario: str = "building", seed: int = 7, step_seconds: float = 60.0,
                 start: float | None = None, interval: float = 1.0, days: float = 7.0) -> None:
        if scenario not in ("building", "smoke"):
            raise ValueError(f"scenario = {scenario!r}: expected building or smoke")
        self.scenario = scenario
        self.step_seconds = step_seconds
        self.interval = interval
        self.start = START if start is None else start
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.state = SourceState(self.name, up=True)
        if scenario == "building":
            self.stations = [(f"b{b}-f{f}-{room}", {"building": f"b{b}", "floor": str(f), "room": room})
                             for b in (1, 2, 3) for f in (1, 2, 3, 4) for room in ROOMS]
            self.capacity = np.array([ROOMS[tags["room"]] for _, tags in self.stations], dtype=float)
        else:
            self.stations = [(f"smoke-{i}", {"building": "b1", "floor": str(i), "room": "corridor"})
                             for i in range(1, 5)]
        n = len(self.stations)
        self.co2 = np.full(n, 450.0)
        self.labels = self._plan(days)

    def _plan(self, days: float) -> list[Label]:
        """Anomalies at seeded times: about one per station-day in the building, a fire a day in smoke."""
        labels: list[Label] = []
        total = days * 86400.0
        kinds = (("hvac_failure", "temp_c", 7200), ("ventilation_failure", "co2_ppm", 5400),
                 ("energy_spike", "energy_kwh", 1800), ("stuck_sensor", "humidity_pct", 10800),
                 ("humidity_spike", "humidity_pct", 600))
        if self.scenario == "building":
            for _ in range(int(len(self.stations) * days / 3)):
                kind, variable, length = kinds[int(self.rng.integers(len(kinds)))]
                station = self.stations[int(self.rng.integers(len(self.stations)))][0]
                begin = self.start + 86400.0 + float(self.rng.uniform(0, max(1.0, total - 2 * 86400.0)))
                labels.append(Label(station, variable, kind, begin, begin + length))
        else:
            for day in range(1, int(days)):
                station = self.stations[int(self.rng.integers(len(self.stations)))][0]
                begin = self.start + day * 86400.0 + float(self.rng.uniform(3600, 80000))
                labels.append(Label(station, "fire", "fire", begin, begin + 1800.0))
        return sorted(labels, key=lambda lb: lb.start)

    def now(self) -> float:
        return self.start + self.step * self.step_seconds

    def poll(self) -> Poll:
        t = self.now()
        rows = self._building(t) if self.scenario == "building" else self._smoke(t)
        self.step += 1
        out = Poll()
        for (station, tags), values in zip(self.stations, rows, strict=True):
            message = {"ts": iso_utc(t), "station": station, "source": f"simulator:{self.scenario}", "tags": tags}
            # Two decimals, but energy per step is a small number (0.02 kWh a minute): keep it to 5.
            message.update({k: round(v, 5 if k == "energy_kwh" else 2) for k, v in values.items()})
            out.add(orjson.dumps(message), station)
        return out

    def next_delay(self) -> float:
        return self.interval

    def _active(self, t: float, station: str) -> dict[str, float]:
        """kind -> progress in [0, 1] of the anomalies under way at t on this station."""
        return {lb.kind: (t - lb.start) / (lb.end - lb.start) for lb in self.labels
                if lb.station == station and lb.start <= t < lb.end}

    def _building(self, t: float) -> list[dict[str, float]]:
        n = len(self.stations)
        hour = (t % 86400.0) / 3600.0
        weekday = int((t - START) // 86400.0) % 7 < 5
        busy = weekday and 8.0 <= hour < 18.0
        load = np.clip(np.sin(np.pi * (hour - 8.0) / 10.0), 0, 1) if busy else 0.0
        occupancy = self.rng.poisson(self.capacity * 0.7 * load).astype(float)
        outdoor = -2.0 + 5.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
        temp = 21.0 + 0.08 * occupancy + 0.05 * outdoor + self.rng.normal(0, 0.15, n)
        humidity = 38.0 + 0.4 * occupancy + self.rng.normal(0, 0.8, n)
        self.co2 += 0.3 * ((420.0 + 45.0 * occupancy) - self.co2)  # the room air lags the people
        co2 = self.co2 + self.rng.normal(0, 10.0, n)
        power_kw = 0.4 + 0.05 * occupancy + (0.6 if busy else 0.1) + self.rng.normal(0, 0.03, n)
        energy = power_kw * self.step_seconds / 3600.0
        rows = []
        for i, (station, _tags) in enumerate(self.stations):
            row = {"temp_c": float(temp[i]), "humidity_pct": float(np.clip(humidity[i], 5, 95)),
                   "co2_ppm": float(co2[i]), "occupancy": float(occupancy[i]), "energy_kwh": float(max(energy[i], 0))}
            for kind, p in self._active(t, station).items():
                if kind == "hvac_failure":
                    row["temp_c"] += 6.0 * p
                elif kind == "ventilation_failure":
                    row["co2_ppm"] += 2000.0 * min(1.0, 3 * p)
                elif kind == "energy_spike":
                    row["energy_kwh"] *= 4.0
                elif kind == "stuck_sensor":
                    row["humidity_pct"] = 41.3
                elif kind == "humidity_spike":
                    row["humidity_pct"] = min(100.0, row["humidity_pct"] + 30.0)
            rows.append(row)
        return rows

    def _smoke(self, t: float) -> list[dict[str, float]]:
        n = len(self.stations)
        base = {
            "temp_c": 22.0 + self.rng.normal(0, 0.3, n),
            "humidity_pct": 48.0 + self.rng.normal(0, 1.5, n),
            "tvoc_ppb": np.abs(150.0 + self.rng.normal(0, 25.0, n)),
            "eco2_ppm": np.abs(450.0 + self.rng.normal(0, 20.0, n)),
            "pm25_ugm3": np.abs(8.0 + self.rng.normal(0, 2.0, n)),
        }
        rows = []
        for i, (station, _tags) in enumerate(self.stations):
            row = {k: float(v[i]) for k, v in base.items()}
            row["fire_alarm"] = 0.0
            p = self._active(t, station).get("fire")
            if p is not None:
                grow = min(1.0, 4 * p)
                row["temp_c"] += 35.0 * grow
                row["humidity_pct"] = max(5.0, row["humidity_pct"] - 30.0 * grow)
                row["tvoc_ppb"] += 4000.0 * grow
                row["eco2_ppm"] += 3000.0 * grow
                row["pm25_ugm3"] += 250.0 * grow
                row["fire_alarm"] = 1.0 if grow > 0.5 else 0.0
            rows.append(row)
        return rows
