"""Every response the suite gets from a documented route is checked against the app's own published OpenAPI
document, so a route that drifts from its models fails the test that made the request.

``ContractWatch.observe`` listens to Flask's ``request_finished`` for every app the suite builds (test clients
and the loopback servers alike). For a route whose view carries a contract it checks that the status is one
the document lists and that the JSON body validates against that status's schema; for a 2xx it also checks
that the JSON body the route accepted is one the document declares valid (a route must not accept what its
document refuses). Mismatches are kept for ``tests/conftest.py`` to fail the test with, and every
(app, method, path, status) seen is kept so coverage can be asserted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request, request_finished
from jsonschema import Draft202012Validator

from bot.contracts import contract_of
from bot.web.app_services import services_of
from bot.web.contracts import document_of

RULE_TO_PATH = str.maketrans({"<": "{", ">": "}"})


@dataclass(frozen=True)
class Seen:
    app: int  # id() of the app
    method: str
    path: str
    status: int


@dataclass
class ContractWatch:
    mismatches: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    _validators: dict[tuple[int, str], Draft202012Validator] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, app: Flask, response: Response, **_: Any) -> None:
        rule = request.url_rule
        if rule is None or request.method in ("HEAD", "OPTIONS"):
            return  # no route matched (404, 405): nothing was documented for it
        if contract_of(app.view_functions[rule.endpoint]) is None:
            return
        method, path, status = request.method.lower(), rule.rule.translate(RULE_TO_PATH), response.status_code
        document = published(app)
        operation = document["paths"][path][method]
        where = f"{method.upper()} {path} -> {status}"
        with self._lock:
            self.seen.append(Seen(id(app), method, path, status))
        declared = operation["responses"].get(str(status))
        if declared is None:
            self._mismatch(f"{where}: the document lists no such status for this route ({response.get_data()[:200]!r})")
            return
        [(media_type, content)] = declared["content"].items()
        if response.mimetype != media_type:
            self._mismatch(f"{where}: the body is {response.mimetype}, the document says {media_type}")
            return
        if media_type != "application/json":  # an export (CSV): its type is what the document can say of it
            return
        schema = content["schema"]
        self._validate(document, schema, response.get_json(), f"{where}: response body")
        if status < 300 and "requestBody" in operation and request.get_data(cache=True).strip():
            body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
            accepted = request.get_json(force=True, silent=True)
            self._validate(document, body_schema, accepted, f"{where}: accepted a request body the document refuses")

    def _validate(self, document: dict, schema: dict, instance: Any, what: str) -> None:
        key = (id(document), repr(schema))
        validator = self._validators.get(key)
        if validator is None:
            # The operation's schema refers to "#/components/..."; resolve it against the document's components.
            validator = self._validators[key] = Draft202012Validator({**schema, "components": document["components"]})
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        for error in errors[:3]:
            place = "/".join(str(p) for p in error.absolute_path) or "(root)"
            self._mismatch(f"{what}, at {place}: {error.message[:300]}")

    def _mismatch(self, text: str) -> None:
        with self._lock:
            self.mismatches.append(text)

    def operations_seen(self, app: Flask | None = None) -> set[tuple[str, str]]:
        with self._lock:
            return {(s.method, s.path) for s in self.seen if app is None or s.app == id(app)}


# One watch per session, connected once: the signal is sent by whichever app served the request. (Here, not in
# conftest.py, which is imported a second time as ``tests.conftest`` by the modules that import from it.)
WATCH = ContractWatch()
request_finished.connect(WATCH.observe, weak=False)


def published(app: Flask) -> dict[str, Any]:
    """The document the app serves at /api/openapi.json."""
    return document_of(app, [d.name for d in services_of(app).llm.service.deployments])


def documented_operations(app: Flask) -> set[tuple[str, str]]:
    return {(method, path) for path, operations in published(app)["paths"].items() for method in operations}
