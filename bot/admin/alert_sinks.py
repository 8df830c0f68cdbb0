"""Where alerts go: the log always, ``ALERT_WEBHOOK_URL`` (JSON POST) and the admin's WhatsApp when set.

The WhatsApp sender belongs to the conversation area; it is injected at wiring time as a plain
callable ``send_admin_whatsapp(text)``, so this module never imports it. Each sink reports failure by
raising; ``AlertSinks.deliver`` collects which sinks succeeded so a retry only repeats the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

import httpx

from bot.admin.settings import AdminSettings
from bot.redaction import redact_secrets

log = logging.getLogger("bot.alerts")

LOG, WEBHOOK, WHATSAPP = "log", "webhook", "whatsapp"


class AdminWhatsAppSender(Protocol):
    """Sends ``text`` to the admin WhatsApp number (the sender knows the number and the Twilio client)."""

    def __call__(self, text: str) -> None: ...


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str  # benched | recovered | all_down | all_recovered
    provider: str | None
    message: str
    advice: str | None
    at: float
    event_id: int | None

    @property
    def text(self) -> str:
        return f"[Djobea] {self.message}" + (f" {self.advice}" if self.advice else "")

    def payload(self) -> dict[str, object]:
        # "text" makes the payload usable as-is by Slack/Mattermost incoming webhooks.
        return {
            "text": self.text,
            "alert_id": self.id,
            "kind": self.kind,
            "provider": self.provider,
            "message": self.message,
            "advice": self.advice,
            "at": self.at,
            "event_id": self.event_id,
        }


class AlertSinks:
    def __init__(
        self,
        settings: AdminSettings,
        send_admin_whatsapp: AdminWhatsAppSender | Callable[[str], None] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.send_admin_whatsapp = send_admin_whatsapp
        self._http = http

    def names(self) -> list[str]:
        names = [LOG]
        if self.settings.alert_webhook_url:
            names.append(WEBHOOK)
        if self.settings.admin_whatsapp_number:
            if self.send_admin_whatsapp is None:
                log.info("ADMIN_WHATSAPP_NUMBER is set but no WhatsApp sender is wired: alerts skip WhatsApp")
            else:
                names.append(WHATSAPP)
        return names

    def deliver(self, alert: Alert, done: Collection[str]) -> tuple[set[str], list[str]]:
        """Send ``alert`` to each sink not in ``done``; returns (sinks now done, errors of the others)."""
        sent, errors = set(done), []
        for name in self.names():
            if name in sent:
                continue
            try:
                self._send(name, alert)
            except Exception as exc:  # one failing sink must not stop the others
                errors.append(redact_secrets(f"{name}: {type(exc).__name__}: {exc}")[:200])
            else:
                sent.add(name)
        return sent, errors

    def _send(self, name: str, alert: Alert) -> None:
        if name == LOG:
            log.warning("ALERT %s: %s", alert.kind, alert.text)
        elif name == WEBHOOK:
            response = self._client().post(self.settings.alert_webhook_url or "", json=alert.payload())
            response.raise_for_status()
        elif name == WHATSAPP and self.send_admin_whatsapp is not None:
            self.send_admin_whatsapp(alert.text)

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self.settings.alert_webhook_timeout_s)
        return self._http
