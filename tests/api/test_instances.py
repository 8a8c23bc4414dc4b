"""``GET /v1/instances`` and the instance count in /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from quart.typing import TestClientProtocol as Client
from quart_trio import QuartTrio

from sim.app import create_app
from sim.settings import Settings


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[tuple[QuartTrio, Client]]:
    """A started app (runtime and database up) and a test client for it."""
    app = create_app(settings, configure_logs=False)
    with trio.fail_after(60):
        async with app.test_app() as test_app:
            yield app, test_app.test_client()


async def test_instances_lists_this_one(settings: Settings) -> None:
    """The answering instance is listed, alive and marked as itself; /metrics counts it."""
    async with client_for(settings) as (app, client):
        rt = app.extensions["sim"]
        response = await client.get("/v1/instances")
        assert response.status_code == 200
        doc = await response.get_json()
        [me] = doc["instances"]
        assert me["id"] == str(rt.instance_id) and me["self"] and me["alive"]
        assert doc["live"] == 1 and doc["owner_lease_s"] == settings.owner_lease_s
        assert "+00:00" in me["last_heartbeat"]
        await client.put("/v1/users/alice/demo", json={"dms": 1, "comments": 0})
        status = await (await client.get("/v1/users/alice/demo")).get_json()
        assert status["owner"] == str(rt.instance_id)
        doc = await (await client.get("/v1/instances")).get_json()
        assert doc["instances"][0]["users"] == 1
        with trio.fail_after(10):  # the next heartbeat counts the user in /metrics
            while True:
                metrics = await (await client.get("/metrics")).get_data(as_text=True)
                if "\nsim_owned_users 1.0\n" in metrics:
                    break
                await trio.sleep(0.05)
        assert "\nsim_instances 1.0\n" in metrics


async def test_instances_needs_the_token(settings: Settings) -> None:
    """With SIM_API_TOKEN set, /v1/instances answers 401 without it."""
    async with client_for(settings.replace(api_token="t0ken")) as (_, client):
        response = await client.get("/v1/instances")
        assert response.status_code == 401
        assert (await response.get_json())["error"]["code"]
        ok = await client.get("/v1/instances", headers={"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200
