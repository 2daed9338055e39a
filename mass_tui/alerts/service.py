"""Alerts wired together from the configuration: rules, episodes, channels, delivery."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from detectors.base import Anomaly
from mass_tui.alerts.channels import Channel, ChannelError, EmailChannel, SlackChannel, SmsChannel, WebhookChannel
from mass_tui.alerts.dispatch import Dispatcher
from mass_tui.alerts.manager import AlertConfigError, AlertEvent, AlertManager, rules_from_config
from mass_tui.config import Config, ConfigError
from sources.variables import REGISTRY

log = logging.getLogger(__name__)


def build_channels(config: Config) -> list[Channel]:
    a = config.get("alerts")
    timeout = a["timeout_seconds"]
    channels: list[Channel] = []
    try:
        email = {"host": a["smtp_host"], "port": a["smtp_port"], "sender": a["email_from"],
                 "user": config.secret("SMTP_USER"), "password": config.secret("SMTP_PASS"), "timeout": timeout}
        if a["smtp_host"] and a["email_to"]:
            channels.append(EmailChannel(recipients=a["email_to"], **email))
        if a["sms_enabled"]:
            if not a["smtp_host"]:
                raise ChannelError("SMS_ENABLED needs SMTP_HOST: the SMS goes through an email gateway")
            channels.append(SmsChannel(a["sms_to"], a["sms_carrier"], **email))
    except ChannelError as exc:
        raise ConfigError(f"alerts: {exc}") from None
    if url := config.secret("SLACK_WEBHOOK_URL"):
        channels.append(SlackChannel(url, timeout))
    if url := config.secret("ALERT_WEBHOOK_URL"):
        channels.append(WebhookChannel(url, timeout))
    return channels


class AlertService:
    def __init__(self, manager: AlertManager, dispatcher: Dispatcher) -> None:
        self.manager = manager
        self.dispatcher = dispatcher
        self.sent_events = 0

    @classmethod
    def from_config(cls, config: Config) -> AlertService:
        a = config.get("alerts")
        try:
            rules = rules_from_config(a["rules"])
        except AlertConfigError as exc:
            raise ConfigError(str(exc)) from None
        manager = AlertManager(
            rules,
            cooldown_s=a["cooldown_min"] * 60.0,
            repeat_s=a["repeat_min"] * 60.0,
            resolve_after_s=a["resolve_after_min"] * 60.0,
            notify_resolved=a["notify_resolved"],
            units={name: var.unit for name, var in REGISTRY.items()},
        )
        channels = build_channels(config)
        if not channels:
            log.warning("alerts are enabled but no channel is configured: alerts are only logged and stored")
        dispatcher = Dispatcher(channels, max_attempts=a["max_attempts"], retry_seconds=a["retry_seconds"])
        return cls(manager, dispatcher)

    def observe(self, anomalies: Iterable[Anomaly], clocks: Mapping[str, float]) -> list[AlertEvent]:
        events = self.manager.observe(anomalies, clocks)
        for event in events:
            self.dispatcher.submit(event)
        self.sent_events += len(events)
        return events

    def close(self, timeout: float = 10.0) -> None:
        self.dispatcher.close(timeout)
