from __future__ import annotations

import numpy as np

from mass_tui.config import load_config
from mass_tui.engine import Engine
from sources.batch import ObservationBatch
from sources.labels import kind_of_source, station_labels
from sources.schema import Observation


def test_kind_comes_from_a_tag_then_the_configured_station_then_the_source():
    assert station_labels("s", "simulator:smoke", {"kind": "weather"})["kind"] == "weather"
    assert station_labels("s", "simulator:smoke", None, "building")["kind"] == "building"
    assert station_labels("s", "simulator:smoke")["kind"] == "smoke"
    assert "kind" not in station_labels("s", "replay:desert.csv")
    assert kind_of_source("open-meteo") == "weather"
    assert kind_of_source("replay:x.csv") is None


def test_tags_cannot_pose_as_the_station_or_its_source():
    labels = station_labels("real", "kafka", {"station": "fake", "source": "fake", "floor": "2"})
    assert labels == {"station": "real", "source": "kafka", "floor": "2"}


def test_the_engine_keeps_each_stations_labels(tmp_path):
    cfg = load_config(config_file=None, env={}, dotenv_file=None, overrides={"data.dir": str(tmp_path)})
    engine = Engine(cfg)
    obs = [Observation(0.0, "smoke-1", "simulator:smoke", {"temp_c": 21.0}, tags={"floor": "1"}),
           Observation(0.0, "boston", "open-meteo", {"temp_c": 5.0})]
    engine.process_batch(ObservationBatch.from_observations(obs))
    assert engine.labels["smoke-1"] == {"floor": "1", "kind": "smoke", "station": "smoke-1",
                                        "source": "simulator:smoke"}
    assert engine.labels["boston"]["kind"] == "weather"
    assert np.isfinite(engine.counters.first_ts)
