"""Every response, whatever its route or status, tells browsers not to sniff its type and not to leak its URL."""

from __future__ import annotations

import pytest

from tests.support import Harness

EXPECTED = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/", 200),
        ("get", "/no-such-route", 404),
        ("post", "/webhook/whatsapp", 403),  # unsigned
        ("post", "/webhook/chat", 400),  # not JSON
        ("get", "/api/llm/status", 403),  # no admin token configured
        ("get", "/metrics", 200),
    ],
)
def test_security_headers_on_every_response(harness: Harness, method: str, path: str, status: int) -> None:
    response = getattr(harness.client, method)(path, data={"x": "1"} if method == "post" else None)
    assert response.status_code == status
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (path, name)


def test_security_headers_on_a_signed_webhook(harness: Harness) -> None:
    response = harness.whatsapp("Bonjour")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
