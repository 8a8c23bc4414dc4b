"""The v1 demo API: status codes, bad input as 4xx JSON, nothing half-written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from conftest import sql
from pipekit import stack

from sim.settings import Settings


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A sim served over HTTP (delivering to a sink) and a client for it."""
    async with stack(settings) as st:
        yield st.sim


BAD_BODIES = [
    ("{not json", "body"),
    ("[1, 2]", "body"),
    ('"text"', "body"),
    ('{"videos": -1}', "videos"),
    ('{"videos": 1001}', "videos"),
    ('{"comments": 10001}', "comments"),
    ('{"dms": 1e9}', "dms"),
    ('{"comments": "100"}', "comments"),
    ('{"comments": 1.5}', "comments"),
    ('{"comments": true}', "comments"),
    ('{"live_per_minute": 601}', "live_per_minute"),
    ('{"live_per_minute": -1}', "live_per_minute"),
    ('{"seed": -3}', "seed"),
    ('{"seed": 99999999999999999999999}', "seed"),
    ('{"vidoes": 3}', "vidoes"),
    ('{"videos": 0, "comments": 5}', "videos"),
    ('{"videos": null}', "videos"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_bad_bodies_are_4xx_json_and_write_nothing(
    client: httpx.AsyncClient, settings: Settings, body: str, field: str
) -> None:
    """Each bad body → 400 with {"error": {code, message, field}}, no user created."""
    r = await client.put("/v1/users/zed/demo", content=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input" and error["message"]
    assert error["field"] == field, error
    assert sql(settings.database_url or "", "select count(*) from demo_users") == [(0,)]
    assert sql(settings.database_url or "", "select count(*) from interactions") == [(0,)]


@pytest.mark.parametrize(
    "user_id", ["a" * 65, "bad user", "semi;colon", "caf%C3%A9", "x%2Fy", "%00", "a*b"]
)
async def test_invalid_user_ids_are_rejected(client: httpx.AsyncClient, user_id: str) -> None:
    """user_id must be 1-64 of [A-Za-z0-9._-]: anything else is a 4xx JSON error."""
    for method in ("PUT", "GET", "DELETE"):
        r = await client.request(method, f"/v1/users/{user_id}/demo")
        assert 400 <= r.status_code < 500, (method, user_id, r.status_code)
        assert "error" in r.json()


async def test_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    """GET/DELETE for a user who never had demo mode → 404 JSON."""
    for method in ("GET", "DELETE"):
        r = await client.request(method, "/v1/users/nobody/demo")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_empty_body_takes_the_defaults(client: httpx.AsyncClient) -> None:
    """PUT with no body → 8 videos, 100 comments, 100 DMs, 6 live per minute."""
    r = await client.put("/v1/users/dflt/demo")
    assert r.status_code == 202
    doc = r.json()
    assert (doc["videos"], doc["comments"], doc["dms"], doc["live_per_minute"]) == (8, 100, 100, 6)
    assert doc["state"] == "initializing" and doc["enabled_at"].endswith("+00:00")


async def test_too_many_rows_per_user_is_refused_up_front(settings: Settings) -> None:
    """A request over max_rows_per_user is refused with the field named, nothing written."""
    async with stack(settings.replace(max_rows_per_user=1000)) as st:
        r = await st.enable("big", videos=10, comments=600, dms=600)
        assert r.status_code == 400 and r.json()["error"]["field"] == "comments"
        assert sql(settings.database_url or "", "select count(*) from demo_users") == [(0,)]


async def test_bad_query_parameters(client: httpx.AsyncClient) -> None:
    """Bad status/kind/limit/cursor/purge values → 400 naming the parameter."""
    await client.put("/v1/users/q/demo", json={"live_per_minute": 0})
    for params, field in (
        ({"status": "lost"}, "status"),
        ({"kind": "tweet"}, "kind"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ):
        r = await client.get("/v1/users/q/interactions", params=params)
        assert r.status_code == 400 and r.json()["error"]["field"] == field, (params, r.text)
    r = await client.delete("/v1/users/q/demo", params={"purge": "maybe"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "purge"


async def test_keyset_pagination_walks_every_row_once(settings: Settings) -> None:
    """Following next_cursor visits every interaction once, in order, with filters."""
    async with stack(settings) as st:
        await st.enable("pager", seed=4, comments=40, dms=30, live_per_minute=0)
        await st.wait_settled("pager")
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "25", **({"cursor": cursor} if cursor else {})}
            page = (await st.sim.get("/v1/users/pager/interactions", params=params)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 78
        dms = (
            await st.sim.get("/v1/users/pager/interactions", params={"kind": "dm", "limit": 500})
        ).json()
        assert len(dms["items"]) == 30 and {i["kind"] for i in dms["items"]} == {"dm"}
