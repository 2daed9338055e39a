"""Delivery channels: each `send(notification)` delivers one notification or raises (ChannelError, OSError...).

Channels: email over SMTP, email-to-SMS, Slack, a webhook (mass's JSON,
Alertmanager's webhook JSON or CloudEvents), and `exec` (a command that
reads the JSON on stdin, killed after its timeout).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from typing import Protocol

from mass_tui.alerts.message import body, printable, sms_text, subject
from mass_tui.alerts.model import AlertEvent, Notification, as_notification
from mass_tui.alerts.payloads import FORMATS, render

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

    def send(self, notification: Notification | AlertEvent) -> None: ...


class EmailChannel:
    """SMTP with STARTTLS whenever the server offers it (port 465: implicit TLS).

    Credentials are only ever sent over TLS: a server that offers no TLS gets
    no login, and the delivery fails with a clear error instead. Headers are
    built with the SMTP policy (CRLF, folded at 78 columns) from text whose
    control characters are escaped, so data cannot inject a header.
    """

    name = "email"

    def __init__(self, host: str, port: int, sender: str, recipients: list[str], *, user: str | None = None,
                 password: str | None = None, timeout: float = 10.0) -> None:
        if not sender or not recipients:
            raise ChannelError("email needs ALERT_EMAIL_FROM and ALERT_EMAIL_TO")
        self.host, self.port, self.sender, self.recipients = host, port, sender, recipients
        self.user, self.password, self.timeout = user, password, timeout

    def _message(self, notification: Notification) -> EmailMessage:
        msg = EmailMessage(policy=SMTP)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Subject"] = printable(subject(notification))
        msg.set_content(body(notification))
        return msg

    def send(self, notification: Notification | AlertEvent) -> None:
        self.deliver(self._message(as_notification(notification)))

    def deliver(self, msg: EmailMessage) -> None:
        import smtplib  # here, not at import: a replay or a UI without email does not load it
        import ssl

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

    def _message(self, notification: Notification) -> EmailMessage:
        msg = EmailMessage(policy=SMTP)
        msg["From"] = self.sender
        msg["To"] = self.recipients[0]
        msg.set_content(sms_text(notification))
        return msg


class _HttpChannel:
    name = "http"

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url, self.timeout = url, timeout

    def _post(self, content: bytes, content_type: str) -> None:
        import httpx  # here, not at import: loading it costs a replay's start 50 ms

        response = httpx.post(self.url, content=content, headers={"Content-Type": content_type},
                              timeout=self.timeout)
        if response.status_code >= 300:
            raise ChannelError(f"{self.name} answered HTTP {response.status_code}")


class SlackChannel(_HttpChannel):
    """A Slack incoming webhook."""

    name = "slack"

    def send(self, notification: Notification | AlertEvent) -> None:
        import orjson

        n = as_notification(notification)
        self._post(orjson.dumps({"text": f"*{subject(n)}*\n{body(n)}"}), "application/json")


class WebhookChannel(_HttpChannel):
    """Any HTTP endpoint: mass's JSON, Alertmanager's webhook JSON (version 4) or CloudEvents."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 10.0, *, format: str = "mass", external_url: str = "") -> None:
        if format not in FORMATS:
            raise ChannelError(f"webhook format {format!r}: expected one of {', '.join(FORMATS)}")
        super().__init__(url, timeout)
        self.format, self.external_url = format, external_url

    def send(self, notification: Notification | AlertEvent) -> None:
        content_type, content = render(self.format, as_notification(notification), receiver=self.name,
                                       external_url=self.external_url)
        self._post(content, content_type)


class ExecChannel:
    """Runs a command with the notification's JSON on stdin; a non-zero exit or the timeout fails it.

    The command is a list (no shell). Past the timeout its whole process
    group is killed, so a hanging script cannot pile up.
    """

    name = "exec"

    def __init__(self, command: Sequence[str], timeout: float = 10.0, *, format: str = "alertmanager",
                 external_url: str = "") -> None:
        if not command:
            raise ChannelError("exec needs a command")
        if format not in FORMATS:
            raise ChannelError(f"exec format {format!r}: expected one of {', '.join(FORMATS)}")
        self.command, self.timeout, self.format, self.external_url = list(command), timeout, format, external_url

    def send(self, notification: Notification | AlertEvent) -> None:
        _, content = render(self.format, as_notification(notification), receiver=self.name,
                            external_url=self.external_url)
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise ChannelError(f"exec {self.command[0]}: {exc.strerror or exc}") from None
        try:
            _, err = proc.communicate(content, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ChannelError(f"exec {self.command[0]} did not finish within {self.timeout:g} s: killed") from None
        if proc.returncode != 0:
            tail = printable(err.decode("utf-8", "replace").strip()[-200:])
            raise ChannelError(f"exec {self.command[0]} exited {proc.returncode}: {tail}")
