"""Polled HTTP sources: Open-Meteo (weather and air quality) and OpenWeatherMap.

One fetch per tick; the caller waits `next_delay()` before the next one, so
a slow API never stacks requests. Failures back off exponentially with
jitter, a 429 waits what its Retry-After says, and the source's state (up,
down since, next retry, last error) is there for the UI and the logs. A
401 from OpenWeatherMap stops that source: a bad key does not get better
by retrying. Every fetch has a total deadline and a body size cap, and no
response, however malformed, raises out of `poll()`.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import orjson

from sources.base import Poll, SourceState
from sources.normalize import OPEN_METEO_AIR, OPEN_METEO_WEATHER, NormalizeError, open_meteo_current, owm_weather
from sources.schema import Rejection
from sources.text import Redactor, safe_text

if TYPE_CHECKING:  # loaded when a source fetches, not when a replay imports this module
    import httpx

log = logging.getLogger(__name__)


@dataclass
class Backoff:
    base: float = 2.0
    cap: float = 300.0
    attempt: int = 0

    def next(self) -> float:
        self.attempt += 1
        delay = min(self.cap, self.base * 2 ** (self.attempt - 1))
        return delay * random.uniform(0.5, 1.0)  # "equal jitter": spread the retries of many stations

    def reset(self) -> None:
        self.attempt = 0


class FetchError(RuntimeError):
    def __init__(self, message: str, retry_after: float | None = None, fatal: bool = False,
                 body: bytes | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.fatal = fatal
        self.body = body


def retry_after_seconds(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class HttpSource:
    """Shared fetch, error and backoff handling; subclasses say what to fetch and how to read it.

    Each fetch has a total `deadline` (seconds, connect to last byte: httpx's own timeouts are per
    read, so a body trickling a byte at a time would never end) and a size cap `max_body` (bytes;
    the body is read in chunks and abandoned past it, never held whole). Anything a response makes
    go wrong, an exception out of a normaliser included, becomes a failed fetch or a quarantined
    payload, never an exception out of `poll()`. Error text quoted from a server is kept with its
    control characters escaped and every secret of the source (`secrets`) redacted.
    """

    name = "http"

    def __init__(self, client: httpx.Client, interval: float, backoff: Backoff | None = None, *,
                 deadline: float = 30.0, max_body: int = 8 * 1024 * 1024, secrets: tuple[str, ...] = ()) -> None:
        self.client = client
        self.interval = interval
        self.backoff = backoff or Backoff()
        self.deadline = deadline
        self.max_body = max_body
        self.redact = Redactor(secrets)
        self.state = SourceState(self.name)
        self._delay = 0.0

    def requests(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(station, url, params) to fetch this tick."""
        raise NotImplementedError

    def normalize(self, payload: Any, station: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _quote(self, text: str, limit: int = 200) -> str:
        """Text from a server, safe for logs and the status bar."""
        return safe_text(self.redact(text), limit)

    def _get_json(self, url: str, params: dict[str, Any]) -> Any:
        import httpx

        ends = time.monotonic() + self.deadline
        try:
            # No single wait may outlast the deadline; the chunk loop checks it between reads.
            timeout = httpx.Timeout(min(self.client.timeout.read or self.deadline, self.deadline))
            with self.client.stream("GET", url, params=params, timeout=timeout) as response:
                status = response.status_code
                if status == 429:
                    raise FetchError("HTTP 429 rate limited", retry_after_seconds(response.headers.get("Retry-After")))
                if status == 401:
                    raise FetchError(self._unauthorized(self._body(response, ends, 4096)), fatal=True)
                if status >= 400:
                    said = self._body(response, ends, 4096).decode("utf-8", "replace")
                    raise FetchError(f"HTTP {status}: {self._quote(said)}")
                content = self._body(response, ends, self.max_body, strict=True)
        except httpx.TimeoutException as exc:
            raise FetchError(f"timeout: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise FetchError(self._quote(f"{type(exc).__name__}: {exc}")) from None
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            raise FetchError("malformed body (not JSON)", body=self.redact.bytes(content[:4096])) from None

    def _body(self, response: httpx.Response, ends: float, cap: int, strict: bool = False) -> bytes:
        """Up to `cap` bytes of the body, read before the deadline `ends` (monotonic). With `strict`,
        a longer body or a missed deadline is a FetchError; otherwise the body is cut."""
        declared = response.headers.get("Content-Length", "")
        if strict and declared.isdigit() and int(declared) > cap:
            raise FetchError(f"body of {int(declared)} bytes is over the {cap}-byte limit (source.max_body_mb)")
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size > cap:
                if strict:
                    raise FetchError(f"body over the {cap}-byte limit (source.max_body_mb): cut unread")
                break
            if time.monotonic() > ends:
                if strict:
                    raise FetchError(f"no complete answer within {self.deadline:g} s "
                                     f"(source.fetch_deadline_seconds; {size} bytes came)")
                break
        return b"".join(parts)[:cap]

    def _unauthorized(self, body: bytes) -> str:
        return f"HTTP 401 unauthorized: {self._quote(body.decode('utf-8', 'replace'))}"

    def poll(self) -> Poll:
        """One tick: fetch every request; failures set the state and the delay before the next tick."""
        out = Poll()
        if self.state.stopped:
            return out
        now = time.time()
        self.state.fetches += 1
        try:
            for station, url, params in self.requests():
                payload = self._get_json(url, params)
                try:
                    message = self.normalize(payload, station)
                except Exception as exc:  # noqa: BLE001 - a payload a normaliser cannot read is quarantined
                    reason = exc if isinstance(exc, NormalizeError) else f"{type(exc).__name__}: {exc}"
                    out.rejected.append(Rejection(f"{self.name}: {self._quote(str(reason), 500)}",
                                                  self.redact.bytes(orjson.dumps(payload))))
                    continue
                if message is not None:
                    out.add(orjson.dumps(message), station)
        except FetchError as exc:
            self._failed(now, exc, out)
            return out
        if self.state.up is False:
            log.info("%s is back after %.0f s", self.name, now - (self.state.down_since or now))
        self.state.mark_up(now)
        self.backoff.reset()
        self._delay = self.interval
        return out

    def _failed(self, now: float, exc: FetchError, out: Poll) -> None:
        st = self.state
        if exc.body is not None:
            out.rejected.append(Rejection(f"{self.name}: {exc}", exc.body))
        if exc.fatal:
            st.mark_down(str(exc), None, now)
            st.stopped = True
            log.error("%s stopped: %s", self.name, st.last_error)
            return
        delay = self.backoff.next()
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        self._delay = delay
        st.mark_down(str(exc), delay, now)
        log.warning("%s down (%s); retry in %.1f s", self.name, st.last_error, delay)

    def next_delay(self) -> float:
        return self._delay


class OpenMeteoSource(HttpSource):
    """Open-Meteo `current=` for every station; air quality as variables of the same station."""

    name = "open-meteo"
    AIR_BASE = "https://air-quality-api.open-meteo.com/v1/air-quality"

    def __init__(self, client: httpx.Client, stations: list[dict[str, Any]], *, base: str,
                 air_base: str | None = AIR_BASE, interval: float = 60.0, backoff: Backoff | None = None,
                 **limits: Any) -> None:
        super().__init__(client, interval, backoff, **limits)
        self.stations = stations
        self.base = base
        self.air_base = air_base
        self._seen: dict[tuple[str, str], str] = {}

    def requests(self) -> list[tuple[str, str, dict[str, Any]]]:
        out = []
        for st in self.stations:
            where = {"latitude": st["lat"], "longitude": st["lon"]}
            out.append((st["name"], self.base, {**where, "current": OPEN_METEO_WEATHER, "wind_speed_unit": "ms"}))
            if self.air_base:
                out.append((st["name"], self.air_base, {**where, "current": OPEN_METEO_AIR}))
        return out

    def normalize(self, payload: Any, station: str) -> dict[str, Any] | None:
        message = open_meteo_current(payload, station, self.name)
        kind = "air" if "pm25_ugm3" in message or "pm10_ugm3" in message else "weather"
        if kind == "air":
            message["source"] = f"{self.name}-air"  # another product with its own time steps
        key = (station, kind)
        # Polling faster than the model's 15-minute steps returns the same
        # time again: store each observation once.
        if self._seen.get(key) == message["ts"]:
            return None
        self._seen[key] = message["ts"]
        return message


class OpenWeatherMapSource(HttpSource):
    name = "openweathermap"

    def __init__(self, client: httpx.Client, stations: list[dict[str, Any]], *, api_key: str, base: str,
                 units: str = "metric", interval: float = 60.0, backoff: Backoff | None = None,
                 **limits: Any) -> None:
        limits["secrets"] = (*limits.get("secrets", ()), api_key)
        super().__init__(client, interval, backoff, **limits)
        if not api_key:
            raise ValueError("OPENWEATHER_API_KEY is not set")
        self.stations, self.api_key, self.base, self.units = stations, api_key, base, units
        self._seen: dict[str, str] = {}

    def requests(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(st["name"], self.base, {"lat": st["lat"], "lon": st["lon"], "appid": self.api_key,
                                         "units": self.units}) for st in self.stations]

    def _unauthorized(self, body: bytes) -> str:
        return "OpenWeatherMap rejected the API key (HTTP 401): check OPENWEATHER_API_KEY"

    def normalize(self, payload: Any, station: str) -> dict[str, Any] | None:
        message = owm_weather(payload, station, self.units)
        if self._seen.get(station) == message["ts"]:
            return None
        self._seen[station] = message["ts"]
        return message
