"""Configuration: built-in defaults < mass.toml < .env < environment < flags.

The defaults below are the documented ones; `mass.toml` in the repository
restates them with comments (a test keeps the two equal). Every scalar is
validated once, at start, and a bad value is reported with its key, where it
came from, the value and what was expected.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

DEFAULTS: dict[str, Any] = {
    "data": {"dir": "./data"},
    "source": {
        "provider": "open-meteo",
        "api_base": "https://api.open-meteo.com/v1/forecast",
        "air_api_base": "https://air-quality-api.open-meteo.com/v1/air-quality",
        "poll_seconds": 60.0,
        "owm_base": "https://api.openweathermap.org/data/2.5/weather",
        "owm_units": "metric",
    },
    "stations": [
        {"name": "boston", "lat": 42.36, "lon": -71.06},
    ],
    "kafka": {
        "bootstrap_servers": "127.0.0.1:9092",
        "topic": "weather.observations",
        "group_id": "mass-consumer",
        "client_id": "mass",
    },
    "detectors": {
        "window_points": 48,
        "level_window_points": 192,
        "z": 3.0,
        "ewma_lambda": 0.2,
        "ewma_L": 3.0,
        "cusum_k": 0.5,
        "cusum_h": 5.0,
        "forecast_lambda": 0.7,
        "burst_ratio": 3.0,
        "stuck_factor": 3.0,
        "alarm_rarity": 10000.0,
        "episode_quiet_points": 12,
        "learning_hours": 24.0,
        "max_series": 50000,
        "idle_hours": 24.0,
    },
    "rules": {
        "pressure_tendency": {
            "drop_hpa": 3.0,
            "hours": 3.0,
            "rise_hpa": 0.0,
            "variables": ["pressure_hpa", "pressure_msl_hpa"],
            "match": {"kind": "weather"},
        },
        "gust": {"limit_mps": 15.0, "variables": ["gust_mps"], "match": {"kind": "weather"}},
        "rapid_change": {
            "temp_c": {"max_change": 8.0, "per_minutes": 60.0},
            "humidity_pct": {"max_change": 40.0, "per_minutes": 60.0},
        },
        # Severity ladders of the smoke-sensor scenario: the first level is
        # score 1.0, the second 2.0, ...; smoke sensors only.
        "bands": {
            "match": {"kind": "smoke"},
            "temp_c": {"direction": "above", "levels": [40.0, 57.0], "severities": ["warning", "critical"]},
            "humidity_pct": {"direction": "below", "levels": [20.0, 10.0], "severities": ["warning", "critical"]},
            "tvoc_ppb": {
                "direction": "above",
                "levels": [660.0, 2200.0, 5500.0],
                "severities": ["info", "warning", "critical"],
            },
            "eco2_ppm": {
                "direction": "above",
                "levels": [1000.0, 2000.0, 5000.0],
                "severities": ["info", "warning", "critical"],
            },
            "pm25_ugm3": {
                "direction": "above",
                "levels": [35.5, 55.5, 150.5],
                "severities": ["info", "warning", "critical"],
            },
        },
        "composite": {
            "fire": {
                "k": 3,
                "severity": "critical",
                "stale_seconds": 900.0,
                "match": {"kind": "smoke"},
                "indicators": [
                    "temp_c >= 45",
                    "humidity_pct <= 25",
                    "tvoc_ppb >= 2200",
                    "eco2_ppm >= 2000",
                    "pm25_ugm3 >= 150.5",
                ],
            }
        },
    },
    "store": {"max_mb": 64.0, "retention_days": 14.0, "warm_hours": 6.0},
    "inputs": {
        "na": ["", "NA", "N/A", "NaN", "null", "M", "MM", "-"],
        "tz": "",
        "earliest": "1900-01-01",
        "latest": "2100-01-01",
        "replay_sort_mb": 64.0,
    },
    "logs": {"dir": "./logs"},
    "ui": {"refresh_hz": 4.0, "chart_hz": 1.0},
    "alerts": {
        "enabled": False,
        "cooldown_min": 30.0,
        "repeat_min": 360.0,
        "resolve_after_min": 120.0,
        "notify_resolved": True,
        "smtp_host": "",
        "smtp_port": 587,
        "email_from": "",
        "email_to": [],
        "sms_enabled": False,
        "sms_to": "",
        "sms_carrier": "",
        "timeout_seconds": 10.0,
        "max_attempts": 5,
        "retry_seconds": 2.0,
        "max_pending": 1000,
        "group_wait_seconds": 30.0,
        "group_by": ["rule"],
        "no_data": True,
        "no_data_factor": 5.0,
        "no_data_min_minutes": 5.0,
        "no_data_variables": True,
        "source_down_min": 15.0,
        "webhook_format": "mass",
        "external_url": "",
        "exec_command": [],
        "exec_timeout_seconds": 10.0,
        "exec_format": "alertmanager",
        "mute_times": [],
        "inhibit_rules": [
            {"source_matchers": ['alertname="no-data"', 'variable=""'],
             "target_matchers": ['alertname!="no-data"'], "equal": ["station"]},
            {"source_matchers": ['alertname="no-data"', 'variable=~".+"'],
             "target_matchers": ['alertname!="no-data"'], "equal": ["station", "variable"]},
            {"source_matchers": ['alertname="source-down"'],
             "target_matchers": ['alertname="no-data"'], "equal": ["source"]},
        ],
        "rules": [
            {"name": "pressure-fall", "detectors": ["pressure_tendency"], "min_severity": "warning"},
            {"name": "gust", "detectors": ["gust_limit"], "min_severity": "warning"},
            {"name": "fire", "detectors": ["fire"], "min_severity": "critical"},
            {"name": "smoke-levels", "detectors": ["bands"], "min_severity": "warning"},
            {"name": "statistical", "detectors": ["ensemble"], "min_severity": "critical"},
            {"name": "stuck", "detectors": ["stuck"], "min_severity": "warning"},
        ],
    },
}


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


def _open_unit(v: float) -> bool:
    return 0 < v <= 1


def _is_zone(name: str) -> bool:
    from sources.times import zone

    try:
        zone(name)
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    from sources.times import TimeError, parse_iso

    try:
        parse_iso(text)
    except TimeError:
        return False
    return True


@dataclass(frozen=True)
class Setting:
    type: type
    check: Callable[[Any], bool] | None = None
    expected: str = ""
    env: str | None = None
    secret: bool = False


# Every scalar a user may set, with its environment name (the seed's names).
SETTINGS: dict[str, Setting] = {
    "data.dir": Setting(str, None, "a directory path", "MASS_DATA_DIR"),
    "source.provider": Setting(
        str,
        lambda v: v in ("open-meteo", "openweathermap", "simulator", "replay"),
        "one of open-meteo, openweathermap, simulator, replay",
        "WEATHER_PROVIDER",
    ),
    "source.api_base": Setting(
        str, lambda v: v.startswith(("http://", "https://")), "an http(s) URL", "WEATHER_API_BASE"
    ),
    "source.air_api_base": Setting(str, lambda v: not v or v.startswith(("http://", "https://")),
                                   "an http(s) URL, or empty for no air quality", "AIR_QUALITY_API_BASE"),
    "source.poll_seconds": Setting(float, lambda v: v >= 1, "a number of seconds >= 1", "POLL_SECONDS"),
    "source.owm_base": Setting(str, lambda v: v.startswith(("http://", "https://")), "an http(s) URL",
                               "OPENWEATHER_BASE"),
    "source.owm_units": Setting(str, lambda v: v in ("standard", "metric", "imperial"),
                                "standard, metric or imperial", "OPENWEATHER_UNITS"),
    "kafka.bootstrap_servers": Setting(str, bool, "host:port[,host:port]", "KAFKA_BOOTSTRAP_SERVERS"),
    "kafka.topic": Setting(str, bool, "a topic name", "KAFKA_TOPIC"),
    "kafka.group_id": Setting(str, bool, "a consumer group id", "KAFKA_GROUP_ID"),
    "kafka.client_id": Setting(str, bool, "a client id", "KAFKA_CLIENT_ID"),
    "detectors.window_points": Setting(int, lambda v: v >= 4, "an integer >= 4", "WINDOW_POINTS"),
    "detectors.level_window_points": Setting(int, lambda v: v >= 4, "an integer >= 4"),
    "detectors.z": Setting(float, _positive, "a positive number", "Z_THRESHOLD"),
    "detectors.ewma_lambda": Setting(float, _open_unit, "a number in (0, 1]"),
    "detectors.ewma_L": Setting(float, _positive, "a positive number"),
    "detectors.cusum_k": Setting(float, _non_negative, "a number >= 0"),
    "detectors.cusum_h": Setting(float, _positive, "a positive number"),
    "detectors.forecast_lambda": Setting(float, lambda v: 0 < v < 1, "a number in (0, 1)"),
    "detectors.burst_ratio": Setting(float, lambda v: v > 1, "a number > 1"),
    "detectors.stuck_factor": Setting(float, lambda v: v > 1, "a number > 1"),
    "detectors.alarm_rarity": Setting(float, lambda v: 100 < v <= 1e12,
                                      "a number of readings in (100, 1e12]", "MASS_ALARM_RARITY"),
    "detectors.episode_quiet_points": Setting(int, lambda v: 1 <= v <= 100_000, "an integer in [1, 100000]"),
    "detectors.learning_hours": Setting(float, lambda v: 0 <= v <= 24 * 365, "hours in [0, 8760]"),
    "detectors.max_series": Setting(int, lambda v: 0 <= v <= 100_000_000,
                                    "an integer >= 0 (0: no cap)", "MASS_MAX_SERIES"),
    "detectors.idle_hours": Setting(float, _positive, "a positive number of hours"),
    "rules.pressure_tendency.drop_hpa": Setting(
        float, _positive, "a positive number of hPa", "ALERT_PRESSURE_DROP_HPA"
    ),
    "rules.pressure_tendency.hours": Setting(float, _positive, "a positive number of hours"),
    "rules.pressure_tendency.rise_hpa": Setting(float, _non_negative, "hPa >= 0 (0 turns it off)"),
    "rules.gust.limit_mps": Setting(float, _positive, "a positive speed in m/s", "ALERT_WIND_GUST_MPS"),
    "store.max_mb": Setting(float, _positive, "a positive number of MiB"),
    "store.retention_days": Setting(float, _positive, "a positive number of days"),
    "store.warm_hours": Setting(float, _non_negative, "hours >= 0 (0: start cold)"),
    "logs.dir": Setting(str, bool, "a directory path", "MASS_LOG_DIR"),
    "inputs.na": Setting(list, None, "missing markers, comma-separated", "MASS_NA"),
    "inputs.tz": Setting(str, lambda v: not v or _is_zone(v),
                         "an IANA time zone such as Europe/Paris, or empty for UTC", "MASS_TZ"),
    "inputs.earliest": Setting(str, lambda v: _is_date(v), "a date or time in ISO 8601 (1900-01-01)"),
    "inputs.latest": Setting(str, lambda v: _is_date(v), "a date or time in ISO 8601 (2100-01-01)"),
    "inputs.replay_sort_mb": Setting(float, lambda v: 0 <= v <= 65536, "MiB in [0, 65536]"),
    "ui.refresh_hz": Setting(float, lambda v: 0.2 <= v <= 30, "a rate in Hz in [0.2, 30]", "MASS_UI_REFRESH_HZ"),
    "ui.chart_hz": Setting(float, lambda v: 0.1 <= v <= 10, "a rate in Hz in [0.1, 10]", "MASS_UI_CHART_HZ"),
    "alerts.enabled": Setting(bool, None, "true or false", "ALERTS_ENABLED"),
    "alerts.cooldown_min": Setting(float, _non_negative, "minutes >= 0", "ALERT_COOLDOWN_MIN"),
    "alerts.repeat_min": Setting(float, _positive, "minutes > 0", "ALERT_REPEAT_MIN"),
    "alerts.resolve_after_min": Setting(float, _positive, "minutes > 0", "ALERT_RESOLVE_AFTER_MIN"),
    "alerts.notify_resolved": Setting(bool, None, "true or false", "ALERT_NOTIFY_RESOLVED"),
    "alerts.smtp_host": Setting(str, None, "a host name (empty: no email)", "SMTP_HOST"),
    "alerts.smtp_port": Setting(int, lambda v: 0 < v < 65536, "a TCP port", "SMTP_PORT"),
    "alerts.email_from": Setting(str, lambda v: not v or "@" in v, "an email address", "ALERT_EMAIL_FROM"),
    "alerts.email_to": Setting(list, lambda v: all("@" in a for a in v), "email addresses, comma-separated",
                               "ALERT_EMAIL_TO"),
    "alerts.sms_enabled": Setting(bool, None, "true or false", "SMS_ENABLED"),
    "alerts.sms_to": Setting(str, None, "a phone number", "SMS_TO"),
    "alerts.sms_carrier": Setting(str, None, "a carrier name (att, verizon, tmobile, ...)", "SMS_CARRIER"),
    "alerts.timeout_seconds": Setting(float, _positive, "seconds > 0"),
    "alerts.max_attempts": Setting(int, lambda v: v >= 1, "an integer >= 1"),
    "alerts.retry_seconds": Setting(float, _positive, "seconds > 0"),
    "alerts.max_pending": Setting(int, lambda v: 1 <= v <= 1_000_000, "an integer in [1, 1000000]"),
    "alerts.group_wait_seconds": Setting(float, lambda v: 0 <= v <= 86400, "seconds in [0, 86400]",
                                         "ALERT_GROUP_WAIT_SECONDS"),
    "alerts.group_by": Setting(list, lambda v: all(v), "label names, comma-separated", "ALERT_GROUP_BY"),
    "alerts.no_data": Setting(bool, None, "true or false", "ALERT_NO_DATA"),
    "alerts.no_data_factor": Setting(float, lambda v: 1 < v <= 1000, "a number in (1, 1000]",
                                     "ALERT_NO_DATA_FACTOR"),
    "alerts.no_data_min_minutes": Setting(float, lambda v: 0 <= v <= 525600, "minutes in [0, 525600]"),
    "alerts.no_data_variables": Setting(bool, None, "true or false"),
    "alerts.source_down_min": Setting(float, lambda v: 0 < v <= 525600, "minutes in (0, 525600]",
                                      "ALERT_SOURCE_DOWN_MIN"),
    "alerts.webhook_format": Setting(str, lambda v: v in ("mass", "alertmanager", "cloudevents"),
                                     "mass, alertmanager or cloudevents", "ALERT_WEBHOOK_FORMAT"),
    "alerts.external_url": Setting(str, lambda v: not v or v.startswith(("http://", "https://")),
                                   "an http(s) URL, or empty", "ALERT_EXTERNAL_URL"),
    "alerts.exec_command": Setting(list, lambda v: not v or bool(v[0]),
                                   "a command as a list, e.g. [\"/usr/local/bin/page\", \"--team\", \"ops\"]"),
    "alerts.exec_timeout_seconds": Setting(float, lambda v: 0 < v <= 3600, "seconds in (0, 3600]"),
    "alerts.exec_format": Setting(str, lambda v: v in ("mass", "alertmanager", "cloudevents"),
                                  "mass, alertmanager or cloudevents"),
}

# Secrets are read from .env or the environment only and never shown in clear.
SECRET_ENV = (
    "OPENWEATHER_API_KEY",
    "SMTP_USER",
    "SMTP_PASS",
    "SLACK_WEBHOOK_URL",
    "ALERT_WEBHOOK_URL",
    "CLOUDEVENTS_URL",
)

# Tables whose shape the detector bank checks when it is built.
_FREE_FORM = (
    "rules.rapid_change",
    "rules.bands",
    "rules.composite",
    "rules.pressure_tendency.variables",
    "rules.pressure_tendency.match",
    "rules.gust.variables",
    "rules.gust.match",
    "alerts.rules",
    "alerts.mute_times",
    "alerts.inhibit_rules",
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names key, value and expectation."""


def mask(secret: str | None) -> str | None:
    if not secret:
        return secret
    return "****" if len(secret) < 12 else f"{secret[:2]}****{secret[-2:]}"


def _coerce(key: str, raw: Any, origin: str) -> Any:
    setting = SETTINGS[key]
    value: Any = raw
    try:
        if setting.type is bool:
            if isinstance(raw, str):
                low = raw.strip().lower()
                if low not in _TRUE | _FALSE:
                    raise ValueError
                value = low in _TRUE
            elif not isinstance(raw, bool):
                raise ValueError
        elif setting.type is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
        elif setting.type is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        elif setting.type is list:
            if isinstance(raw, str):
                value = [part.strip() for part in raw.split(",") if part.strip()]
            elif isinstance(raw, list) and all(isinstance(v, str) for v in raw):
                value = [v.strip() for v in raw]
            else:
                raise ValueError
        else:
            if not isinstance(raw, str):
                raise ValueError
            value = raw.strip()
        if setting.check is not None and not setting.check(value):
            raise ValueError
    except (ValueError, TypeError):
        shown = "****" if setting.secret else repr(raw)
        raise ConfigError(f"{key} = {shown} (from {origin}): expected {setting.expected}") from None
    return value


def _get(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        node = node[part]
    return node


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _merge(base: dict[str, Any], over: Mapping[str, Any], path: str, origin: str) -> None:
    for key, value in over.items():
        dotted = f"{path}{key}"
        if key == "match" and dotted.startswith("rules."):
            base[key] = value  # a matcher replaces the default one whole; the bank checks its shape
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, f"{dotted}.", origin)
        elif dotted in SETTINGS:
            base[key] = _coerce(dotted, value, origin)
        elif dotted.split(".")[0] == "stations" or dotted.startswith(_FREE_FORM):
            base[key] = value  # tables checked when the detector bank is built
        else:
            raise ConfigError(f"{dotted} (from {origin}): unknown setting")


@dataclass
class Config:
    tree: dict[str, Any]
    secrets: dict[str, str]
    origins: dict[str, str]
    config_file: Path | None

    def get(self, key: str) -> Any:
        return _get(self.tree, key)

    @property
    def data_dir(self) -> Path:
        return Path(self.get("data.dir"))

    @property
    def db_dir(self) -> Path:
        return self.data_dir / "db"

    def secret(self, name: str) -> str | None:
        return self.secrets.get(name)

    def masked(self) -> dict[str, Any]:
        """The effective configuration with every secret masked, for `mass config`."""
        out = copy.deepcopy(self.tree)
        out["secrets"] = {name: mask(value) for name, value in sorted(self.secrets.items())}
        out["origins"] = dict(sorted(self.origins.items()))
        return out


def load_config(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    dotenv_file: Path | None = Path(".env"),
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the effective configuration. Raises ConfigError on the first bad value."""
    tree = copy.deepcopy(DEFAULTS)
    origins: dict[str, str] = {}
    if config_file is None and Path("mass.toml").is_file():
        config_file = Path("mass.toml")
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {config_file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
        _merge(tree, data, "", str(config_file))

    environ: dict[str, str] = {}
    if dotenv_file is not None and Path(dotenv_file).is_file():
        environ.update({k: v for k, v in dotenv_values(dotenv_file).items() if v is not None})
    environ.update(os.environ if env is None else env)

    for key, setting in SETTINGS.items():
        if setting.env and setting.env in environ:
            _set(tree, key, _coerce(key, environ[setting.env], f"environment {setting.env}"))
            origins[key] = f"environment {setting.env}"
    if "LOCATION_LAT" in environ or "LOCATION_LON" in environ:
        tree["stations"] = [_station_from_env(environ)]
        origins["stations"] = "environment LOCATION_LAT/LOCATION_LON"

    for key, value in (overrides or {}).items():
        if value is None:
            continue
        _set(tree, key, _coerce(key, value, "command line"))
        origins[key] = "command line"

    _check_stations(tree["stations"])
    secrets = {name: environ[name] for name in SECRET_ENV if environ.get(name)}
    return Config(tree=tree, secrets=secrets, origins=origins, config_file=config_file)


def _station_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": environ.get("LOCATION_NAME", "local")}
    for key, name, limit in (("lat", "LOCATION_LAT", 90.0), ("lon", "LOCATION_LON", 180.0)):
        raw = environ.get(name)
        try:
            value = float(raw)  # type: ignore[arg-type]
            if not -limit <= value <= limit:
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"{name} = {raw!r}: expected a {key}itude in [-{limit:g}, {limit:g}]") from None
        out[key] = value
    return out


def _check_stations(stations: Any) -> None:
    if not isinstance(stations, list):
        raise ConfigError(f"stations = {stations!r}: expected a list of tables [[stations]]")
    for i, st in enumerate(stations):
        if not isinstance(st, dict) or not isinstance(st.get("name"), str) or not st["name"]:
            raise ConfigError(f"stations[{i}] = {st!r}: expected a table with a non-empty name")
        tz = st.get("tz")
        if tz is not None and (not isinstance(tz, str) or not _is_zone(tz)):
            raise ConfigError(f"stations[{i}].tz = {tz!r}: expected an IANA time zone such as America/Chicago")
        for key, limit in (("lat", 90.0), ("lon", 180.0)):
            v = st.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not -limit <= v <= limit):
                raise ConfigError(f"stations[{i}].{key} = {v!r}: expected a number in [-{limit:g}, {limit:g}]")
    names = [st["name"] for st in stations]
    for i, name in enumerate(names):
        if name in names[:i]:
            # Two stations under one name would share detector state and alert episodes.
            raise ConfigError(f"stations[{i}].name = {name!r}: expected a name no other station has "
                              f"(stations[{names.index(name)}] has it)")


def input_policy(config: Config) -> Any:
    """The decoder's `InputPolicy` from `[inputs]` and the `tz` of each `[[stations]]` entry."""
    from sources.decode import InputPolicy
    from sources.fields import na_markers
    from sources.times import TimeSpan, parse_iso, zone

    inputs = config.get("inputs")
    tz = inputs["tz"]
    stations = {str(st["name"]): zone(st["tz"]) for st in config.get("stations")
                if isinstance(st, dict) and st.get("tz")}
    earliest, _ = parse_iso(inputs["earliest"])
    latest, _ = parse_iso(inputs["latest"])
    if latest <= earliest:
        raise ConfigError(f"inputs.latest = {inputs['latest']!r}: expected a time after inputs.earliest "
                          f"({inputs['earliest']!r})")
    return InputPolicy(na=na_markers(inputs["na"]), tz=zone(tz) if tz else None, station_tz=stations,
                       span=TimeSpan(earliest, latest))
