"""The OpenAPI document: every route, request and response schemas, errors and status codes."""

from __future__ import annotations

import re
from typing import Any

import trio
from quart.typing import TestClientProtocol as Client
from quart_trio import QuartTrio

from sim.api.schemas import ErrorBody
from sim.app import create_app
from sim.settings import Settings

TOKEN = "openapi-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: served by quart-schema itself (the document and its viewer), not part of the API
# the document itself, its UI, and static files (hidden: not part of the API)
SELF = {"openapi", "swagger_ui", "static", "dashboard.static_file", "docs_assets.asset"}


def _app(settings: Settings) -> QuartTrio:
    return create_app(settings.replace(api_token=TOKEN), configure_logs=False)


async def _document(client: Client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = await response.get_json()
    return document


def _path(rule: str) -> str:
    """A werkzeug rule as an OpenAPI path: ``<user_id>`` → ``{user_id}``."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path][method.lower()]
    return operation


async def test_every_route_is_documented(settings: Settings) -> None:
    """Each route and method of the app is in /openapi.json with a summary and a 2xx response."""
    app = _app(settings)
    document = await _document(app.test_client())
    assert str(document["openapi"]).startswith("3.")
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SELF:
            continue
        for method in sorted(rule.methods or ()):
            if method in ("HEAD", "OPTIONS"):
                continue
            try:
                operation = _operation(document, method, _path(rule.rule))
            except KeyError:
                missing.append(f"{method} {rule.rule}")
                continue
            ok = [code for code in operation["responses"] if str(code).startswith("2")]
            assert ok, f"{method} {rule.rule} documents no 2xx response"
            for code in ok:
                assert operation["responses"][code]["content"], f"{method} {rule.rule} {code}"
            if not rule.endpoint.endswith(".static"):
                assert operation.get("summary"), f"{method} {rule.rule} has no summary"
    assert missing == [], f"routes missing from /openapi.json: {missing}"


async def test_api_operations_document_errors_and_security(settings: Settings) -> None:
    """/v1 and the dashboard's data: the error shape for 400/401/503, bearer security, bodies."""
    app = _app(settings)
    document = await _document(app.test_client())
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            assert operation["security"] == [{"bearer": []}], (method, path)
            for code in ("400", "401", "503"):
                response = operation["responses"][code]
                schema = response["content"]["application/json"]["schema"]
                assert schema["title"] == "ErrorBody", (method, path, code)
                assert response["description"], (method, path, code)
    enable = _operation(document, "PUT", "/v1/users/{user_id}/demo")
    body = enable["requestBody"]["content"]["application/json"]["schema"]
    assert {"videos", "comments", "dms", "live_per_minute", "seed"} <= set(body["properties"])
    assert {"200", "202", "413"} <= set(enable["responses"])
    metrics = _operation(document, "GET", "/metrics")["responses"]["200"]["content"]
    assert "text/plain" in metrics
    events = _operation(document, "GET", "/dashboard/events")["responses"]["200"]["content"]
    assert "text/event-stream" in events
    users = _operation(document, "GET", "/dashboard/api/users")
    assert {"200", "401", "503"} <= set(users["responses"])


async def test_real_answers_match_the_document(settings: Settings) -> None:
    """Real answers use documented status codes, and every error body has the documented shape."""
    app = _app(settings)
    with trio.fail_after(60):
        async with app.test_app() as test_app:
            client = test_app.test_client()
            document = await _document(client)
            user = "/v1/users/doc-user"
            calls: list[tuple[str, str, str, dict[str, Any]]] = [
                ("PUT", f"{user}/demo", "/v1/users/{user_id}/demo", {"json": {"videos": 1}}),
                ("PUT", f"{user}/demo", "/v1/users/{user_id}/demo", {"json": {}}),
                ("PUT", f"{user}/demo", "/v1/users/{user_id}/demo", {"json": {"videos": -1}}),
                ("GET", f"{user}/demo", "/v1/users/{user_id}/demo", {}),
                ("GET", "/v1/users/nobody/demo", "/v1/users/{user_id}/demo", {}),
                ("GET", "/v1/users/bad!id/demo", "/v1/users/{user_id}/demo", {}),
                ("GET", f"{user}/interactions?limit=0", "/v1/users/{user_id}/interactions", {}),
                ("GET", f"{user}/interactions", "/v1/users/{user_id}/interactions", {}),
                ("DELETE", f"{user}/demo", "/v1/users/{user_id}/demo", {}),
                ("GET", "/dashboard/api/users", "/dashboard/api/users", {}),
                ("GET", "/healthz", "/healthz", {}),
                ("GET", "/readyz", "/readyz", {}),
                ("GET", "/metrics", "/metrics", {}),
                ("GET", "/", "/", {}),
            ]
            seen = set()
            for method, url, path, kwargs in calls:
                response = await client.open(url, method=method, headers=AUTH, **kwargs)
                responses = _operation(document, method, path)["responses"]
                code = str(response.status_code)
                assert code in responses, f"{method} {url} answered {code}, not documented"
                seen.add(code)
                if response.status_code >= 400:
                    ErrorBody.model_validate(await response.get_json())
            assert {"200", "202", "400", "404"} <= seen
            unauthorized = await client.get(f"{user}/demo")
            assert unauthorized.status_code == 401
            ErrorBody.model_validate(await unauthorized.get_json())


async def test_docs_page_renders_the_document(settings: Settings) -> None:
    """/docs is an HTML page that loads /openapi.json."""
    response = await _app(settings).test_client().get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.content_type
    assert "/openapi.json" in (await response.get_data(as_text=True))
