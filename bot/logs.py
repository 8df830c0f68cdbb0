"""How every process logs: configured once, from LOG_LEVEL and LOG_FORMAT, with the request id on every line.

    LOG_LEVEL    DEBUG, INFO (default), WARNING, ERROR: of the root logger, so every ``bot.*`` line at that level
    LOG_FORMAT   text (default): ``2026-01-31T12:00:00.123Z INFO bot.whatsapp.worker [SM...] message``
                 json: one JSON object per line (time, level, logger, request_id, message, exc_info), for shippers

The request id says which message a line is about: a Twilio webhook's ``MessageSid``, a generated id for a web
request (``bot.web`` binds it per request), the ``MessageSid`` again in the worker that answers the message. It
lives in a context variable, so each thread (and each request) sees its own; ``-`` when there is none. Every line
goes through ``redact_secrets`` with the values of this process's key and token variables as known secrets.
LiteLLM's own handler is silenced (LITELLM_LOG=CRITICAL unless set) and the libraries that log each HTTP call at
INFO are kept to warnings, unless LOG_LEVEL=DEBUG. Nothing here imports Flask or gunicorn: ``bot.gunicorn_logs``
dresses gunicorn's own loggers the same way.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from bot.redaction import redact_secrets

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# Variables whose values never appear in a log line, whatever a library prints.
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
_HANDLER_MARK = "_djobea_handler"
# Libraries that log every HTTP call at INFO: kept to warnings unless LOG_LEVEL=DEBUG. Our own lines say what matters.
CHATTY_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore", "twilio.http_client")


class LogSettingsError(ValueError):
    """LOG_LEVEL or LOG_FORMAT has a value we do not know; the process stops before serving, naming it."""


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def request_id_scope(request_id: str | None) -> Iterator[None]:
    """Lines logged inside the block carry ``request_id``; the previous one is back afterwards."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts this context's request id on the record (``-`` without one); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = REQUEST_ID.get() or "-"
        return True


def _iso_time(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(TEXT_FORMAT)
        self.secrets = secrets

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return _iso_time(record)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):  # a handler someone added without our filter
            record.request_id = REQUEST_ID.get() or "-"
        return redact_secrets(super().format(record), known_secrets=self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: a traceback is a field, never extra lines."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
            "message": redact_secrets(record.getMessage(), known_secrets=self.secrets),
        }
        if record.exc_info:
            entry["exc_info"] = redact_secrets(self.formatException(record.exc_info), known_secrets=self.secrets)
        return json.dumps(entry, ensure_ascii=False)


def secrets_of(env: Mapping[str, str]) -> tuple[str, ...]:
    """The values of the key, token, secret and password variables of ``env``."""
    return tuple(v for k, v in env.items() if k.upper().endswith(SECRET_SUFFIXES) and v and len(v) >= 6)


def log_settings(env: Mapping[str, str]) -> tuple[int, str]:
    """(level, format) from LOG_LEVEL and LOG_FORMAT; ``LogSettingsError`` names a bad value."""
    level = (env.get("LOG_LEVEL") or "INFO").strip().upper()
    if level not in LEVELS:
        raise LogSettingsError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}")
    fmt = (env.get("LOG_FORMAT") or "text").strip().lower()
    if fmt not in FORMATS:
        raise LogSettingsError(f"LOG_FORMAT must be text or json, got {fmt!r}")
    return logging.getLevelName(level), fmt


def formatter_for(env: Mapping[str, str]) -> logging.Formatter:
    _, fmt = log_settings(env)
    secrets = secrets_of(env)
    return JsonFormatter(secrets) if fmt == "json" else TextFormatter(secrets)


def configure_logging(env: Mapping[str, str]) -> None:
    """Send every logger's records (root level LOG_LEVEL) to stderr in LOG_FORMAT. Calling it again replaces
    our handler instead of adding a second one, so each line is written once whoever configured first."""
    level, _ = log_settings(env)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(env))
    handler.addFilter(RequestIdFilter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # LiteLLM gives its loggers a stdout handler of its own at import; at CRITICAL it stays quiet and its records
    # reach ours through the root, formatted like every other line.
    os.environ.setdefault("LITELLM_LOG", "CRITICAL")
    logging.captureWarnings(True)  # Python warnings (a library's deprecation) become lines like any other


__all__ = [
    "REQUEST_ID",
    "LogSettingsError",
    "RequestIdFilter",
    "configure_logging",
    "current_request_id",
    "formatter_for",
    "new_request_id",
    "request_id_scope",
]
