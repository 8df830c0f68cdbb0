# One image for both Procfile processes: `web` (gunicorn, the default command) and `worker` (answers messages,
# runs the scheduler).
# Run them on ONE host sharing ONE volume: they meet only through the SQLite file at DATABASE_PATH (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.db \
    PORT=8000

RUN useradd --create-home --uid 10001 --user-group djobea \
    && mkdir /data && chown djobea:djobea /data

WORKDIR /app
# Dependencies first: this layer is rebuilt only when the pins change.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The code stays root-owned and read-only to the service user; only /data is writable.
COPY wsgi.py gunicorn.conf.py ./
COPY router_config ./router_config
COPY bot ./bot

USER djobea
EXPOSE 8000

# Liveness: GET / answers while the process serves (no provider or database call). Readiness is /api/llm/health.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ.get('PORT', '8000'), timeout=4)"]

# The Procfile's web line; `exec` makes gunicorn PID 1, so `docker stop` (SIGTERM) reaches it and it exits gracefully.
CMD ["sh", "-c", "exec env WHATSAPP_WORKER_THREADS=0 gunicorn -c gunicorn.conf.py --workers ${WEB_CONCURRENCY:-2} --threads 4 --bind 0.0.0.0:${PORT:-8000} --timeout 60 wsgi:app"]
