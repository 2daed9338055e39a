"""Configuration: built-in defaults < mass.toml < .env < environment < flags.

The defaults below are the documented ones; `mass.toml` in the repository
restates them with comments (a test keeps the two equal). Every scalar is
validated once, at start, and a bad value is reported with its key, where it
came from, the value and what was expected.
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mass_tui.config_tables import (
    ALERT_TABLES,
    MATCHERS,
    TABLES,
    alert_tables,
    check_alert_names,
    check_table,
    matcher,
)
from sources.text import Redactor, has_controls, safe_text
from sources.variables import REGISTRY

DEFAULTS: dict[str, Any] = {
    "data": {"dir": "./data"},
    "source": {
        "provider": "open-meteo",
        "api_base": "https://api.open-meteo.com/v1/forecast",
        "air_api_base": "https://air-quality-api.open-meteo.com/v1/air-quality",
        "poll_seconds": 60.0,
        "owm_base": "https://api.openweathermap.org/data/2.5/weather",
        "owm_units": "metric",
        "fetch_deadline_seconds": 30.0,
        "max_body_mb": 8.0,
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
    "store": {
        "max_mb": 64.0,
        "retention_days": 14.0,
        "warm_hours": 6.0,
        "aggregate_windows": ["1m", "1h", "1d"],
        "aggregate_lateness_min": 60.0,
        "aggregate_groups": ["building", "building+floor"],
        "postgres_url": "",
        "postgres_windows": ["1h", "1d"],
    },
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


def _within(low: float, high: float, *, low_open: bool = False) -> Callable[[float], bool]:
    """A check for low <= v <= high (low < v with `low_open`). Every number has an upper bound:
    `window_points = 1e11` would allocate hundreds of GiB, `store.max_mb = 1e308` overflow."""
    return lambda v: (v > low if low_open else v >= low) and v <= high


def _url(v: str) -> bool:
    return v.startswith(("http://", "https://"))


def _variables(v: list[str]) -> bool:
    return all(name in REGISTRY for name in v)


def _window(spec: str) -> bool:
    from mass_tui.aggregates import parse_window  # local: config loads before anything else

    try:
        return parse_window(spec) > 0
    except ValueError:
        return False


def _distinct_lengths(specs: list[str]) -> bool:
    """No two windows of one length: they would be the same windows written twice (and a day's
    summary twice, both as "1d")."""
    from mass_tui.aggregates import parse_window

    lengths = [parse_window(w) for w in specs]
    return len(set(lengths)) == len(lengths)


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


def _directory_path(text: str) -> bool:
    """The path is a directory, or its nearest existing ancestor is (so one can be made there); a
    link that leads nowhere (dangling, or a loop) is neither."""
    try:
        path = Path(text).expanduser().absolute()
    except RuntimeError:  # ~name of no user here: no home to expand it to
        return False
    for place in (path, *path.parents):
        if os.path.lexists(place):
            return place.is_dir()
    return True


@dataclass(frozen=True)
class Setting:
    type: type
    check: Callable[[Any], bool] | None = None
    expected: str = ""
    env: str | None = None
    secret: bool = False


_VARIABLES = "variable names of the registry (e.g. pressure_hpa, gust_mps)"
_DIRECTORY = ("a directory path (a directory, or where one can be made: not a file, a broken link, nor under one; "
              "~ or ~user of a user here)")

# Every scalar a user may set, with its environment name (the seed's names).
SETTINGS: dict[str, Setting] = {
    "data.dir": Setting(str, lambda v: bool(v) and _directory_path(v), _DIRECTORY, "MASS_DATA_DIR"),
    "source.provider": Setting(
        str,
        lambda v: v in ("open-meteo", "openweathermap", "simulator", "replay"),
        "one of open-meteo, openweathermap, simulator, replay",
        "WEATHER_PROVIDER",
    ),
    "source.api_base": Setting(str, _url, "an http(s) URL", "WEATHER_API_BASE"),
    "source.air_api_base": Setting(str, lambda v: not v or _url(v),
                                   "an http(s) URL, or empty for no air quality", "AIR_QUALITY_API_BASE"),
    "source.poll_seconds": Setting(float, _within(1, 86400), "seconds in [1, 86400]", "POLL_SECONDS"),
    "source.fetch_deadline_seconds": Setting(float, _within(1, 600), "seconds in [1, 600]"),
    "source.max_body_mb": Setting(float, _within(0, 1024, low_open=True), "MiB in (0, 1024]"),
    "source.owm_base": Setting(str, _url, "an http(s) URL", "OPENWEATHER_BASE"),
    "source.owm_units": Setting(str, lambda v: v in ("standard", "metric", "imperial"),
                                "standard, metric or imperial", "OPENWEATHER_UNITS"),
    "kafka.bootstrap_servers": Setting(str, bool, "host:port[,host:port]", "KAFKA_BOOTSTRAP_SERVERS"),
    "kafka.topic": Setting(str, bool, "a topic name", "KAFKA_TOPIC"),
    "kafka.group_id": Setting(str, bool, "a consumer group id", "KAFKA_GROUP_ID"),
    "kafka.client_id": Setting(str, bool, "a client id", "KAFKA_CLIENT_ID"),
    "detectors.window_points": Setting(int, _within(4, 10_000), "an integer in [4, 10000]", "WINDOW_POINTS"),
    "detectors.level_window_points": Setting(int, _within(4, 100_000), "an integer in [4, 100000]"),
    "detectors.z": Setting(float, _within(0, 100, low_open=True), "a positive number up to 100", "Z_THRESHOLD"),
    "detectors.ewma_lambda": Setting(float, _within(0, 1, low_open=True), "a number in (0, 1]"),
    "detectors.ewma_L": Setting(float, _within(0, 100, low_open=True), "a positive number up to 100"),
    "detectors.cusum_k": Setting(float, _within(0, 100), "a number in [0, 100]"),
    "detectors.cusum_h": Setting(float, _within(0, 1000, low_open=True), "a positive number up to 1000"),
    "detectors.forecast_lambda": Setting(float, lambda v: 0 < v < 1, "a number in (0, 1)"),
    "detectors.burst_ratio": Setting(float, lambda v: 1 < v <= 1000, "a number in (1, 1000]"),
    "detectors.stuck_factor": Setting(float, lambda v: 1 < v <= 1000, "a number in (1, 1000]"),
    "detectors.alarm_rarity": Setting(float, lambda v: 100 < v <= 1e12,
                                      "a number of readings in (100, 1e12]", "MASS_ALARM_RARITY"),
    "detectors.episode_quiet_points": Setting(int, _within(1, 100_000), "an integer in [1, 100000]"),
    "detectors.learning_hours": Setting(float, _within(0, 8760), "hours in [0, 8760]"),
    "detectors.max_series": Setting(int, _within(0, 100_000_000), "an integer in [0, 100000000] (0: no cap)",
                                    "MASS_MAX_SERIES"),
    "detectors.idle_hours": Setting(float, _within(0, 8760, low_open=True), "hours in (0, 8760]"),
    "rules.pressure_tendency.drop_hpa": Setting(
        float, _within(0, 200, low_open=True), "hPa in (0, 200]", "ALERT_PRESSURE_DROP_HPA"
    ),
    "rules.pressure_tendency.hours": Setting(float, _within(0, 168, low_open=True), "hours in (0, 168]"),
    "rules.pressure_tendency.rise_hpa": Setting(float, _within(0, 200), "hPa in [0, 200] (0 turns it off)"),
    "rules.pressure_tendency.variables": Setting(list, _variables, _VARIABLES),
    "rules.gust.limit_mps": Setting(float, _within(0, 150, low_open=True), "a speed in m/s in (0, 150]",
                                    "ALERT_WIND_GUST_MPS"),
    "rules.gust.variables": Setting(list, _variables, _VARIABLES),
    "store.max_mb": Setting(float, _within(0, 1024 * 1024, low_open=True), "MiB in (0, 1048576]"),
    "store.retention_days": Setting(float, _within(0, 36500, low_open=True), "days in (0, 36500]"),
    "store.warm_hours": Setting(float, _within(0, 8760), "hours in [0, 8760] (0: start cold)"),
    "store.aggregate_windows": Setting(list, lambda v: all(_window(w) for w in v) and _distinct_lengths(v),
                                       "window lengths like 1m, 1h, 1d, comma-separated, each length once "
                                       "(1d and 24h are one window)"),
    "store.aggregate_lateness_min": Setting(float, _within(0, 10080), "minutes in [0, 10080] (a week)"),
    "store.aggregate_groups": Setting(list, lambda v: all(p for g in v for p in g.split("+")),
                                      "label names, or names joined by + (building, building+floor)"),
    "store.postgres_url": Setting(str, lambda v: not v or v.startswith(("postgresql://", "postgres://")),
                                  "a postgresql:// URL (password from PGPASSWORD in .env), or empty",
                                  "MASS_POSTGRES_URL", secret=True),
    "store.postgres_windows": Setting(list, lambda v: all(_window(w) for w in v),
                                      "window lengths like 1h, 1d (of store.aggregate_windows), comma-separated"),
    "logs.dir": Setting(str, lambda v: bool(v) and _directory_path(v), _DIRECTORY, "MASS_LOG_DIR"),
    "inputs.na": Setting(list, None, "missing markers, comma-separated", "MASS_NA"),
    "inputs.tz": Setting(str, lambda v: not v or _is_zone(v),
                         "an IANA time zone such as Europe/Paris, or empty for UTC", "MASS_TZ"),
    "inputs.earliest": Setting(str, lambda v: _is_date(v), "a date or time in ISO 8601 (1900-01-01)"),
    "inputs.latest": Setting(str, lambda v: _is_date(v), "a date or time in ISO 8601 (2100-01-01)"),
    "inputs.replay_sort_mb": Setting(float, lambda v: 0 <= v <= 65536, "MiB in [0, 65536]"),
    "ui.refresh_hz": Setting(float, lambda v: 0.2 <= v <= 30, "a rate in Hz in [0.2, 30]", "MASS_UI_REFRESH_HZ"),
    "ui.chart_hz": Setting(float, lambda v: 0.1 <= v <= 10, "a rate in Hz in [0.1, 10]", "MASS_UI_CHART_HZ"),
    "alerts.enabled": Setting(bool, None, "true or false", "ALERTS_ENABLED"),
    "alerts.cooldown_min": Setting(float, _within(0, 525_600), "minutes in [0, 525600]", "ALERT_COOLDOWN_MIN"),
    "alerts.repeat_min": Setting(float, _within(0, 525_600, low_open=True), "minutes in (0, 525600]",
                                 "ALERT_REPEAT_MIN"),
    "alerts.resolve_after_min": Setting(float, _within(0, 525_600, low_open=True), "minutes in (0, 525600]",
                                        "ALERT_RESOLVE_AFTER_MIN"),
    "alerts.notify_resolved": Setting(bool, None, "true or false", "ALERT_NOTIFY_RESOLVED"),
    "alerts.smtp_host": Setting(str, None, "a host name (empty: no email)", "SMTP_HOST"),
    "alerts.smtp_port": Setting(int, lambda v: 0 < v < 65536, "a TCP port", "SMTP_PORT"),
    "alerts.email_from": Setting(str, lambda v: not v or "@" in v, "an email address", "ALERT_EMAIL_FROM"),
    "alerts.email_to": Setting(list, lambda v: all("@" in a for a in v), "email addresses, comma-separated",
                               "ALERT_EMAIL_TO"),
    "alerts.sms_enabled": Setting(bool, None, "true or false", "SMS_ENABLED"),
    "alerts.sms_to": Setting(str, None, "a phone number", "SMS_TO"),
    "alerts.sms_carrier": Setting(str, None, "a carrier name (att, verizon, tmobile, ...)", "SMS_CARRIER"),
    "alerts.timeout_seconds": Setting(float, _within(0, 600, low_open=True), "seconds in (0, 600]"),
    "alerts.max_attempts": Setting(int, _within(1, 100), "an integer in [1, 100]"),
    "alerts.retry_seconds": Setting(float, _within(0, 3600, low_open=True), "seconds in (0, 3600]"),
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
    "PGPASSWORD",
    "CLOUDEVENTS_URL",
)

NOT_REDACTED = ("SMTP_USER",)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names key, value and expectation."""


def mask(secret: str | None) -> str | None:
    """"****" for a set secret (None or "" as they are): not even its first or last characters, which
    narrow a guess and, for a short key, give away a good part of it."""
    if not secret:
        return secret
    return "****"


def mask_url(url: str) -> str:
    """A connection URL with its password masked (postgresql://user:****@host/db)."""
    head, at, tail = url.rpartition("@")
    scheme, sep, auth = head.partition("://")
    if not at or not sep or ":" not in auth:
        return url
    return f"{scheme}://{auth.split(':', 1)[0]}:****@{tail}"


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
            if len(value) > 64 or any(has_controls(v) or len(v) > 4096 for v in value):
                raise ValueError
        else:
            if not isinstance(raw, str) or has_controls(raw) or len(raw) > 4096:
                raise ValueError  # a control character in a name or path is a mistake or an attack
            value = raw.strip()
        if setting.check is not None and not setting.check(value):
            raise ValueError
    except (ValueError, TypeError, OverflowError):
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


def _merge(base: dict[str, Any], over: Mapping[str, Any], path: str, origin: str, origins: dict[str, str]) -> None:
    """Lay `over` (one layer: a file) on `base`, coercing and checking every scalar on the way.
    Named tables (config_tables.TABLES) are laid on entry by entry and checked once all layers are in."""
    for key, value in over.items():
        dotted = f"{path}{key}"
        if dotted in MATCHERS:
            base[key] = value  # a matcher replaces the default one whole; checked with the tables
            origins[dotted] = origin
        elif dotted in SETTINGS:
            base[key] = _coerce(dotted, value, origin)
            origins[dotted] = origin
        elif dotted in ALERT_TABLES:
            base[key] = value  # lists of tables, replaced whole; parsed once all layers are in
            origins[dotted] = origin
        elif dotted in TABLES:
            if TABLES[dotted].keys is not None and isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}  # [rules.bands.co2_ppm] adds to the default ladders
                origins.update({f"{dotted}.{name}": origin for name in value})
            else:
                base[key] = value
                origins[dotted] = origin
        elif isinstance(base.get(key), dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted} = {_shown(value)} (from {origin}): expected a table [{dotted}] "
                                  f"with {', '.join(base[key])}")
            _merge(base[key], value, f"{dotted}.", origin, origins)
        else:
            near = difflib.get_close_matches(str(key), list(base), n=1, cutoff=0.5)
            hint = f" (did you mean {path}{near[0]}?)" if near else ""
            raise ConfigError(f"{dotted} (from {origin}): unknown setting{hint}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _origin(origins: Mapping[str, str], key: str) -> str:
    """Where `key` (or the table holding it) was set."""
    parts = key.replace("[", ".[").split(".")
    for n in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:n]).replace(".[", "["))
        if found:
            return found
    return "the built-in defaults"


def _check_tables(tree: dict[str, Any], origins: Mapping[str, str]) -> None:
    """Every named table's shape, variable and detector names, once all layers are in."""
    for key in TABLES:
        problem = check_table(key, _get(tree, key))
        if problem is not None:
            raise ConfigError(problem.text(_origin(origins, problem.key)))
    for key in MATCHERS:
        try:
            value = _get(tree, key)
        except (KeyError, TypeError):
            continue  # optional: no matcher there, the rule applies to every station
        expected = matcher(value)
        if expected is not None:
            raise ConfigError(f"{key} = {_shown(value)} (from {_origin(origins, key)}): expected {expected}")
    for key, parse in alert_tables().items():
        value = _get(tree, key)
        try:
            parse(value)
        except ValueError as exc:  # the alerts module's errors name the key and what it expected
            raise ConfigError(f"{safe_text(exc)} (from {_origin(origins, key)})") from None
        except (TypeError, KeyError, AttributeError) as exc:
            raise ConfigError(f"{key} = {_shown(value)} (from {_origin(origins, key)}): expected the shape the "
                              f"README's Alerts section gives ({type(exc).__name__}: {safe_text(exc)})") from None
    problem = check_alert_names(tree["alerts"]["rules"], list(tree["rules"]["composite"]))
    if problem is not None:
        raise ConfigError(problem.text(_origin(origins, problem.key)))
    for key, other, holds, expected in RELATIONS:
        if not holds(_get(tree, key), _get(tree, other)):
            raise ConfigError(f"{key} = {_shown(_get(tree, key))} (from {_origin(origins, key)}): expected "
                              f"{expected} ({other} = {_shown(_get(tree, other))})")


def _later(latest: str, earliest: str) -> bool:
    from sources.times import parse_iso

    return parse_iso(latest)[0] > parse_iso(earliest)[0]


# Settings that must agree with another: (key, other key, check(value, other), what is expected).
RELATIONS: list[tuple[str, str, Callable[[Any, Any], bool], str]] = [
    ("inputs.latest", "inputs.earliest", _later, "a time after inputs.earliest"),
]


def _read_toml(path: Path) -> dict[str, Any]:
    """The TOML file's tables; every way it can be unreadable is one ConfigError line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory: expected a TOML file such as mass.toml") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"config file {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} "
                          f"(offset {exc.start}): expected TOML in UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {path}: tables or arrays nested too deep: expected TOML") from None


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
        return Path(self.get("data.dir")).expanduser()  # "~/mass-data" in mass.toml, or quoted on a command line

    @property
    def logs_dir(self) -> Path:
        return Path(self.get("logs.dir")).expanduser()

    def made_dir(self, key: str) -> Path:
        """The directory of `key` ("data.dir" or "logs.dir"), made with its parents if missing.
        Raises ConfigError naming key, value, where it was set and why it cannot be made (under
        /proc, a read-only disk, no permission) or written in, not a bare OSError."""
        path = self.data_dir if key == "data.dir" else self.logs_dir
        said = f"{key} = {_shown(self.get(key))} (from {_origin(self.origins, key)})"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{said}: cannot be made ({exc.strerror or exc}): expected {_DIRECTORY}") from None
        if not os.access(path, os.W_OK | os.X_OK):  # False on a read-only file system, for root too
            raise ConfigError(f"{said}: cannot be written (a read-only file system, or no permission): expected a "
                              "directory mass can write in")
        return path

    @property
    def db_dir(self) -> Path:
        return self.data_dir / "db"

    def secret(self, name: str) -> str | None:
        return self.secrets.get(name)

    def secret_values(self) -> list[str]:
        """Every value that must never be shown: the secrets (.env, environment) but the SMTP user
        name (masked in `mass config`, but a user name such as "mass" is not worth blanking out of
        every line), settings marked secret, and the password of any URL in the configuration
        (`postgresql://user:PASSWORD@…`)."""
        out = [v for k, v in self.secrets.items() if v and k not in NOT_REDACTED]
        for key, setting in SETTINGS.items():
            if setting.secret:
                try:
                    value = self.get(key)
                except (KeyError, TypeError):
                    continue
                if value:
                    out.append(str(value))
        out.extend(_url_passwords(self.tree))
        return out

    def masked(self) -> dict[str, Any]:
        """The effective configuration with every secret masked, for `mass config`."""
        out = Redactor(self.secret_values()).value(copy.deepcopy(self.tree))  # a URL's password
        out["secrets"] = {name: mask(value) for name, value in sorted(self.secrets.items())}
        out["origins"] = dict(sorted(self.origins.items()))
        return out


def _url_passwords(node: Any) -> list[str]:
    """Passwords inside URLs anywhere in a configuration tree."""
    if isinstance(node, dict):
        return [p for v in node.values() for p in _url_passwords(v)]
    if isinstance(node, list):
        return [p for v in node for p in _url_passwords(v)]
    if isinstance(node, str) and "://" in node and "@" in node:
        try:
            password = urlsplit(node).password
        except ValueError:
            return []
        return [password] if password else []
    return []


def load_config(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    dotenv_file: Path | None = Path(".env"),
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the effective configuration. Raises ConfigError on the first bad value."""
    tree = copy.deepcopy(DEFAULTS)
    origins: dict[str, str] = {}
    # A ./mass.toml that is not a file (a directory, a device) is an error, as it is given with --config.
    if config_file is None and Path("mass.toml").exists():
        config_file = Path("mass.toml")
    if config_file is not None:
        _merge(tree, _read_toml(Path(config_file)), "", str(config_file), origins)

    environ: dict[str, str] = {}
    dotenv: dict[str, str] = {}
    if dotenv_file is not None and Path(dotenv_file).is_file():
        from dotenv import dotenv_values  # here: its import (~20 ms) is paid only where there is a .env

        try:
            dotenv = {k: v for k, v in dotenv_values(dotenv_file).items() if v is not None}
        except UnicodeDecodeError as exc:
            raise ConfigError(f".env file {dotenv_file} is not UTF-8 text (offset {exc.start}): "
                              f"expected NAME=value lines in UTF-8") from None
        environ.update(dotenv)
    process_env = os.environ if env is None else env
    environ.update(process_env)

    for key, setting in SETTINGS.items():
        if setting.env and setting.env in environ:
            # where the value came from as the user wrote it: the environment wins over .env
            where = f"environment {setting.env}" if setting.env in process_env else f"{dotenv_file} {setting.env}"
            _set(tree, key, _coerce(key, environ[setting.env], where))
            origins[key] = where
    if "LOCATION_LAT" in environ or "LOCATION_LON" in environ:
        tree["stations"] = [_station_from_env(environ)]
        origins["stations"] = "environment LOCATION_LAT/LOCATION_LON"

    for key, value in (overrides or {}).items():
        if value is None:
            continue
        _set(tree, key, _coerce(key, value, "command line"))
        origins[key] = "command line"

    _check_tables(tree, origins)
    _check_stations(tree["stations"], origins)
    secrets = {name: environ[name] for name in SECRET_ENV if environ.get(name)}
    return Config(tree=tree, secrets=secrets, origins=origins, config_file=config_file)


def _station_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": environ.get("LOCATION_NAME", "local")}
    pairs = (("lat", "LOCATION_LAT", "latitude", 90.0), ("lon", "LOCATION_LON", "longitude", 180.0))
    for key, name, what, limit in pairs:
        raw = environ.get(name)
        if raw is None:
            other = "LOCATION_LON" if name == "LOCATION_LAT" else "LOCATION_LAT"
            raise ConfigError(f"{name} is not set (environment, with {other} = {environ[other]!r}): expected a "
                              f"{what} in [-{limit:g}, {limit:g}]; a station from the environment needs both")
        try:
            value = float(raw)
            if not -limit <= value <= limit:
                raise ValueError
        except ValueError:
            raise ConfigError(f"{name} = {raw!r} (from environment {name}): expected a {what} in "
                              f"[-{limit:g}, {limit:g}]") from None
        out[key] = value
    return out


def _check_stations(stations: list[dict[str, Any]], origins: Mapping[str, str]) -> None:
    """Station names are unique (their shape is checked with the other tables)."""
    names = [st["name"] for st in stations]
    for i, name in enumerate(names):
        if name in names[:i]:
            # Two stations under one name would share detector state and alert episodes.
            raise ConfigError(f"stations[{i}].name = {name!r} (from {_origin(origins, 'stations')}): expected a "
                              f"name no other station has (stations[{names.index(name)}] has it)")


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
