"""Delivery channels. Each `send()` raises ChannelError (or an I/O error) on failure."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

import httpx

from mass_tui.alerts.manager import AlertEvent
from mass_tui.alerts.message import body, sms_text, subject

# Email-to-SMS gateways of US carriers (the seed's list).
SMS_GATEWAYS = {
    "att": "txt.att.net",
    "verizon": "vtext.com",
    "tmobile": "tmomail.net",
    "sprint": "messaging.sprintpcs.com",
    "uscellular": "email.uscc.net",
    "boost": "sms.myboostmobile.com",
    "cricket": "sms.cricketwireless.net",
    "googlefi": "msg.fi.google.com",
}


class ChannelError(RuntimeError):
    pass


class Channel(Protocol):
    name: str

    def send(self, event: AlertEvent) -> None: ...


class EmailChannel:
    """SMTP with STARTTLS whenever the server offers it (port 465: implicit TLS).

    Credentials are only ever sent over TLS: a server that offers no TLS gets
    no login, and the delivery fails with a clear error instead.
    """

    name = "email"

    def __init__(self, host: str, port: int, sender: str, recipients: list[str], *, user: str | None = None,
                 password: str | None = None, timeout: float = 10.0) -> None:
        if not sender or not recipients:
            raise ChannelError("email needs ALERT_EMAIL_FROM and ALERT_EMAIL_TO")
        self.host, self.port, self.sender, self.recipients = host, port, sender, recipients
        self.user, self.password, self.timeout = user, password, timeout

    def _message(self, event: AlertEvent) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Subject"] = subject(event)
        msg.set_content(body(event))
        return msg

    def send(self, event: AlertEvent) -> None:
        self.deliver(self._message(event))

    def deliver(self, msg: EmailMessage) -> None:
        context = ssl.create_default_context()
        if self.port == 465:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            secure = True
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            secure = False
        with smtp:
            smtp.ehlo()
            if not secure and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
                secure = True
            if self.user:
                if not secure:
                    raise ChannelError(f"{self.host}:{self.port} offers no TLS: refusing to send credentials")
                smtp.login(self.user, self.password or "")
            smtp.send_message(msg)


class SmsChannel(EmailChannel):
    name = "sms"

    def __init__(self, number: str, carrier: str, **email: object) -> None:
        gateway = SMS_GATEWAYS.get(carrier.lower().replace("-", "").replace(" ", ""))
        digits = "".join(ch for ch in number if ch.isdigit())
        if gateway is None:
            raise ChannelError(f"SMS_CARRIER = {carrier!r}: expected one of {', '.join(sorted(SMS_GATEWAYS))}")
        if len(digits) < 10:
            raise ChannelError(f"SMS_TO = {number!r}: expected a 10-digit phone number")
        super().__init__(recipients=[f"{digits[-10:]}@{gateway}"], **email)  # type: ignore[arg-type]

    def _message(self, event: AlertEvent) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = self.recipients[0]
        msg.set_content(sms_text(event))
        return msg


class _HttpChannel:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url, self.timeout = url, timeout

    def _post(self, payload: dict) -> None:
        response = httpx.post(self.url, json=payload, timeout=self.timeout)
        if response.status_code >= 300:
            raise ChannelError(f"{self.name} answered HTTP {response.status_code}")  # type: ignore[attr-defined]


class SlackChannel(_HttpChannel):
    """A Slack incoming webhook."""

    name = "slack"

    def send(self, event: AlertEvent) -> None:
        self._post({"text": f"*{subject(event)}*\n{body(event)}"})


class WebhookChannel(_HttpChannel):
    """Any HTTP endpoint that takes the alert record as JSON."""

    name = "webhook"

    def send(self, event: AlertEvent) -> None:
        self._post({**event.to_record(), "subject": subject(event), "text": body(event)})
