"""``MediaFetcher``: one media URL of a Twilio message, downloaded safely or refused with the reason.

- Only URLs on Twilio's API origin (``TWILIO_API_BASE``) are fetched, with the account's basic auth; Twilio answers
  with a redirect to its CDN, which is followed (at most ``MAX_REDIRECTS``) *without* the credentials (only the
  first request carries them, so they never reach another host).
- The declared type (``MediaContentTypeN``) and the type the server answers with must both be on the allow-list
  (parameters such as ``; codecs=opus`` ignored); anything else is not read.
- ``Content-Length`` over the cap is refused before reading; the body is streamed and dropped at the cap.
- Each request has a connect and read timeout, and all of one message's fetches share a deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from bot.media.settings import MediaSettings

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
AUDIO_TYPES = frozenset({"audio/ogg", "audio/opus", "audio/amr", "audio/mp4", "audio/mpeg"})
ALLOWED_TYPES = IMAGE_TYPES | AUDIO_TYPES
MAX_REDIRECTS = 3
CHUNK = 64 * 1024

# What became of one media item (inbound_media.status).
FETCHED = "fetched"
TOO_LARGE = "too_large"
REFUSED_TYPE = "refused_type"
REFUSED_HOST = "refused_host"
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"


def plain_type(content_type: str | None) -> str:
    """``audio/ogg; codecs=opus`` -> ``audio/ogg``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Fetched:
    status: str
    content_type: str | None = None
    data: bytes | None = None
    error: str | None = None


class MediaFetcher:
    def __init__(
        self,
        settings: MediaSettings,
        api_base: str,
        account_sid: str | None = None,
        auth_token: str | None = None,
    ) -> None:
        self.settings = settings
        self.origin = _origin(api_base)
        self.auth = (account_sid, auth_token) if account_sid and auth_token else None

    def fetch(self, url: str, declared_type: str | None, deadline: float) -> Fetched:
        """Download ``url`` before ``deadline`` (``time.monotonic``); never raises for what the network does."""
        declared = plain_type(declared_type)
        if declared and declared not in ALLOWED_TYPES:
            return Fetched(REFUSED_TYPE, declared, error=f"declared type {declared} is not accepted")
        if _origin(url) != self.origin:
            return Fetched(REFUSED_HOST, declared or None, error="not on Twilio's API origin")
        import httpx  # here, not at import: commands that never fetch media do not load it

        try:
            with httpx.Client(follow_redirects=False) as client:
                return self._follow(client, url, declared, deadline)
        except httpx.TimeoutException as exc:
            return Fetched(TIMEOUT, declared or None, error=f"{type(exc).__name__}: no answer in time")
        except httpx.HTTPError as exc:
            return Fetched(UNREACHABLE, declared or None, error=f"{type(exc).__name__}: {exc}"[:300])

    def _follow(self, client, url: str, declared: str, deadline: float) -> Fetched:  # noqa: ANN001 (httpx.Client)
        import httpx

        for hop in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Fetched(TIMEOUT, declared or None, error="out of time for this message's media")
            # Credentials go with the request to Twilio only: the CDN URL it redirects to is pre-signed, and
            # needs none, whichever host it names.
            auth = self.auth if hop == 0 else None
            timeout = httpx.Timeout(min(self.settings.timeout_s, remaining))
            with client.stream("GET", url, auth=auth, timeout=timeout) as response:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        return Fetched(
                            UNREACHABLE, declared or None, error=f"HTTP {response.status_code} without Location"
                        )
                    url = urljoin(url, location)
                    if urlsplit(url).scheme not in ("http", "https"):
                        return Fetched(UNREACHABLE, declared or None, error="redirected off HTTP")
                    continue
                if response.status_code != 200:
                    return Fetched(UNREACHABLE, declared or None, error=f"HTTP {response.status_code}")
                return self._body(response, declared, deadline)
        return Fetched(UNREACHABLE, declared or None, error=f"more than {MAX_REDIRECTS} redirects")

    def _body(self, response, declared: str, deadline: float) -> Fetched:  # noqa: ANN001 (httpx.Response)
        served = plain_type(response.headers.get("content-type"))
        if served not in ALLOWED_TYPES:
            return Fetched(REFUSED_TYPE, served or None, error=f"served as {served or 'no type'}, not accepted")
        cap = self.settings.max_bytes
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > cap:
            return Fetched(TOO_LARGE, served, error=f"{length} bytes, over the {cap}-byte cap")
        body = bytearray()
        for chunk in response.iter_bytes(CHUNK):
            body += chunk
            if len(body) > cap:
                return Fetched(TOO_LARGE, served, error=f"over the {cap}-byte cap")
            if time.monotonic() > deadline:
                return Fetched(TIMEOUT, served, error="out of time while reading")
        if not body:
            return Fetched(UNREACHABLE, served, error="empty body")
        return Fetched(FETCHED, served, bytes(body))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = -1
    return parts.scheme, (parts.hostname or "").lower(), port
