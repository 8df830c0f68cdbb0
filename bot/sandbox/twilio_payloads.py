"""What Twilio's Messages API (2010-04-01) really sends back: message resources, pages and error bodies.

Pure functions, like ``provider_payloads``: ``bot.sandbox.twilio_emulator`` decides when to answer what.

Faults (``TwilioFault``) and what each looks like::

    rate_limited     429 {"code": 20429, "message": "Too Many Requests"}   (+ Retry-After header)
    server_error     500 {"code": 20500, "message": "Internal Server Error"}
    unavailable      503 {"code": 20503, "message": "Service Unavailable"}
    invalid_number   400 {"code": 21211, "message": "Invalid 'To' Phone Number: ..."}
    outside_window   201 queued, then the message fails with error_code 63016 (as WhatsApp does: the REST call
                     succeeds and the status callback reports the failure)
    auth_failed      401 {"code": 20003, "message": "Authenticate"}
    answer_lost      the message is accepted and recorded, but its 201 comes only after ``LOST_ANSWER_AFTER_S``: a
                     client with any sane timeout never hears it (the answer lost on its way back)
    request_lost     nothing is recorded, and a 503 comes only after ``LOST_ANSWER_AFTER_S``: the request lost on
                     its way in, which the client cannot tell from a lost answer
"""

from __future__ import annotations

import email.utils
import json
import secrets
from typing import Any, Final, Literal, get_args

TwilioFault = Literal[
    "rate_limited", "server_error", "unavailable", "invalid_number", "outside_window", "auth_failed",
    "answer_lost", "request_lost",
]  # fmt: skip
TWILIO_FAULTS: Final[tuple[str, ...]] = get_args(TwilioFault)
API_VERSION: Final = "2010-04-01"
BODY_MAX_CHARS: Final = 1600
# Longer than any client timeout we use (TWILIO_TIMEOUT_S defaults to 10): the late answer is never read.
LOST_ANSWER_AFTER_S: Final = 60.0
JSON_TYPE: Final = "application/json; charset=utf-8"
OUTSIDE_WINDOW_MESSAGE: Final = (
    "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
)


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def http_date(at: float) -> str:
    """Twilio's RFC 2822 dates: 'Thu, 24 Aug 2023 05:01:45 +0000'."""
    return email.utils.formatdate(at, usegmt=False).replace("-0000", "+0000")


def message_resource(
    *,
    sid: str,
    account_sid: str,
    to: str,
    from_: str,
    body: str,
    status: str,
    created_at: float,
    num_media: int = 0,
    error_code: int | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": http_date(created_at),
        "date_sent": None if status in ("accepted", "queued") else http_date(created_at),
        "date_updated": http_date(created_at),
        "direction": "outbound-api",
        "error_code": error_code,
        "error_message": error_message,
        "from": from_,
        "messaging_service_sid": None,
        "num_media": str(num_media),
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": to,
        "uri": f"{uri}.json",
    }


def message_page(account_sid: str, messages: list[dict[str, Any]], page_size: int) -> dict[str, Any]:
    """A one-page list, shaped as twilio-python's ``Page`` expects (one data key plus paging metadata)."""
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json?PageSize={page_size}&Page=0"
    return {
        "messages": messages[:page_size],
        "end": max(0, min(len(messages), page_size) - 1),
        "first_page_uri": uri,
        "next_page_uri": None,
        "page": 0,
        "page_size": page_size,
        "previous_page_uri": None,
        "start": 0,
        "uri": uri,
    }


def error_body(status: int, code: int, message: str) -> bytes:
    return json.dumps(
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    ).encode()


def fault_error(fault: str, to: str) -> tuple[int, int, str] | None:
    """(HTTP status, Twilio code, message) of a fault; None for those that accept the message first (201)."""
    if fault == "rate_limited":
        return 429, 20429, "Too Many Requests"
    if fault == "server_error":
        return 500, 20500, "Internal Server Error"
    if fault in ("unavailable", "request_lost"):
        return 503, 20503, "Service Unavailable"
    if fault == "invalid_number":
        return 400, 21211, f"Invalid 'To' Phone Number: {to}"
    if fault == "auth_failed":
        return 401, 20003, "Authenticate"
    return None
