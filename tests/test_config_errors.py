"""Bad configurations, one kind per row: each ends in one line naming the key, where the value came
from, the value and what was expected, with exit status 78 (EX_CONFIG), from every command (`mass config` too),
and never a traceback. Table-driven: a new key's bad values are new rows."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.cli import EX_CONFIG, main
from mass_tui.config import SETTINGS, ConfigError, load_config

FILE = "m.toml"

# (id, TOML text, words the one line must hold besides the file name)
TOML_CASES = [
    ("window-1e11", "[detectors]\nwindow_points = 1e11\n", ["detectors.window_points", "[4, 10000]"]),
    ("max-mb-1e308", "[store]\nmax_mb = 1e308\n", ["store.max_mb", "1e+308", "(0, 1048576]"]),
    # two names of one window length: the same windows and daily summaries written twice
    ("windows-1d-24h", '[store]\naggregate_windows = ["1m", "1d", "24h"]\n',
     ["store.aggregate_windows", "'24h'", "each length once"]),
    ("level-window-1e7", "[detectors]\nlevel_window_points = 10000000\n", ["detectors.level_window_points",
                                                                          "10000000", "[4, 100000]"]),
    ("window-float", "[detectors]\nwindow_points = 2.5\n", ["detectors.window_points", "2.5", "integer"]),
    ("window-bool", "[detectors]\nwindow_points = true\n", ["detectors.window_points", "True", "integer"]),
    ("window-string", '[detectors]\nwindow_points = "many"\n', ["detectors.window_points", "'many'", "integer"]),
    ("z-negative", "[detectors]\nz = -1\n", ["detectors.z", "-1", "positive number"]),
    ("z-huge", "[detectors]\nz = 1e9\n", ["detectors.z", "1000000000.0", "up to 100"]),
    ("z-nan", "[detectors]\nz = nan\n", ["detectors.z", "nan", "positive number"]),
    ("z-inf", "[detectors]\nz = inf\n", ["detectors.z", "inf", "positive number"]),
    ("z-table", "[detectors.z]\nvalue = 3\n", ["detectors.z", "{'value': 3}", "positive number"]),
    ("ewma-lambda", "[detectors]\newma_lambda = 1.5\n", ["detectors.ewma_lambda", "1.5", "(0, 1]"]),
    ("forecast-lambda", "[detectors]\nforecast_lambda = 1\n", ["detectors.forecast_lambda", "1", "(0, 1)"]),
    ("burst-ratio", "[detectors]\nburst_ratio = 1\n", ["detectors.burst_ratio", "1", "(1, 1000]"]),
    ("cusum-k", "[detectors]\ncusum_k = -0.1\n", ["detectors.cusum_k", "-0.1", "[0, 100]"]),
    ("cusum-h", "[detectors]\ncusum_h = 0\n", ["detectors.cusum_h", "0", "positive"]),
    ("detectors-scalar", "detectors = 5\n", ["detectors = 5", "expected a table [detectors]"]),
    ("detectors-misspelt", "[detectors]\nzz = 3\n", ["detectors.zz", "unknown setting", "did you mean detectors.z"]),
    ("section-misspelt", "[sources]\nprovider = 'x'\n", ["sources", "unknown setting", "did you mean source"]),
    ("store-retention", "[store]\nretention_days = 0\n", ["store.retention_days", "0", "(0, 36500]"]),
    ("store-warm", "[store]\nwarm_hours = 1e6\n", ["store.warm_hours", "1000000.0", "[0, 8760]"]),
    ("poll-half", "[source]\npoll_seconds = 0.5\n", ["source.poll_seconds", "0.5", "[1, 86400]"]),
    ("provider", '[source]\nprovider = "bbc"\n', ["source.provider", "'bbc'", "open-meteo"]),
    ("api-base-ftp", '[source]\napi_base = "ftp://x"\n', ["source.api_base", "'ftp://x'", "http(s) URL"]),
    ("deadline-0", "[source]\nfetch_deadline_seconds = 0\n", ["source.fetch_deadline_seconds", "[1, 600]"]),
    ("body-cap", "[source]\nmax_body_mb = 1e6\n", ["source.max_body_mb", "1000000.0", "(0, 1024]"]),
    ("owm-units", '[source]\nowm_units = "kelvin"\n', ["source.owm_units", "'kelvin'", "imperial"]),
    ("kafka-topic-empty", '[kafka]\ntopic = ""\n', ["kafka.topic", "''", "topic name"]),
    ("kafka-topic-escape", '[kafka]\ntopic = "t\\u001b[31m"\n', ["kafka.topic", "\\x1b", "topic name"]),
    ("data-dir-number", "[data]\ndir = 5\n", ["data.dir", "5", "directory path"]),
    ("logs-dir-empty", '[logs]\ndir = ""\n', ["logs.dir", "''", "directory path"]),
    ("ui-rate", "[ui]\nrefresh_hz = 100\n", ["ui.refresh_hz", "100", "[0.2, 30]"]),
    ("smtp-port", "[alerts]\nsmtp_port = 70000\n", ["alerts.smtp_port", "70000", "TCP port"]),
    ("email-to", '[alerts]\nemail_to = ["nobody"]\n', ["alerts.email_to", "nobody", "email addresses"]),
    ("max-attempts", "[alerts]\nmax_attempts = 0\n", ["alerts.max_attempts", "0", "[1, 100]"]),
    ("alerts-enabled", '[alerts]\nenabled = "maybe"\n', ["alerts.enabled", "'maybe'", "true or false"]),
    ("cooldown", "[alerts]\ncooldown_min = -5\n", ["alerts.cooldown_min", "-5", "[0, 525600]"]),
    ("pt-hours", "[rules.pressure_tendency]\nhours = 1e9\n", ["rules.pressure_tendency.hours", "(0, 168]"]),
    ("gust-limit", "[rules.gust]\nlimit_mps = 0\n", ["rules.gust.limit_mps", "0", "(0, 150]"]),
    ("pt-variables-misspelt", '[rules.pressure_tendency]\nvariables = ["presure_hpa"]\n',
     ["rules.pressure_tendency.variables", "presure_hpa", "variable names"]),
    ("gust-variables-table", "[rules.gust.variables]\na = 1\n", ["rules.gust.variables", "variable names"]),
    ("rules-gust-scalar", "[rules]\ngust = 5\n", ["rules.gust = 5", "expected a table [rules.gust]"]),
    ("bands-scalar", "[rules]\nbands = 5\n", ["rules.bands = 5", "a table of variable"]),
    ("bands-variable-misspelt", '[rules.bands.temp_cc]\nlevels = [40.0]\n',
     ["rules.bands.temp_cc", "unknown variable 'temp_cc'", "did you mean temp_c"]),
    ("bands-entry-scalar", "[rules.bands]\ntemp_c = 40\n", ["rules.bands.temp_c = 40", "a table with"]),
    ("bands-levels-scalar", '[rules.bands.co2_ppm]\nlevels = 2000\n', ["rules.bands.co2_ppm.levels", "2000",
                                                                         "a list of 1 to 20 numbers"]),
    ("bands-levels-string", '[rules.bands.co2_ppm]\nlevels = [1000, "high"]\n',
     ["rules.bands.co2_ppm.levels", "'high'", "a number"]),
    ("bands-levels-empty", '[rules.bands.co2_ppm]\nlevels = []\n', ["rules.bands.co2_ppm.levels", "1 to 20"]),
    ("bands-severity", '[rules.bands.co2_ppm]\nlevels = [1000]\nseverities = ["severe"]\n',
     ["rules.bands.co2_ppm.severities", "'severe'", "info, warning, critical"]),
    ("bands-direction", '[rules.bands.co2_ppm]\nlevels = [1000]\ndirection = "up"\n',
     ["rules.bands.co2_ppm.direction", "'up'", "above, below"]),
    ("bands-order", '[rules.bands.co2_ppm]\nlevels = [2000, 1000]\n', ["rules.bands.co2_ppm", "strictly increasing"]),
    ("bands-lengths", '[rules.bands.co2_ppm]\nlevels = [1000, 2000]\nseverities = ["info"]\n',
     ["rules.bands.co2_ppm", "as many severities as levels"]),
    ("bands-unknown-key", '[rules.bands.co2_ppm]\nlevels = [1000]\nlevel = 3\n',
     ["rules.bands.co2_ppm.level", "unknown key", "did you mean levels"]),
    ("rapid-string", '[rules.rapid_change]\ntemp_c = "fast"\n', ["rules.rapid_change.temp_c", "'fast'", "a table"]),
    ("rapid-negative", '[rules.rapid_change.temp_c]\nmax_change = -1\n',
     ["rules.rapid_change.temp_c.max_change", "-1", "(0, 1e+06]"]),
    ("rapid-missing", '[rules.rapid_change.temp_c]\nper_minutes = 30\n',
     ["rules.rapid_change.temp_c.max_change", "missing"]),
    ("rapid-misspelt-key", '[rules.rapid_change.temp_c]\nmax_change = 5\nper_minute = 30\n',
     ["rules.rapid_change.temp_c.per_minute", "unknown key", "did you mean per_minutes"]),
    ("rapid-variable", '[rules.rapid_change.humidity]\nmax_change = 5\n',
     ["rules.rapid_change.humidity", "unknown variable", "did you mean humidity_pct"]),
    ("composite-k0", '[rules.composite.fire]\nk = 0\nindicators = ["temp_c >= 45"]\n',
     ["rules.composite.fire.k", "0", "integer in [1, 64]"]),
    ("composite-k-over", '[rules.composite.fire]\nk = 3\nindicators = ["temp_c >= 45"]\n',
     ["rules.composite.fire", "k in [1, 1]"]),
    ("composite-variable", '[rules.composite.fire]\nk = 1\nindicators = ["tmp_c >= 45"]\n',
     ["rules.composite.fire.indicators", "tmp_c", "did you mean temp_c"]),
    ("composite-operator", '[rules.composite.fire]\nk = 1\nindicators = ["temp_c > 45"]\n',
     ["rules.composite.fire.indicators", "temp_c > 45", "variable >= number"]),
    ("composite-level", '[rules.composite.fire]\nk = 1\nindicators = ["temp_c >= hot"]\n',
     ["rules.composite.fire.indicators", "'hot' is not a number"]),
    ("composite-severity", '[rules.composite.fire]\nk = 1\nindicators = ["temp_c >= 45"]\nseverity = "fatal"\n',
     ["rules.composite.fire.severity", "'fatal'", "info, warning, critical"]),
    ("composite-stale", '[rules.composite.fire]\nk = 1\nindicators = ["temp_c >= 45"]\nstale_seconds = 0\n',
     ["rules.composite.fire.stale_seconds", "0", "seconds"]),
    ("composite-indicators-scalar", '[rules.composite.fire]\nk = 1\nindicators = "temp_c >= 45"\n',
     ["rules.composite.fire.indicators", "a list of 1 to 64 indicators"]),
    ("alert-rules-table", '[alerts.rules]\nname = "x"\n', ["alerts.rules", "a list of [[alerts.rules]] tables"]),
    ("alert-rule-detector", '[[alerts.rules]]\nname = "g"\ndetectors = ["gust_limt"]\n',
     ["alerts.rules[0].detectors", "gust_limt", "did you mean gust_limit"]),
    ("alert-rule-severity", '[[alerts.rules]]\nname = "g"\ndetectors = ["gust_limit"]\nmin_severity = "high"\n',
     ["alerts.rules[0].min_severity", "'high'", "info, warning or critical"]),
    ("alert-rule-no-detectors", '[[alerts.rules]]\nname = "g"\n', ["alerts.rules[0]", "expected name, detectors"]),
    ("alert-rule-duration", '[[alerts.rules]]\nname = "g"\ndetectors = ["gust_limit"]\nfor = "forever"\n',
     ["alerts.rules[0]", "'forever'", "a duration"]),
    ("mute-times-scalar", "[alerts]\nmute_times = 5\n", ["alerts.mute_times = 5", "[[alerts.mute_times]]"]),
    ("mute-time-weekday", '[[alerts.mute_times]]\nname = "night"\nweekdays = ["funday"]\n',
     ["alerts.mute_times[0].weekdays[0]", "'funday'", "monday"]),
    ("inhibit-scalar", '[alerts]\ninhibit_rules = "none"\n', ["alerts.inhibit_rules", "'none'", "list"]),
    ("alert-rule-variables", '[[alerts.rules]]\nname = "g"\ndetectors = ["gust_limit"]\nvariables = ["wind"]\n',
     ["alerts.rules[0].variables", "'wind'", "variable"]),
    ("alert-rule-key", '[[alerts.rules]]\nname = "g"\ndetector = ["gust_limit"]\n',
     ["alerts.rules[0].detector", "unknown key", "detectors"]),
    ("stations-string", 'stations = "boston"\n', ["stations", "'boston'", "a list of [[stations]] tables"]),
    ("station-no-name", "[[stations]]\nlat = 1.0\nlon = 2.0\n", ["stations[0].name", "missing"]),
    ("station-lat", '[[stations]]\nname = "a"\nlat = 95.0\nlon = 0.0\n', ["stations[0].lat", "95.0", "[-90, 90]"]),
    ("station-lon", '[[stations]]\nname = "a"\nlat = 0.0\nlon = "west"\n',
     ["stations[0].lon", "'west'", "[-180, 180]"]),
    ("station-newline", '[[stations]]\nname = "a\\nb"\n', ["stations[0].name", "control characters"]),
    ("station-escape", '[[stations]]\nname = "\\u001b]0;PWNED\\u0007"\n', ["stations[0].name", "control characters"]),
    ("station-bidi", '[[stations]]\nname = "abc\\u202edcb"\n', ["stations[0].name", "control characters"]),
    ("station-long", f'[[stations]]\nname = "{"n" * 200}"\n', ["stations[0].name", "at most 128"]),
    ("station-duplicate", '[[stations]]\nname = "a"\n[[stations]]\nname = "a"\n',
     ["stations[1].name", "'a'", "no other station has"]),
    ("station-tags", '[[stations]]\nname = "a"\n[stations.tags.floor]\nlevel = 2\n',
     ["stations[0].tags", "flat table"]),
    ("station-tz", '[[stations]]\nname = "a"\ntz = "Mars/Olympus"\n', ["stations[0].tz", "'Mars/Olympus'", "IANA"]),
    ("inputs-span", '[inputs]\nearliest = "2030-01-01"\nlatest = "2020-01-01"\n',
     ["inputs.latest", "'2020-01-01'", "a time after inputs.earliest", "'2030-01-01'"]),
    ("inputs-tz", '[inputs]\ntz = "Europe/Atlantis"\n', ["inputs.tz", "'Europe/Atlantis'", "IANA"]),
    ("inputs-sort", "[inputs]\nreplay_sort_mb = 1e9\n", ["inputs.replay_sort_mb", "[0, 65536]"]),
    ("station-key", '[[stations]]\nname = "a"\nlattitude = 1.0\n',
     ["stations[0].lattitude", "unknown key", "did you mean lat"]),
]

# (id, environment, words): the source is the environment variable's name
ENV_CASES = [
    ("env-window", {"WINDOW_POINTS": "1e11"}, ["detectors.window_points", "'1e11'", "WINDOW_POINTS"]),
    ("env-z-inf", {"Z_THRESHOLD": "inf"}, ["detectors.z", "'inf'", "Z_THRESHOLD"]),
    ("env-lat-nan", {"LOCATION_LAT": "nan", "LOCATION_LON": "0"}, ["LOCATION_LAT", "'nan'", "latitude"]),
    ("env-station-name", {"LOCATION_LAT": "1", "LOCATION_LON": "2", "LOCATION_NAME": "x\ny"},
     ["stations[0].name", "LOCATION_LAT/LOCATION_LON", "control characters"]),
    ("env-poll", {"POLL_SECONDS": "abc"}, ["source.poll_seconds", "'abc'", "POLL_SECONDS"]),
    ("env-topic", {"KAFKA_TOPIC": "t\x1b[2J"}, ["kafka.topic", "\\x1b", "KAFKA_TOPIC"]),
    ("env-email", {"ALERT_EMAIL_TO": "a@b,nobody"}, ["alerts.email_to", "nobody", "ALERT_EMAIL_TO"]),
]

# (id, argv after the command, words)
FLAG_CASES = [
    ("flag-window", ["--window", "100000000000"], ["detectors.window_points", "100000000000", "command line"]),
    ("flag-z", ["--z", "-3"], ["detectors.z", "-3", "command line"]),
    ("flag-cusum-h", ["--cusum-h", "1e9"], ["detectors.cusum_h", "command line", "up to 1000"]),
]


@pytest.fixture
def clean(tmp_path, monkeypatch):
    """A working directory without mass.toml or .env, and none of mass's variables set."""
    monkeypatch.chdir(tmp_path)
    for setting in SETTINGS.values():
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)
    for name in ("LOCATION_LAT", "LOCATION_LON", "LOCATION_NAME"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _one_line(capsys, argv: list[str], words: list[str]) -> str:
    assert main(argv) == EX_CONFIG
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mass: configuration error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_there_are_many_kinds():
    assert len(TOML_CASES) + len(ENV_CASES) + len(FLAG_CASES) + len(FILE_CASES) >= 60


@pytest.mark.parametrize(("toml", "words"), [c[1:] for c in TOML_CASES], ids=[c[0] for c in TOML_CASES])
def test_bad_file_values_end_in_one_line(clean, capsys, toml, words):
    path = clean / FILE
    path.write_text(toml)
    _one_line(capsys, ["config", "--config", str(path)], [*words, f"(from {path})"])


@pytest.mark.parametrize(("env", "words"), [c[1:] for c in ENV_CASES], ids=[c[0] for c in ENV_CASES])
def test_bad_environment_values_end_in_one_line(clean, capsys, monkeypatch, env, words):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _one_line(capsys, ["config"], words)


@pytest.mark.parametrize(("argv", "words"), [c[1:] for c in FLAG_CASES], ids=[c[0] for c in FLAG_CASES])
def test_bad_flags_end_in_one_line(clean, capsys, argv, words):
    _one_line(capsys, ["config", *argv], words)


def _invalid_utf8(p):
    p.write_bytes(b'[detectors]\nz = 3.0\n# caf\xe9 \xff\n')


def _directory(p):
    p.mkdir()


def _not_toml(p):
    p.write_text("[detectors\nz = 3\n")


def _dotenv_latin1(p):
    p.write_text("")
    (p.parent / ".env").write_bytes(b"SMTP_PASS=caf\xe9\xff\n")


FILE_CASES = [
    ("invalid-utf8", _invalid_utf8, ["not UTF-8 text", "0xe9", "line 3"]),
    ("directory", _directory, ["is a directory", "expected a TOML file"]),
    ("missing", None, ["does not exist"]),
    ("not-toml", _not_toml, ["not valid TOML"]),
    ("dotenv-not-utf8", _dotenv_latin1, [".env", "not UTF-8 text"]),
]


@pytest.mark.parametrize(("make", "words"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_unreadable_config_files_end_in_one_line(clean, capsys, make, words):
    path = clean / FILE
    if make is not None:
        make(path)
    _one_line(capsys, ["config", "--config", str(path)], [str(path) if make is not _dotenv_latin1 else ".env",
                                                          *words])


@pytest.mark.parametrize("command", [["replay", "x.jsonl", "--headless"], ["run", "--headless"], ["produce"],
                                     ["score", "-i", "a.csv", "-o", "b.csv"], ["alert", "test"]])
def test_every_command_checks_the_same_way(clean, capsys, command):
    (clean / FILE).write_text("[detectors]\nwindow_points = 1e11\n")
    argv = [*command[:2], "--config", FILE, *command[2:]] if command[0] == "alert" else \
        [command[0], "--config", FILE, *command[1:]]
    _one_line(capsys, argv, ["detectors.window_points", "[4, 10000]"])


def test_the_defaults_and_the_repository_file_pass_every_check():
    from .conftest import ROOT

    load_config(None, env={}, dotenv_file=None)
    load_config(ROOT / "mass.toml", env={}, dotenv_file=None)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(SETTINGS)),
                       st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30),
                                 st.text(max_size=12), st.booleans()), max_size=4))
def test_property_any_value_is_taken_or_refused_with_its_key(values):
    """Whatever a setting is given (any number, any text), loading either works or raises one
    ConfigError line naming a key; nothing else is ever raised."""
    env = {}
    for key, value in values.items():
        setting = SETTINGS[key]
        if setting.env:
            env[setting.env] = str(value)
    try:
        load_config(None, env=env, dotenv_file=None)
    except ConfigError as exc:
        text = str(exc)
        assert "\n" not in text and any(key in text for key in values)


@pytest.mark.parametrize("argv", [["silence", "list"], ["silence", "add", "station=x", "--for", "1h"],
                                  ["alert", "list"], ["query", "SELECT 1"]])
def test_a_data_dir_that_is_a_file_is_a_config_error_from_the_alert_commands_too(clean, capsys, argv):
    """`mass silence` caught ConfigError as a ValueError and exited 2 with its own prefix (a new-user
    check found it); every command says it alike, exit 78."""
    (clean / "afile").write_text("x")
    _one_line(capsys, ["--data-dir", str(clean / "afile"), *argv], ["data.dir", "afile", "configuration error"])


def test_a_bad_value_from_dotenv_names_the_file_and_the_environment_still_wins(clean, capsys, monkeypatch):
    """A new-user check found a bad MASS_LOG_DIR in .env said "(from environment MASS_LOG_DIR)"."""
    (clean / "afile").write_text("x")
    (clean / ".env").write_text(f"MASS_LOG_DIR={clean / 'afile'}\nMASS_UI_REFRESH_HZ=99\n")
    line = _one_line(capsys, ["config"], ["logs.dir", "afile"])
    assert "(from .env MASS_LOG_DIR)" in line
    monkeypatch.setenv("MASS_LOG_DIR", str(clean / "logs"))
    line = _one_line(capsys, ["config"], ["ui.refresh_hz", "99"])
    assert "(from .env MASS_UI_REFRESH_HZ)" in line
    monkeypatch.setenv("MASS_UI_REFRESH_HZ", "500")
    assert "(from environment MASS_UI_REFRESH_HZ)" in _one_line(capsys, ["config"], ["ui.refresh_hz", "500"])


@pytest.mark.parametrize("argv", [["replay", "{file}", "--headless"], ["run", "--headless", "--max-seconds", "0.1"],
                                  ["produce", "--max-messages", "1"], ["silence", "add", "station=x", "--for", "1h"]])
@pytest.mark.parametrize("key", ["data.dir", "logs.dir"])
def test_a_data_or_logs_dir_that_cannot_be_made_is_a_config_error_naming_it(clean, capsys, monkeypatch, argv, key):
    """A shape that passes (a path where nothing is in the way) may still be impossible to make: under
    /proc even root cannot. `mass replay --data-dir /proc/nope` said a bare "[Errno 2] No such file or
    directory" with exit 1; now key, value, where it was set and why, exit 78."""
    recording = clean / "r.jsonl"
    recording.write_text('{"ts": 1700000000, "station": "a", "temp_c": 1}\n')
    argv = [a.replace("{file}", str(recording)) for a in argv]
    if argv[0] == "silence" and key == "logs.dir":
        return  # the alert commands log nowhere
    if key == "data.dir":
        argv = [*argv, "--data-dir", "/proc/mass-nope"]
        origin = "(from command line)"
    else:
        monkeypatch.setenv("MASS_LOG_DIR", "/proc/mass-nope/logs")
        origin = "(from environment MASS_LOG_DIR)"
    line = _one_line(capsys, argv, [key, "/proc/mass-nope", origin, "cannot be made (No such file or directory)"])
    assert "expected a directory path" in line


@pytest.mark.parametrize("key", ["data.dir", "logs.dir"])
def test_a_data_or_logs_dir_on_a_read_only_disk_is_a_config_error_naming_it(clean, capsys, monkeypatch, key):
    """A dir that exists but cannot be written (a read-only mount: root's permissions do not matter
    there) was a bare "[Errno 30] Read-only file system" with exit 1, or a traceback from the log file's
    handler; now one line naming the key, exit 78, like a dir that cannot be made."""
    from .test_torn_and_full import _tmpfs

    recording = clean / "r.jsonl"
    recording.write_text('{"ts": 1700000000, "station": "a", "temp_c": 1}\n')
    with _tmpfs(clean / "ro", size="1m") as ro:
        (ro / "existing").mkdir()
        done = subprocess.run(["mount", "-o", "remount,ro", str(ro)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot remount read-only: {done.stderr.decode().strip()}")
        argv = ["replay", str(recording), "--headless"]
        if key == "data.dir":
            argv += ["--data-dir", str(ro / "existing")]
        else:
            monkeypatch.setenv("MASS_LOG_DIR", str(ro / "existing"))
            argv += ["--data-dir", str(clean / "data")]
        line = _one_line(capsys, argv, [key, "existing", "cannot be written (a read-only file system"])
        assert "Traceback" not in line
