"""API authentication: bearer token on /v1/* and dashboard actions; probes stay open."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from quart.typing import TestClientProtocol as Client
from quart_trio import QuartTrio

from sim.app import create_app
from sim.settings import Settings

TOKEN = "s3cret-t0ken-for-tests"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
OPEN_PATHS = ("/healthz", "/readyz", "/metrics")
BAD_HEADERS: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": TOKEN},
    {"X-Api-Token": TOKEN},
]


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[tuple[QuartTrio, Client]]:
    """A started app (runtime and database up) and a test client for it."""
    app = create_app(settings, configure_logs=False)
    with trio.fail_after(60):
        async with app.test_app() as test_app:
            yield app, test_app.test_client()


def _path(rule: Any) -> str:
    """A concrete path for a URL rule: every variable becomes a valid user id."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "alice", str(rule.rule))


#: dashboard endpoints anyone may fetch: the page itself and its static files
DASHBOARD_OPEN = {"dashboard.page", "dashboard.static_file"}


def _guarded(app: QuartTrio) -> list[tuple[str, str]]:
    """(method, path) of every /v1 route and every dashboard action or data endpoint."""
    found = []
    for rule in app.url_map.iter_rules():
        methods = sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"})
        path = _path(rule)
        if path.startswith("/v1/"):
            found += [(m, path) for m in methods]
        elif rule.endpoint.startswith("dashboard.") and rule.endpoint not in DASHBOARD_OPEN:
            found += [(m, path) for m in methods]
    return found


async def _call(client: Client, method: str, path: str, headers: dict[str, str]) -> Any:
    return await client.open(path, method=method, headers=headers, json={"videos": 0, "dms": 0})


async def test_every_v1_route_and_dashboard_action_needs_the_token(settings: Settings) -> None:
    """With SIM_API_TOKEN set, each guarded route answers 401 JSON to any missing/bad token."""
    async with client_for(settings.replace(api_token=TOKEN)) as (app, client):
        guarded = _guarded(app)
        assert {m for m, p in guarded if p.startswith("/v1/users/alice/demo")} >= {
            "PUT",
            "GET",
            "DELETE",
        }
        assert ("GET", "/v1/users/alice/interactions") in guarded
        if "dashboard" in app.blueprints:
            assert ("GET", "/dashboard/api/users") in guarded
        for method, path in guarded:
            for headers in BAD_HEADERS:
                response = await _call(client, method, path, headers)
                assert response.status_code == 401, (method, path, headers)
                body = await response.get_json()
                assert body["error"]["code"] == "unauthorized", body
                assert body["error"]["message"]
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert response.content_type == "application/json"


async def test_the_right_token_is_let_through(settings: Settings) -> None:
    """The right bearer token reaches the handlers (the scheme name is case-insensitive)."""
    async with client_for(settings.replace(api_token=TOKEN)) as (_, client):
        missing = await client.get("/v1/users/alice/demo", headers=GOOD)
        lower = await client.get(
            "/v1/users/alice/demo", headers={"Authorization": f"bearer {TOKEN}"}
        )
        page = await client.get("/v1/users/alice/interactions", headers=GOOD)
        bad_id = await client.get("/v1/users/bad%20id/demo", headers=GOOD)
        bad_id_anonymous = await client.get("/v1/users/bad%20id/demo")
        off = await client.delete("/v1/users/alice/demo", headers=GOOD)
        board = await client.get("/dashboard/api/users", headers=GOOD)
    assert missing.status_code == 404 and lower.status_code == 404
    assert board.status_code == 200
    assert page.status_code == 200 and (await page.get_json())["items"] == []
    assert bad_id.status_code == 400
    assert bad_id_anonymous.status_code == 401  # no validation feedback before auth
    assert off.status_code == 404


async def test_enable_and_disable_work_with_the_token(settings: Settings) -> None:
    """A full on/status/off round trip succeeds with the token."""
    async with client_for(settings.replace(api_token=TOKEN)) as (_, client):
        on = await client.put(
            "/v1/users/alice/demo",
            headers=GOOD,
            json={"videos": 1, "comments": 0, "dms": 1, "live_per_minute": 0},
        )
        status = await client.get("/v1/users/alice/demo", headers=GOOD)
        off = await client.delete("/v1/users/alice/demo", headers=GOOD)
    assert on.status_code == 202, await on.get_json()
    assert status.status_code == 200
    assert off.status_code == 200 and (await off.get_json())["state"] == "disabled"


@pytest.mark.parametrize("token", [TOKEN, None])
async def test_probes_and_metrics_stay_open(settings: Settings, token: str | None) -> None:
    """/healthz, /readyz, /metrics and /openapi.json answer without any token."""
    async with client_for(settings.replace(api_token=token)) as (_, client):
        for path in (*OPEN_PATHS, "/openapi.json"):
            response = await client.get(path)
            assert response.status_code == 200, path


async def test_without_a_token_the_api_is_open(settings: Settings) -> None:
    """With SIM_API_TOKEN unset, /v1 needs no Authorization header (and ignores a bogus one)."""
    async with client_for(settings.replace(api_token=None)) as (_, client):
        plain = await client.get("/v1/users/alice/demo")
        bogus = await client.get("/v1/users/alice/demo", headers={"Authorization": "Bearer x"})
    assert plain.status_code == 404 and bogus.status_code == 404


def _open_api_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "SIM_API_TOKEN" in r.getMessage()
    ]


async def test_open_api_is_warned_about_once_at_start_up(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Unset token: exactly one start-up warning saying the API is open, none per request."""
    caplog.set_level(logging.WARNING)
    async with client_for(settings.replace(api_token=None)) as (_, client):
        for _ in range(3):
            await client.get("/v1/users/alice/demo")
    warnings = _open_api_warnings(caplog)
    assert len(warnings) == 1
    assert "open" in warnings[0].getMessage()


async def test_no_open_api_warning_with_a_token(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """With a token set there is no open-API warning, and the token itself is never logged."""
    caplog.set_level(logging.DEBUG)
    async with client_for(settings.replace(api_token=TOKEN)) as (_, client):
        await client.get("/v1/users/alice/demo", headers={"Authorization": "Bearer nope"})
        await client.get("/v1/users/alice/demo", headers=GOOD)
    assert _open_api_warnings(caplog) == []
    assert TOKEN not in caplog.text
