"""WSGI entry point for gunicorn (see Procfile): ``gunicorn wsgi:app``."""

from bot.web import create_app

app = create_app()
