"""`sim demo redeliver`: re-queues over HTTP against a real server; errors are one line."""

from __future__ import annotations

import pytest
import trio
from conftest import free_port, served, sql

from sim import cli
from sim.app import create_app
from sim.settings import Settings


async def _run(*argv: str) -> int:
    return await trio.to_thread.run_sync(cli.main, list(argv))


async def test_demo_redeliver(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """Failed rows are re-queued and reported; --sent adds sent ones; a bad --since is one line."""
    port = free_port()
    app = create_app(settings.replace(public_url=f"http://127.0.0.1:{port}"), configure_logs=False)
    assert settings.database_url
    with trio.fail_after(120):
        async with served(app, port) as url:
            plan = ["--videos", "0", "--comments", "0", "--dms", "5", "--live-per-minute", "0"]
            assert await _run("demo", "enable", "rita", "--url", url, *plan, "--wait") == 0
            sql(settings.database_url, "update interactions set status = 'failed' where seq < 2")
            capsys.readouterr()
            assert await _run("demo", "redeliver", "rita", "--url", url) == 0
            assert capsys.readouterr().out.strip() == "Re-queued 2 failed interactions of rita"
            assert await _run("demo", "disable", "rita", "--url", url) == 0
            capsys.readouterr()
            assert await _run("demo", "redeliver", "rita", "--url", url, "--sent") == 0
            out = capsys.readouterr().out.strip()
            assert out.startswith("Re-queued ") and "failed and sent" in out
            assert "demo mode is off" in out
            assert await _run("demo", "redeliver", "rita", "--url", url, "--since", "soon") == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("sim: error: since:")
