"""``GET /admin`` (LLM providers) and ``GET /admin/demandes`` (service requests): the dashboard pages
(server-rendered shells + vanilla JS, no CDN).

The pages hold no data and need no token: their scripts ask for the admin token, keep it in sessionStorage
and read the admin API with it (``/api/llm/status`` and ``/api/llm/analytics``; ``/api/requests`` and
``/api/requests/<id>`` for the requests, filtered, each opened with its conversation), so the one place that
checks the token stays the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, make_response, render_template

if TYPE_CHECKING:
    from bot.services import Services

blueprint = Blueprint(
    "dashboard", __name__, template_folder="templates", static_folder="static", static_url_path="/admin/static"
)

# The page runs only its own script and talks only to this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@blueprint.get("/admin")
def admin_page() -> Any:
    return _page("admin.html")


@blueprint.get("/admin/demandes")
def requests_page() -> Any:
    return _page("demandes.html")


def _page(template: str) -> Any:
    response = make_response(render_template(template))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask, services: Services) -> None:
    """Register the dashboard page and its static files."""
    app.register_blueprint(blueprint)
