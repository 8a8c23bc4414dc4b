"""Helpers for end-to-end pipeline tests: sim and a sink, each served over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import trio
from quart_trio import QuartTrio

from sim.app import create_app
from sim.pipeline.content import ContentProvider, OfflineProvider
from sim.runtime import Runtime
from sim.settings import Settings
from sim.sink import create_sink_app


@dataclass
class Stack:
    """A served sim and a served sink, with clients for both."""

    sim: httpx.AsyncClient
    sink: httpx.AsyncClient
    sim_url: str
    sink_url: str
    settings: Settings
    sink_db_url: str
    app: QuartTrio

    def running(self) -> list[str]:
        """The users whose simulation runs in sim right now."""
        runtime: Runtime = self.app.extensions["sim"]
        return runtime.pipeline().running()

    async def enable(self, user: str, **body: Any) -> httpx.Response:
        return await self.sim.put(f"/v1/users/{user}/demo", json=body or None)

    async def status(self, user: str) -> dict[str, Any]:
        r = await self.sim.get(f"/v1/users/{user}/demo")
        r.raise_for_status()
        return dict(r.json())

    async def wait_for(
        self, user: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 30
    ) -> dict[str, Any]:
        """Poll the status document until ``done(doc)``, bounded by ``timeout_s``."""
        with trio.fail_after(timeout_s):
            while True:
                doc = await self.status(user)
                if done(doc):
                    return doc
                await trio.sleep(0.05)

    async def wait_settled(self, user: str, timeout_s: float = 30) -> dict[str, Any]:
        """Wait until the initial burst is done (nothing pending or sending, user live)."""
        return await self.wait_for(
            user,
            lambda d: (
                d["state"] == "live" and d["counts"]["pending"] == 0 and d["counts"]["sending"] == 0
            ),
            timeout_s,
        )

    async def sink_stats(self, user: str | None = None) -> dict[str, Any]:
        r = await self.sink.get("/sink/stats", params={"user_id": user} if user else None)
        r.raise_for_status()
        return dict(r.json())

    async def set_faults(self, **faults: Any) -> None:
        r = await self.sink.put("/sink/admin/faults", json=faults)
        r.raise_for_status()


def sink_database(sim_db_url: str) -> str:
    """A second database on the same server for the sink (the main app's own store)."""
    name = f"sink_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(sim_db_url, autocommit=True) as conn:
        template = conn.execute("select current_database()").fetchone()
        assert template is not None
        conn.execute(f"create database {name} template sim_test_template")
    info = psycopg.conninfo.conninfo_to_dict(sim_db_url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **{k: v for k, v in info.items() if v is not None})


@asynccontextmanager
async def stack(
    settings: Settings,
    *,
    provider_factory: Callable[[], ContentProvider] = OfflineProvider,
    **sink_settings: Any,
) -> AsyncIterator[Stack]:
    """Serve a sink and a sim delivering to it; yield clients for both."""
    from conftest import free_port, served

    assert settings.database_url
    sink_db = sink_database(settings.database_url)
    sink_cfg = settings.replace(database_url=sink_db, pool_min_size=1, **sink_settings)
    sink_app = create_sink_app(sink_cfg, configure_logs=False)
    async with served(sink_app) as sink_url:
        port = free_port()
        sim_cfg = settings.replace(
            main_app_url=f"{sink_url}/sink/interactions", public_url=f"http://127.0.0.1:{port}"
        )
        app = create_app(sim_cfg, configure_logs=False, provider_factory=provider_factory)
        async with (
            served(app, port) as sim_url,
            httpx.AsyncClient(base_url=sim_url, timeout=10) as sim,
            httpx.AsyncClient(base_url=sink_url, timeout=10) as sink,
        ):
            yield Stack(sim, sink, sim_url, sink_url, sim_cfg, sink_db, app)
