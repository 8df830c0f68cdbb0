"""How every HTTP error looks to a client: a JSON body with the error's name and a precise detail
(``bot.contracts.errors.ErrorBody``, the schema the OpenAPI document gives every error status)."""

from __future__ import annotations

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

from bot.contracts.errors import ErrorBody


def json_http_error(error: HTTPException) -> Response:
    response = jsonify(ErrorBody(error=error.name, detail=str(error.description)).body())
    response.status_code = error.code or 500
    # Keep what the exception says beyond its body: Allow on 405, WWW-Authenticate on 401, ...
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response
