"""Gunicorn's configuration for the Procfile's web line (``gunicorn -c gunicorn.conf.py wsgi:app``).

Read by the master before it forks: ``.env`` is loaded and logging configured here (``bot.services.prepare_process``),
so every worker inherits the same handler, and gunicorn's own lines (errors on stderr, the access log on stdout) take
the same format (``bot.gunicorn_logs``): time, level, logger and request id on every line, JSON with LOG_FORMAT=json.
Workers, threads, bind address and timeout stay on the command line, where the Procfile shows them.
"""

import os

from bot.gunicorn_logs import ACCESS_LOG_FORMAT, GunicornLogger
from bot.services import prepare_process

prepare_process()

logger_class = GunicornLogger
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT
errorlog = "-"
