"""Every error body the web API answers: ``{"error", "detail"}`` (``bot.web.errors``, the admin guard) and the
limits' refusals ``{"error", "detail", "reason"}`` with ``Retry-After`` (``bot.web.limits``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.contracts import Reply, ResponseModel


class ErrorBody(ResponseModel):
    """Any 4xx/5xx: the HTTP status's name and a precise detail (which parameter, what is wrong with it)."""

    error: str = Field(description="the status's name, e.g. Bad Request")
    detail: str = Field(description="what is wrong, naming the field or parameter")


class RefusalBody(ResponseModel):
    """A request the limits turned away before any model was asked (``bot.web.limits``)."""

    error: Literal["Too Many Requests", "Service Unavailable"]
    detail: str
    reason: Literal["busy", "session_rate", "ip_rate", "daily_budget", "store_unavailable"]


def error(description: str) -> Reply:
    return Reply(ErrorBody, description)


ADMIN_ERRORS = {
    401: error("missing or wrong bearer token"),
    403: error("ADMIN_API_TOKEN is not configured: the admin API is disabled"),
}
# Any route, when the database refuses (disk full, read-only file): the app's sqlite3.Error handler in bot.web.
STORE_UNAVAILABLE = {
    503: Reply(ErrorBody, "the database cannot take this request now (disk full, read-only file)", retry_after=True)
}
# Flask answers a body over MAX_CONTENT_LENGTH (256 KiB) before the route runs.
TOO_LARGE = {413: error("the body is larger than 256 KiB")}
# Refused before any model is asked (bot.web.limits); a store failure later in the request is a 503 too.
REFUSALS = {
    429: Reply(
        RefusalBody,
        "too many requests this minute from this chat session (session_rate) or this client address (ip_rate), "
        "or the daily LLM budget is spent (daily_budget)",
        retry_after=True,
    ),
    503: Reply(
        RefusalBody,
        "every model slot of this server is taken (busy), or the database cannot take a write (store_unavailable)",
        retry_after=True,
    ),
}
