"""The sink's admin endpoints: bad bytes, wrong types, huge or deep bodies are 4xx JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from conftest import served

from sim.settings import Settings
from sim.sink import create_sink_app


@asynccontextmanager
async def sink_client(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A standalone sink served on a real socket, and a client for it."""
    app = create_sink_app(settings.replace(**changes), configure_logs=False)
    with trio.fail_after(30):
        async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"\xff\xfe\x00{", "application/json", 400),  # not UTF-8: was a 500
        (b'{"error_rate": 0.5}'.decode().encode("utf-16"), "application/json", 400),
        (b"error_rate=0.5", "application/x-www-form-urlencoded", 400),
        (b"", "application/json", 400),
        (b"[" * 30_000 + b"]" * 30_000, "application/json", 400),
        (b'{"error_rate": NaN}', "application/json", 400),
        (b'{"latency_s": 1e999}', "application/json", 400),
        (b'{"error_rate": 0.5, "pad": "' + b"x" * 70_000 + b'"}', "application/json", 413),
    ],
)
async def test_put_faults_refuses_bad_bodies_with_json(
    settings: Settings, body: bytes, content_type: str, status: int
) -> None:
    """PUT /sink/admin/faults answers any malformed body with a 4xx JSON error, knobs unchanged."""
    async with sink_client(settings) as client:
        before = (await client.get("/sink/admin/faults")).json()
        answer = await client.put(
            "/sink/admin/faults", content=body, headers={"content-type": content_type}
        )
        after = (await client.get("/sink/admin/faults")).json()
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["code"] and answer.json()["error"]["message"]
    assert after == before


async def test_admin_401_follows_the_bearer_rule(settings: Settings) -> None:
    """The sink's admin token check is /v1's: any-case scheme, WWW-Authenticate on 401."""
    async with sink_client(settings, api_token="t0ken") as client:
        lower = await client.get("/sink/admin/faults", headers={"Authorization": "bearer t0ken"})
        empty = await client.get("/sink/admin/faults", headers={"Authorization": "Bearer"})
    assert lower.status_code == 200
    assert empty.status_code == 401 and empty.headers["www-authenticate"].startswith("Bearer")
    assert empty.json()["error"]["code"] == "unauthorized"
