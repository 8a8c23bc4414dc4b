"""The application's lifetime: it starts and stops cleanly, repeatedly, and serves its OpenAPI."""

from __future__ import annotations

import gc
import warnings
from collections import Counter
from typing import Any

import trio
from conftest import sql
from quart_trio import QuartTrio

from sim.app import create_app
from sim.settings import Settings


def _tasks() -> Counter[str]:
    """Names of every live Trio task in this run (the whole tree under the root task)."""
    names: Counter[str] = Counter()
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        names[task.name] += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return names


async def _sim_connections(db_url: str) -> list[tuple[Any, ...]]:
    """Connections sim holds to the test database, as seen by PostgreSQL."""
    return await trio.to_thread.run_sync(
        sql,
        db_url,
        "select pid from pg_stat_activity"
        " where datname = current_database() and application_name = 'sim'",
    )


async def _until_no_sim_connections(db_url: str) -> None:
    """Poll until sim holds no connection to the database (the caller bounds the wait)."""
    while True:
        if not await _sim_connections(db_url):
            return
        await trio.sleep(0.05)


async def _serve_once(app: QuartTrio, *, settle: bool = False) -> dict[str, Any]:
    """Start ``app``, check it is ready, stop it; return its OpenAPI.

    With ``settle``, it is ready still once its pool has opened its minimum of connections
    in the background (the work a second start-up could break).
    """
    with trio.fail_after(30):
        async with app.test_app() as test_app:
            client = test_app.test_client()
            while settle:
                pool = (await (await client.get("/readyz")).get_json()).get("pool", {})
                if pool and pool["pool_size"] >= pool["pool_min"]:
                    break
                await trio.sleep(0.05)
            ready = await client.get("/readyz")
            assert ready.status_code == 200, await ready.get_json()
            openapi = await client.get("/openapi.json")
            assert openapi.status_code == 200
            assert openapi.content_type.startswith("application/json")
            document: dict[str, Any] = await openapi.get_json()
    return document


async def test_app_starts_and_stops_twice(settings: Settings, db_url: str) -> None:
    """Two fresh apps start and stop in turn: no warnings, no tasks or connections left behind."""
    tasks_before = _tasks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            await _serve_once(create_app(settings, configure_logs=False), settle=True)
            assert _tasks() == tasks_before
            with trio.fail_after(30):  # closed connections leave pg_stat_activity shortly
                await _until_no_sim_connections(db_url)
        gc.collect()  # surface ResourceWarnings of anything left unclosed
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    assert _tasks() == tasks_before


async def test_same_app_object_starts_twice(settings: Settings) -> None:
    """One app object started, stopped and started again is ready the second time too."""
    app = create_app(settings, configure_logs=False)
    await _serve_once(app, settle=True)
    await _serve_once(app, settle=True)


async def test_openapi_document_is_served(settings: Settings) -> None:
    """/openapi.json is an OpenAPI 3 document that describes the health probes."""
    document = await _serve_once(create_app(settings, configure_logs=False))
    assert str(document["openapi"]).startswith("3.")
    assert document["info"]["title"] == "sim"
    assert {"/healthz", "/readyz"} <= set(document["paths"])
