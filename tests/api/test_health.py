"""Liveness and readiness probes, including a real database outage and recovery."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from quart.typing import TestClientProtocol as Client
from quart_trio import QuartTrio

from sim.app import create_app
from sim.db import create_database
from sim.db.embedded import EmbeddedPostgres, _start
from sim.settings import Settings

READYZ_TIMEOUT_S = 1.0
#: a hang guard, not a latency bound (those are in RELIABILITY.md): far below the pool
#: timeout (30 s), which a probe waiting for a pooled connection would run into
PROBE_GUARD_S = 10.0


def _postgres_pids(pgdata: Path) -> list[int]:
    """PIDs of processes whose command line names ``pgdata`` (a postmaster serving it)."""
    found = subprocess.run(
        ["pgrep", "-f", str(pgdata)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def _pg_ctl(server: EmbeddedPostgres, *args: str) -> None:
    from pgserver import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(list(args), pgdata=str(server.pgdata), user=server.server.system_user, timeout=30)


@pytest.fixture
def pg_home() -> Iterator[Path]:
    """A directory for a private PostgreSQL, deliberately outside pytest's basetemp.

    As root, pgserver runs PostgreSQL as the ``pgserver`` user and opens up the
    directories above pgdata for it; but every pytest session that starts (another
    engineer's, say) resets /tmp/pytest-of-root to 0700, and then pg_ctl and initdb
    fail with "Permission denied" until pgserver widens it again.
    """
    home = Path(tempfile.mkdtemp(prefix="sim-test-pg-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def dedicated_pg(pg_home: Path) -> Iterator[EmbeddedPostgres]:
    """A private embedded PostgreSQL for one test; always stopped, and checked gone, at the end."""
    server = _start(pg_home / "pgdata")
    try:
        yield server
    finally:
        server.stop()
        strays = _postgres_pids(server.pgdata)
        for pid in strays:  # e.g. restarted behind pgserver's back: stop it anyway
            os.kill(pid, signal.SIGINT)  # "fast" shutdown
        deadline = time.monotonic() + 10
        while _postgres_pids(server.pgdata) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert strays == [], f"postgres processes outlived the test: {strays}"


def _app(settings: Settings) -> QuartTrio:
    return create_app(settings.replace(readyz_timeout_s=READYZ_TIMEOUT_S), configure_logs=False)


async def _get(client: Client, path: str) -> tuple[int, Any]:
    """GET ``path``: status and JSON body (a 503 with ``Retry-After``)."""
    with trio.fail_after(PROBE_GUARD_S):
        response = await client.get(path)
        body = await response.get_json()
    if response.status_code == 503:
        assert response.headers.get("Retry-After") == "1"
    return response.status_code, body


async def test_healthz_answers_ok(settings: Settings) -> None:
    """/healthz answers 200 {"status": "ok"}."""
    app = _app(settings)
    with trio.fail_after(30):
        async with app.test_app() as test_app:
            status, body = await _get(test_app.test_client(), "/healthz")
    assert (status, body) == (200, {"status": "ok"})


async def test_readyz_reports_pool_stats(settings: Settings) -> None:
    """/readyz answers 200 with the pool's statistics when the database answers."""
    app = _app(settings)
    with trio.fail_after(30):
        async with app.test_app() as test_app:
            status, body = await _get(test_app.test_client(), "/readyz")
    assert status == 200
    assert body["status"] == "ready"
    pool = body["pool"]
    assert pool["pool_min"] == settings.pool_min_size
    assert pool["pool_max"] == settings.pool_max_size
    assert 1 <= pool["pool_size"] <= settings.pool_max_size
    assert all(isinstance(v, int) for v in pool.values())


async def test_readyz_follows_a_database_outage(
    dedicated_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """/readyz: 200, then 503 (fast, JSON) while PostgreSQL is stopped, then 200 once it is back."""
    server = dedicated_pg
    with trio.fail_after(30):
        assert await create_database(server.url("postgres"), "sim_ready")
    url = server.url("sim_ready")
    settings = Settings(
        database_url=url, data_dir=tmp_path / "sim", pool_min_size=2, pool_max_size=4
    )
    app = _app(settings)
    with trio.fail_after(90):
        async with app.test_app() as test_app:
            client = test_app.test_client()
            status, body = await _get(client, "/readyz")
            assert status == 200 and body["status"] == "ready"

            await trio.to_thread.run_sync(_pg_ctl, server, "-w", "stop", "-m", "fast")
            assert _postgres_pids(server.pgdata) == []

            for _ in range(3):
                status, body = await _get(client, "/readyz")
                assert status == 503, body
                error = body["error"]
                assert error["code"] in {"database_unavailable", "overloaded", "query_timeout"}
                assert error["message"]
                assert isinstance(error["pool"], dict)

            await trio.to_thread.run_sync(server.server.ensure_postgres_running)
            assert server.url("sim_ready") == url, "the socket moved: the URL is no longer valid"

            with trio.fail_after(30):  # until PostgreSQL answers again
                while True:
                    status, body = await _get(client, "/readyz")
                    if status == 200:
                        break
                    await trio.sleep(0.2)
            assert body["status"] == "ready"
