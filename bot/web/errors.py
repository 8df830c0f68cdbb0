"""How every HTTP error looks to a client: a JSON body with the error's name and a precise detail."""

from __future__ import annotations

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException


def json_http_error(error: HTTPException) -> Response:
    response = jsonify(error=error.name, detail=error.description)
    response.status_code = error.code or 500
    # Keep what the exception says beyond its body: Allow on 405, WWW-Authenticate on 401, ...
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response
