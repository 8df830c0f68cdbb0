"""Gunicorn's configuration for the Procfile's web line (``gunicorn -c gunicorn.conf.py wsgi:app``).

Read by the master before it forks: ``.env`` is loaded and logging configured here (``bot.services.prepare_process``),
so every worker inherits the same handler, and gunicorn's own lines (errors on stderr, the access log on stdout) take
the same format (``bot.gunicorn_logs``): time, level, logger and request id on every line, JSON with LOG_FORMAT=json.
Workers, threads, bind address and timeout stay on the command line, where the Procfile shows them.

The app's modules are imported here too, in the master, before it forks (modules only: no app, no thread, no
database), and frozen out of the garbage collector's reach, so the workers share those pages instead of each
loading its own copy: the web line's PSS went from 152 to 103 MB (``python benchmarks/capacity.py``, README:
Capacity). LiteLLM is not among them, nor LangChain's prompts and parsers (they import LangSmith's tracing):
web processes call no model for WhatsApp (the worker process does).
"""

import gc
import os

from bot.gunicorn_logs import ACCESS_LOG_FORMAT, GunicornLogger
from bot.services import prepare_process

prepare_process()

import bot.web  # noqa: E402,F401 - the app's modules, every blueprint: shared with the workers (see above)
import bot.whatsapp.runtime  # noqa: E402,F401 - the WhatsApp area the app builds (its prompts wait for a turn)

gc.freeze()

logger_class = GunicornLogger
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT
errorlog = "-"
