"""The request id of each HTTP request (``bot.logs``): bound for the request's log lines, returned as ``X-Request-Id``.

A Twilio webhook's id is its ``MessageSid`` (read from the form only on the Twilio routes, and only when it looks
like a sid), so the webhook's lines, the worker's, ``llm_calls.request_id`` and the access log all carry the same
id; any other request gets a generated one. A client's own ``X-Request-Id`` is not trusted: it would let anyone
write what they like into our logs.
"""

from __future__ import annotations

import re

from flask import Flask, Response, request

from bot.logs import REQUEST_ID, new_request_id

REQUEST_ID_HEADER = "X-Request-Id"
TWILIO_PATHS = ("/webhook/whatsapp", "/webhook/twilio/")
SID_PATTERN = re.compile(r"[A-Za-z]{2}[0-9a-fA-F]{32}")


def init_app(app: Flask) -> None:
    @app.before_request
    def bind_request_id() -> None:
        REQUEST_ID.set(_twilio_sid() or new_request_id())

    @app.after_request
    def expose_request_id(response: Response) -> Response:
        request_id = REQUEST_ID.get()
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    @app.teardown_request
    def unbind_request_id(_error: BaseException | None) -> None:
        REQUEST_ID.set(None)  # the server's next request on this thread starts without one


def _twilio_sid() -> str | None:
    if not request.path.startswith(TWILIO_PATHS) or request.mimetype != "application/x-www-form-urlencoded":
        return None
    sid = (request.form.get("MessageSid") or request.form.get("SmsMessageSid") or "").strip()
    return sid if SID_PATTERN.fullmatch(sid) else None


__all__ = ["REQUEST_ID_HEADER", "init_app"]
