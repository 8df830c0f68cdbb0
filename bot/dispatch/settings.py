"""Settings of the dispatch area, read once from the environment (or a test's mapping) and checked.

DISPATCH_BATCH              artisans offered a request at once (3)
DISPATCH_TIMEOUT_MIN        minutes a batch has to accept before the next batch is offered (10)
TWILIO_OFFER_CONTENT_SID    the approved WhatsApp template (HX...) an offer is sent as when the artisan's 24-hour
                            window is closed; without it such an artisan is skipped (free text would be refused)
WHATSAPP_WINDOW_HOURS       the free-form window after someone's last message (24), as in the WhatsApp area
ADMIN_WHATSAPP_NUMBER       the staff number told of each new confirmed request and of requests nobody accepted
ALERT_WEBHOOK_URL           the staff webhook (JSON POST) told the same
DISPATCH_QUARTIERS_FILE     another quartier table instead of bot/dispatch/quartiers.yaml
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bot.dispatch.quartiers import DEFAULT_PATH
from bot.settings import env_number

_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


class DispatchSettingsError(ValueError):
    """A dispatch setting has a value we cannot use; the message names the variable. Raised at start-up."""


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 3
    timeout_s: float = 600.0
    offer_content_sid: str | None = None
    window_s: float = 24 * 3600.0
    staff_whatsapp: str | None = None
    staff_webhook_url: str | None = None
    quartiers_path: Path = DEFAULT_PATH

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DispatchSettings:
        content_sid = (env.get("TWILIO_OFFER_CONTENT_SID") or "").strip() or None
        if content_sid is not None and not _CONTENT_SID.match(content_sid):
            raise DispatchSettingsError(
                f"TWILIO_OFFER_CONTENT_SID must be a Content SID (HX followed by 32 hex digits), got {content_sid!r}"
            )
        url = (env.get("ALERT_WEBHOOK_URL") or "").strip() or None
        if url is not None and not url.startswith(("http://", "https://")):
            raise DispatchSettingsError("ALERT_WEBHOOK_URL must start with http:// or https://")
        quartiers = (env.get("DISPATCH_QUARTIERS_FILE") or "").strip()
        return cls(
            batch_size=int(_number(env, "DISPATCH_BATCH", 3, minimum=1, integer=True)),
            timeout_s=60 * _number(env, "DISPATCH_TIMEOUT_MIN", 10, minimum=0.1),
            offer_content_sid=content_sid,
            window_s=3600 * _number(env, "WHATSAPP_WINDOW_HOURS", 24, minimum=0),
            staff_whatsapp=(env.get("ADMIN_WHATSAPP_NUMBER") or "").strip() or None,
            staff_webhook_url=url,
            quartiers_path=Path(quartiers) if quartiers else DEFAULT_PATH,
        )


_number = partial(env_number, error=DispatchSettingsError)
