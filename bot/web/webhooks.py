"""Twilio's webhooks: ``POST /webhook/whatsapp`` (customer messages) and ``POST /webhook/twilio/status``.

The inbound webhook only checks and stores: signature first (403, nothing stored), then the form (400
with the reason), then the message is written to the durable queue (or, while the worker process holds the
database's write lock, to the spool beside it: ``bot.inbound.spool``) and empty TwiML is returned at once;
a worker writes and sends the reply later, so Twilio's 15-second limit never meets a slow provider. A
redelivered ``MessageSid``, or the same signed payload under any other cut of its fields, is acknowledged
the same way and stored once. No path answers 500: a database that cannot take the message answers 503
so that Twilio delivers it again.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, abort, request
from werkzeug.exceptions import HTTPException

from bot.messaging.twilio_gateway import ERROR_REASONS
from bot.web.app_services import current_services
from bot.web.errors import json_http_error
from bot.whatsapp.runtime import STATUS_CALLBACK_PATH, WhatsAppRuntime
from bot.whatsapp.signatures import SignatureRefused, signed_url, verify_signature
from bot.whatsapp.twilio_form import MalformedWebhook, inbound_from_twilio_form, twilio_message_sid

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SQLITE_MAX_INTEGER = 2**63 - 1
FORM_TYPE = "application/x-www-form-urlencoded"
RETRY_AFTER_S = 30  # on a 503: Twilio retries only with connection overrides (see README, Deploying)

blueprint = Blueprint("whatsapp_webhooks", __name__)


def init_app(app: Flask, services: Services) -> None:
    """Register the webhooks and start this process's background threads: the spool's mover when the spool
    holds messages, and the workers (WHATSAPP_WORKER_THREADS)."""
    runtime = services.whatsapp
    app.register_blueprint(blueprint)
    runtime.start_spool_mover()
    runtime.start_workers()


def _runtime() -> WhatsAppRuntime:
    return current_services().whatsapp


def _twiml(status: int = 200) -> Response:
    response = Response(EMPTY_TWIML, status=status, mimetype="text/xml")
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _store_failed(runtime: WhatsAppRuntime, what: str) -> Response:
    """503 so that Twilio delivers again; this thread's connection is dropped, since one opened while the file
    could not be written stays read-only after the outage."""
    log.exception("could not store %s", what)
    runtime.store.close()
    return _twiml(503)


def _verify_twilio(runtime: WhatsAppRuntime) -> str:
    """The digest of the signed payload; 400 for a body that is not a form, 403 for a missing or forged signature."""
    if request.mimetype != FORM_TYPE:
        abort(400, description=f"expected Content-Type {FORM_TYPE}, got {request.mimetype or 'none'}")
    url = signed_url(runtime.settings, request.url, request.path, request.query_string.decode("latin-1"))
    try:
        return verify_signature(runtime.settings, url, request.form, request.headers)
    except SignatureRefused as exc:
        log.warning("refused webhook %s from %s: %s", request.path, request.remote_addr, exc)
        abort(403, description=str(exc))


@blueprint.post("/webhook/whatsapp")
def whatsapp_inbound() -> Response:
    runtime = _runtime()
    digest = _verify_twilio(runtime)
    try:
        message = inbound_from_twilio_form(request.form, payload_digest=digest)
    except MalformedWebhook as exc:
        abort(400, description=str(exc))
    try:
        created = runtime.accept(message)  # or spooled, while the worker holds the database's lock
    except sqlite3.Error:  # not stored: Twilio's retry will bring it again
        return _store_failed(runtime, f"inbound message {message.message_sid}")
    if created:
        log.info("inbound message stored for the workers")  # the line's request id is its MessageSid
        runtime.wake_workers()
    return _twiml()


@blueprint.post(STATUS_CALLBACK_PATH)
def twilio_status() -> Response:
    runtime = _runtime()
    _verify_twilio(runtime)
    try:
        sid = twilio_message_sid(request.form)
    except MalformedWebhook as exc:
        abort(400, description=str(exc))
    status = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").strip()
    if not status:
        abort(400, description="MessageStatus is required")
    code_raw = (request.form.get("ErrorCode") or "").strip()
    try:
        code = int(code_raw) if code_raw else None
    except ValueError:
        code = -1
    if code is not None and not 0 <= code <= SQLITE_MAX_INTEGER:
        abort(400, description="ErrorCode must be a non-negative integer")
    outbound_raw = request.args.get("outbound", "")
    # Our own id in the callback URL: anything else (or too large for SQLite) is ignored, the sid still counts.
    outbound_id = int(outbound_raw) if outbound_raw.isdigit() and int(outbound_raw) <= SQLITE_MAX_INTEGER else None
    reason = _status_reason(code, request.form.get("ErrorMessage"))
    try:
        recorded = runtime.outbox.record_status(sid, status, code, reason, outbound_id)
    except sqlite3.Error:
        return _store_failed(runtime, f"the status of {sid}")
    if not recorded:
        log.warning("status callback for unknown message %s (%s)", sid, status)
    return Response(status=204)


@blueprint.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    """Twilio must never see a 500: an unexpected error answers 503, so Twilio delivers the request again."""
    if isinstance(error, HTTPException):  # this handler shadows the app's for HTTP errors too
        return json_http_error(error)
    log.exception("unexpected error on %s", request.path)
    return _twiml(503)


def _status_reason(code: int | None, message: str | None) -> str | None:
    if code is None:
        return None
    known = ERROR_REASONS.get(code, "Twilio error")
    return f"{known}: {message}"[:300] if message else known
