"""Gunicorn's own lines (``gunicorn.error``, ``gunicorn.access``) in the format of ``bot.logs``.

``GunicornLogger`` is the ``logger_class`` of ``gunicorn.conf.py`` and of ``python -m bot serve``: gunicorn keeps
its handlers (errors to stderr, the access log to stdout with ``accesslog = "-"``), each given our formatter and
request-id filter. An access line carries the request id the app put in its ``X-Request-Id`` response header,
both as the line's request id and in the line itself (``ACCESS_LOG_FORMAT``).
"""

from __future__ import annotations

import os

from gunicorn.glogging import Logger

from bot.logs import RequestIdFilter, formatter_for, request_id_scope

ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" request_id=%({x-request-id}o)s'
REQUEST_ID_HEADER = "X-Request-Id"


class GunicornLogger(Logger):
    def setup(self, cfg) -> None:  # noqa: ANN001 (gunicorn's Config)
        super().setup(cfg)
        formatter = formatter_for(os.environ)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
                if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
                    handler.addFilter(RequestIdFilter())

    def access(self, resp, req, environ, request_time) -> None:  # noqa: ANN001 (gunicorn's objects)
        request_id = next((v for k, v in resp.headers or () if k.lower() == REQUEST_ID_HEADER.lower()), None)
        with request_id_scope(request_id):
            super().access(resp, req, environ, request_time)


__all__ = ["ACCESS_LOG_FORMAT", "REQUEST_ID_HEADER", "GunicornLogger"]
