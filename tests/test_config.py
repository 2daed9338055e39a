from __future__ import annotations

import tomllib

import pytest

from mass_tui.config import DEFAULTS, ConfigError, load_config
from mass_tui.engine import build_bank

from .conftest import ROOT


def test_repository_mass_toml_restates_the_builtin_defaults():
    assert tomllib.loads((ROOT / "mass.toml").read_text()) == DEFAULTS


def test_precedence_defaults_file_dotenv_environment_flags(tmp_path):
    toml = tmp_path / "m.toml"
    toml.write_text("[detectors]\nz = 2.5\nwindow_points = 30\ncusum_h = 4.0\n")
    dotenv = tmp_path / ".env"
    dotenv.write_text("Z_THRESHOLD=2.0\nWINDOW_POINTS=20\nOPENWEATHER_API_KEY=abcdef1234567890\n")
    cfg = load_config(toml, env={"Z_THRESHOLD": "1.5"}, dotenv_file=dotenv, overrides={"detectors.z": 4.0})
    assert cfg.get("detectors.z") == 4.0  # flag beats environment
    assert cfg.get("detectors.window_points") == 20  # .env beats file
    assert cfg.get("detectors.cusum_h") == 4.0  # file beats default
    assert cfg.get("detectors.ewma_L") == 3.0  # default
    cfg = load_config(toml, env={"Z_THRESHOLD": "1.5"}, dotenv_file=dotenv)
    assert cfg.get("detectors.z") == 1.5  # environment beats .env


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"Z_THRESHOLD": "abc"}, ["detectors.z", "'abc'", "Z_THRESHOLD", "positive number"]),
        ({"WINDOW_POINTS": "2.5"}, ["detectors.window_points", "'2.5'", "integer"]),
        ({"POLL_SECONDS": "0"}, ["source.poll_seconds", "'0'", "[1, 86400]"]),
        ({"ALERTS_ENABLED": "maybe"}, ["alerts.enabled", "'maybe'", "true or false"]),
        ({"WEATHER_PROVIDER": "bbc"}, ["source.provider", "'bbc'", "open-meteo"]),
        ({"LOCATION_LAT": "95", "LOCATION_LON": "0"}, ["LOCATION_LAT", "'95'", "latitude"]),
    ],
)
def test_bad_values_name_key_value_and_expectation(env, words):
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env, dotenv_file=None)
    for word in words:
        assert word in str(info.value)


def test_bad_toml_key_and_rule_table_are_reported(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[detectors]\nzz = 3\n")
    with pytest.raises(ConfigError, match=r"detectors.zz .*unknown setting"):
        load_config(bad, env={}, dotenv_file=None)
    bands = tmp_path / "bands.toml"
    bands.write_text('[rules.bands.co2_ppm]\ndirection = "above"\nlevels = [2000, 1000]\n')
    with pytest.raises(ConfigError, match=r"rules.bands.co2_ppm"):
        build_bank(load_config(bands, env={}, dotenv_file=None))


def test_location_env_gives_one_station_and_secrets_are_masked():
    cfg = load_config(None, env={"LOCATION_LAT": "51.5", "LOCATION_LON": "-0.12",
                                 "SMTP_PASS": "hunter2-very-secret"}, dotenv_file=None)
    assert cfg.get("stations") == [{"name": "local", "lat": 51.5, "lon": -0.12}]
    shown = cfg.masked()
    assert "hunter2-very-secret" not in str(shown)
    assert shown["secrets"]["SMTP_PASS"] == "****"  # not even its first or last characters


def test_two_stations_with_one_name_are_refused(tmp_path):
    toml = tmp_path / "m.toml"
    toml.write_text('[[stations]]\nname = "harbour"\nlat = 1.0\nlon = 2.0\n'
                    '[[stations]]\nname = "hill"\nlat = 1.5\nlon = 2.0\n'
                    '[[stations]]\nname = "harbour"\nlat = 3.0\nlon = 4.0\n')
    with pytest.raises(ConfigError, match=r"stations\[2\]\.name = 'harbour' \(from .*m.toml\): "
                                          r"expected a name no other station has \(stations\[0\] has it\)"):
        load_config(toml, env={}, dotenv_file=None)


def test_a_data_dir_that_is_a_file_or_under_one_is_a_config_error_naming_it(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    for bad in (afile, afile / "sub"):
        with pytest.raises(ConfigError) as err:
            load_config(None, env={"MASS_DATA_DIR": str(bad)}, dotenv_file=None)
        assert f"data.dir = '{bad}'" in str(err.value) and "MASS_DATA_DIR" in str(err.value)
        assert "expected a directory path" in str(err.value)
    for fine in (tmp_path, tmp_path / "new" / "deeper"):  # a directory, or where one can be made
        assert load_config(None, env={"MASS_DATA_DIR": str(fine)}, dotenv_file=None).data_dir == fine


def test_a_data_dir_that_is_a_broken_link_is_refused_and_a_tilde_is_home(tmp_path, monkeypatch):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    for bad in ("dangling", "loop_a"):
        with pytest.raises(ConfigError, match="broken link"):
            load_config(None, env={"MASS_DATA_DIR": str(tmp_path / bad)}, dotenv_file=None)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_config(None, env={"MASS_DATA_DIR": "~/data"}, dotenv_file=None).data_dir == tmp_path / "data"


@pytest.mark.parametrize(("key", "env"), [("data.dir", "MASS_DATA_DIR"), ("logs.dir", "MASS_LOG_DIR")])
def test_a_directory_setting_refuses_a_file_and_the_home_of_no_user_and_expands_a_tilde(tmp_path, monkeypatch,
                                                                                        key, env):
    """Both directory settings are checked alike (a helper found logs.dir a file gave a traceback,
    and ~nosuchuser a RuntimeError traceback for either)."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    for bad in (str(afile), str(afile / "sub"), "~mass_no_such_user_here/x"):
        with pytest.raises(ConfigError) as err:
            load_config(None, env={env: bad}, dotenv_file=None)
        assert f"{key} = '{bad}'" in str(err.value) and env in str(err.value)
        assert "expected a directory path" in str(err.value)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(None, env={env: "~/here"}, dotenv_file=None)
    assert (cfg.data_dir if key == "data.dir" else cfg.logs_dir) == tmp_path / "here"
