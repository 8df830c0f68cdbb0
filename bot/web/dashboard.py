"""``GET /admin``: the dashboard page (server-rendered shell + vanilla JS, no CDN).

The page itself holds no data and needs no token: its script asks for the admin token, keeps it in
sessionStorage and reads ``/api/llm/status`` and ``/api/llm/analytics`` with it, so the one place
that checks the token stays the admin API.
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
    response = make_response(render_template("admin.html"))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask, services: Services) -> None:
    """Register the dashboard page and its static files."""
    app.register_blueprint(blueprint)
