"""Approved WhatsApp templates (Twilio Content API): how an outbound row carrying a ``content_sid`` is sent.

Outside someone's 24-hour window WhatsApp refuses free text (63016); only a template approved by Meta goes
through, sent with Twilio's ``ContentSid`` and ``ContentVariables`` instead of ``Body``. Such a row keeps in
``body`` the text the template renders to: what staff read, and what ``TwilioGateway.find_sent`` looks for
when a send's answer was lost.

``send_content_template`` is the gateway call. A row is recorded with its ``content_sid`` and
``content_variables`` (``OutboundMessage``) and sent by the one ``WhatsAppSender``, through the same outbox
states as free text (pending -> in_flight -> Twilio's status; a lost answer looked up at Twilio before any resend).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import requests
from twilio.base.exceptions import TwilioRestException

from bot.messaging.twilio_gateway import SendKind, SendOutcome, TwilioGateway, _never_sent, whatsapp_address


@dataclass(frozen=True)
class ContentTemplate:
    """A template message: Twilio's Content SID and the values of its ``{{n}}`` variables."""

    content_sid: str
    variables: Mapping[str, str]

    def variables_json(self) -> str:
        return json.dumps(dict(self.variables), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_row(cls, content_sid: str, variables_json: str | None) -> ContentTemplate:
        return cls(content_sid, json.loads(variables_json or "{}"))


def send_content_template(
    gateway: TwilioGateway, to: str, template: ContentTemplate, status_callback: str | None = None
) -> SendOutcome:
    """POST one template message (ContentSid + ContentVariables); never raises for Twilio or network errors.

    Classified exactly like ``TwilioGateway.send`` (same client, same error table).
    """
    try:
        message = gateway._client.messages.create(  # noqa: SLF001 - the gateway's own client and classification
            to=whatsapp_address(to),
            from_=gateway.from_number,
            content_sid=template.content_sid,
            content_variables=template.variables_json(),
            status_callback=status_callback,
        )
    except TwilioRestException as exc:
        return gateway._classify(exc)  # noqa: SLF001
    except (requests.Timeout, requests.ConnectionError) as exc:
        reason = gateway._scrub(f"network: {type(exc).__name__}: {exc}")  # noqa: SLF001
        return SendOutcome(SendKind.RETRY if _never_sent(exc) else SendKind.UNKNOWN, reason=reason)
    return SendOutcome(SendKind.ACCEPTED, sid=message.sid, status=message.status or "queued")
