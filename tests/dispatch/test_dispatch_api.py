"""The staff routes of dispatch (``bot.web.dispatch_api``) in the app the factory builds: bearer token, shapes
(every response checked against the generated document by the suite's watch), and the domain's refusals as
400 / 404 / 409."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient

from bot.web import create_app
from tests.dispatch.conftest import CUSTOMER, World

TOKEN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def app_for(world: World, provider_env: dict[str, str], token: str | None = TOKEN) -> FlaskClient:
    """The app of another process on the world's database (its own ``Dispatch``: state is in the store)."""
    env = {**provider_env, "WHATSAPP_WORKER_THREADS": "0", **({"ADMIN_API_TOKEN": token} if token else {})}
    app = create_app({"TESTING": True, "DATABASE_PATH": str(world.store.path), "PROVIDER_ENV": env})
    return app.test_client()


@pytest.fixture
def client(world: World, provider_env: dict[str, str]) -> FlaskClient:
    return app_for(world, provider_env)


def test_routes_need_the_admin_token(world: World, client: FlaskClient, provider_env: dict[str, str]) -> None:
    assert client.get("/api/requests").status_code == 401
    assert client.get("/api/artisans", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert app_for(world, provider_env, token=None).get("/api/requests", headers=AUTH).status_code == 403


def test_the_artisan_directory(client: FlaskClient) -> None:
    created = client.post(
        "/api/artisans",
        json={"name": "Alain", "whatsapp": "+237690000001", "trades": ["plomberie"], "quartiers": ["Ndokoti"]},
        headers=AUTH,
    )
    assert created.status_code == 201
    artisan = created.get_json()
    assert artisan["id"] == 1 and artisan["whatsapp"] == "+237690000001" and artisan["quartiers"] == ["Ndokoti"]
    assert created.headers["Location"] == "/api/artisans/1"

    duplicate = client.post(
        "/api/artisans", json={"name": "Bis", "whatsapp": "+237690000001", "trades": ["plomberie"]}, headers=AUTH
    )
    assert duplicate.status_code == 409 and "already in the directory" in duplicate.get_json()["detail"]
    bad = client.post("/api/artisans", json={"name": "X", "whatsapp": "+237690000002", "trades": ["x"]}, headers=AUTH)
    assert bad.status_code == 400 and bad.get_json()["field"] == "trades"
    assert client.post("/api/artisans", json={"name": "X"}, headers=AUTH).get_json()["field"] == "trades"
    assert client.post("/api/artisans", data="[1]", headers=AUTH).status_code == 400

    patched = client.patch("/api/artisans/1", json={"trades": ["plomberie", "electricite"]}, headers=AUTH)
    assert patched.get_json()["trades"] == ["plomberie", "electricite"]
    paused = client.delete("/api/artisans/1", headers=AUTH)
    assert paused.status_code == 200 and paused.get_json()["active"] is False
    assert client.get("/api/artisans?active=false", headers=AUTH).get_json()["artisans"][0]["name"] == "Alain"
    assert client.get("/api/artisans?active=true", headers=AUTH).get_json() == {"artisans": []}
    assert client.get("/api/artisans/9", headers=AUTH).status_code == 404


def test_requests_list_detail_status_and_csv(world: World, client: FlaskClient) -> None:
    alain = world.artisan("Alain", "+237690000001")
    first = world.confirmed_request()
    second = world.confirmed_request(customer="+237699000002", location="Deido")
    world.dispatch.start(first)
    world.dispatch.start(second)

    page = client.get("/api/requests?limit=1", headers=AUTH).get_json()
    assert [r["id"] for r in page["requests"]] == [second] and page["next"] == str(second)
    rest = client.get(f"/api/requests?limit=1&cursor={page['next']}", headers=AUTH).get_json()
    assert [r["id"] for r in rest["requests"]] == [first] and rest["next"] is None
    assert client.get("/api/requests?quartier=deido", headers=AUTH).get_json()["requests"][0]["id"] == second
    assert client.get("/api/requests?status=nope", headers=AUTH).get_json()["field"] == "status"

    assigned = client.post(
        f"/api/requests/{first}/status",
        json={"status": "assigned", "artisan_id": alain.id, "note": "au téléphone", "by": "marie"},
        headers=AUTH,
    )
    assert assigned.status_code == 200
    assert assigned.get_json()["request"]["artisan"]["name"] == "Alain"
    refused = client.post(f"/api/requests/{first}/status", json={"status": "assigned", "artisan_id": alain.id},
                          headers=AUTH)  # fmt: skip
    assert refused.status_code == 409
    assert refused.get_json() == {
        "error": "Conflict",
        "detail": f"request {first} is assigned: it is already assigned to artisan {alain.id}",
        "current": "assigned",
        "target": "assigned",
    }
    done = client.post(f"/api/requests/{first}/status", json={"status": "done"}, headers=AUTH)
    assert done.status_code == 200
    illegal = client.post(f"/api/requests/{first}/status", json={"status": "in_progress"}, headers=AUTH)
    assert illegal.status_code == 409 and "closed" in illegal.get_json()["detail"]
    assert client.post("/api/requests/99/status", json={"status": "done"}, headers=AUTH).status_code == 404
    assert client.post(f"/api/requests/{first}/status", json={"by": "x"}, headers=AUTH).get_json()["field"] == "status"

    detail = client.get(f"/api/requests/{first}", headers=AUTH).get_json()
    assert detail["customer"] == CUSTOMER and detail["status"] == "done"
    assert {"conversation", "offers", "events", "messages"} <= set(detail)
    assert [e["actor"] for e in detail["events"] if e["kind"] == "status"] == ["admin:marie", "admin:api"]

    exported = client.get("/api/requests.csv?status=done", headers=AUTH)
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [(r["id"], r["artisan_name"]) for r in rows] == [(str(first), "Alain")]
