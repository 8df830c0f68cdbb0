"""WSGI entry point for gunicorn (see Procfile): ``gunicorn -c gunicorn.conf.py wsgi:app``.

``prepare_process`` (``.env``, logging) runs again here for any other WSGI server; it is idempotent.
"""

from bot.services import prepare_process
from bot.web import create_app

prepare_process()
app = create_app()
