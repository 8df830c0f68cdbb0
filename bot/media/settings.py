"""Settings of media fetching, read once from the environment (or a test's mapping) and checked.

MEDIA_MAX_BYTES          largest media file fetched (default 16 MiB, WhatsApp's own limit); a larger one is
                         refused from its Content-Length, or stopped at the cap while streaming
MEDIA_FETCH_TIMEOUT_S    connect and read timeout of one media request (default 10)
MEDIA_FETCH_TOTAL_S      time all media of one message may take together (default 30); what is not fetched by
                         then is noted as unreachable and the turn goes on
MEDIA_TURNS_AT_ONCE      turns carrying media one process works on at once (default 2): each holds its media's
                         bytes, and again as base64 for the model, from fetching through its model calls

Twilio's credentials and API base come from the WhatsApp settings: media URLs are fetched only from
TWILIO_API_BASE's origin, with TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN as HTTP basic auth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from bot.settings import env_number

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class MediaSettingsError(ValueError):
    """A media setting has a value we cannot use; the message names the variable. Raised at start-up."""


@dataclass(frozen=True)
class MediaSettings:
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout_s: float = 10.0
    total_s: float = 30.0
    turns_at_once: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MediaSettings:
        return cls(
            max_bytes=int(_number(env, "MEDIA_MAX_BYTES", DEFAULT_MAX_BYTES, minimum=1, integer=True)),
            timeout_s=_number(env, "MEDIA_FETCH_TIMEOUT_S", 10.0, minimum=0.1),
            total_s=_number(env, "MEDIA_FETCH_TOTAL_S", 30.0, minimum=0.1),
            turns_at_once=int(_number(env, "MEDIA_TURNS_AT_ONCE", 2, minimum=1, integer=True)),
        )


_number = partial(env_number, error=MediaSettingsError)
