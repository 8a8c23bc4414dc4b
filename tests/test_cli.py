"""The command line: settings commands, demo mode over HTTP against a real server, serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import trio
from conftest import free_port, served, sql

from sim import cli
from sim.app import create_app
from sim.db import load_migrations
from sim.db.embedded import EmbeddedPostgres
from sim.settings import Settings

TOKEN = "cli-token-5678"
USER = "cli-user"


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SIM_* or DATABASE_URL from the surroundings."""
    for key in list(os.environ):
        if key.startswith("SIM_") or key == "DATABASE_URL":
            monkeypatch.delenv(key)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sim: error: "), err
    return lines[0]


async def _run(*argv: str) -> int:
    return await trio.to_thread.run_sync(cli.main, list(argv))


def test_check_prints_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sim check` validates the settings and says so in one line, without the token."""
    _clean_env(monkeypatch)
    monkeypatch.setenv("SIM_API_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", "postgresql://sim:hunter2pw@127.0.0.1:5432/sim")
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "configuration OK" in out
    assert TOKEN not in out and "hunter2pw" not in out
    assert "API token set" in out


def test_bad_settings_are_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad setting is one `sim: error:` line naming the variable, exit code 1."""
    _clean_env(monkeypatch)
    monkeypatch.setenv("SIM_POOL_MIN_SIZE", "lots")
    assert cli.main(["check"]) == 1
    assert "SIM_POOL_MIN_SIZE" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "COMMAND"),
        (["demo", "enable"], "USER"),
        (["demo", "enable", "u", "--videos", "-1"], "--videos"),
        (["demo", "enable", "u", "--live-per-minute", "nan"], "--live-per-minute"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage errors are one line and exit code 2."""
    assert cli.main(argv) == 2
    assert expected in _one_error_line(capsys.readouterr().err)


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` lists the commands and exits 0."""
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "migrate", "check", "demo", "bench"):
        assert command in out


async def test_demo_enable_wait_status_disable(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """enable --wait shows progress to the final count, then status, then disable --purge."""
    monkeypatch.setenv("SIM_API_TOKEN", TOKEN)
    port = free_port()
    app = create_app(
        settings.replace(public_url=f"http://127.0.0.1:{port}", api_token=TOKEN),
        configure_logs=False,
    )
    plan = ["--videos", "4", "--comments", "40", "--dms", "40", "--seed", "3"]
    with trio.fail_after(120):
        async with served(app, port) as url:
            rc = await _run(
                "demo", "enable", USER, "--url", url, *plan, "--live-per-minute", "0", "--wait"
            )
            captured = capsys.readouterr()
            assert rc == 0, captured.err
            started, summary = captured.out.strip().splitlines()
            assert started.startswith(
                f"Demo mode started for {USER}: 4 videos, 40 comments, 40 DMs"
            )
            assert summary.startswith(f"{USER}: 84/84 sent, 0 failed in ")
            assert "now live" in summary
            assert "84/84" in captured.err  # the progress bar's last state

            assert await _run("demo", "enable", USER, "--url", url) == 0
            assert "already on" in capsys.readouterr().out

            assert await _run("demo", "status", USER, "--url", url) == 0
            out = capsys.readouterr().out
            assert "state         live" in out and "sent 84, failed 0" in out

            assert await _run("demo", "status", USER, "--url", url, "--json") == 0
            doc = json.loads(capsys.readouterr().out)
            assert doc["counts"]["sent"] == 84 and doc["seed"] == 3

            assert await _run("demo", "disable", USER, "--url", url) == 0
            assert "Demo mode off for cli-user: 84 sent, 0 failed" in capsys.readouterr().out
            assert await _run("demo", "disable", USER, "--url", url, "--purge") == 0
            assert "interactions were deleted" in capsys.readouterr().out
            assert await _run("demo", "status", USER, "--url", url, "--json") == 0
            doc = json.loads(capsys.readouterr().out)
            assert doc["state"] == "disabled" and doc["total"] == 0


async def test_demo_errors_are_one_line(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing token, an unknown user, bad input and no server: one line each, exit 1."""
    monkeypatch.delenv("SIM_API_TOKEN", raising=False)
    app = create_app(settings.replace(api_token=TOKEN), configure_logs=False)
    with trio.fail_after(60):
        async with served(app) as url:
            capsys.readouterr()  # hypercorn's start-up line
            assert await _run("demo", "status", USER, "--url", url) == 1
            line = _one_error_line(capsys.readouterr().err)
            assert "401" in line and "SIM_API_TOKEN" in line

            assert await _run("demo", "status", "nobody", "--url", url, "--token", TOKEN) == 1
            line = _one_error_line(capsys.readouterr().err)
            assert "never had demo mode" in line and "404" in line

            assert await _run("demo", "status", "bad id!", "--url", url, "--token", TOKEN) == 1
            assert "user_id" in _one_error_line(capsys.readouterr().err)

            rc = await _run("demo", "enable", USER, "--url", url, "--token", TOKEN, "--videos", "0")
            assert rc == 1
            assert "comments need at least one video" in _one_error_line(capsys.readouterr().err)

    nothing = f"http://127.0.0.1:{free_port()}"
    assert await _run("demo", "status", USER, "--url", nothing) == 1
    assert "cannot reach sim at" in _one_error_line(capsys.readouterr().err)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


async def test_migrate_applies_once(pg_server: EmbeddedPostgres, tmp_path: Path) -> None:
    """`python -m sim migrate` applies the schema to an empty database, then finds it current."""
    name = f"m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = pg_server.url(name)
    try:
        versions = [m.version for m in load_migrations()]
        applied = ", ".join(f"{v:04d}" for v in versions)
        current = f"schema up to date, version {versions[-1]:04d}"
        for expected in (f"applied migrations {applied}", current):
            done = await trio.to_thread.run_sync(
                lambda: subprocess.run(
                    [sys.executable, "-m", "sim", "migrate"],
                    env=_env(DATABASE_URL=url),
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            )
            assert done.returncode == 0, done.stderr
            assert expected in done.stdout
        recorded = sql(url, "select version from sim_schema_migrations order by version")
        assert recorded == [(v,) for v in versions]
    finally:
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


async def test_migrate_failure_is_one_line(tmp_path: Path) -> None:
    """An unreachable database is one error line and exit code 1."""
    done = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "sim", "migrate"],
            env=_env(
                DATABASE_URL=f"postgresql://sim:pw@127.0.0.1:{free_port()}/sim",
                SIM_POOL_OPEN_TIMEOUT_S="2",
            ),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    )
    assert done.returncode == 1
    assert "migration failed" in _one_error_line(done.stderr)


async def test_serve_answers_and_stops_on_sigterm(db_url: str, tmp_path: Path) -> None:
    """`python -m sim serve` serves, and on SIGTERM shuts sim down cleanly with exit code 0."""
    port = free_port()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "sim", "serve", "--bind", f"127.0.0.1:{port}"],
        env=_env(DATABASE_URL=db_url, SIM_POOL_MIN_SIZE="2"),
        cwd=tmp_path,
        stdout=(tmp_path / "out.log").open("wb"),
        stderr=(tmp_path / "err.log").open("wb"),
    )
    try:
        with trio.fail_after(60):
            async with httpx.AsyncClient(timeout=2) as http:
                while True:
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            rc = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = (tmp_path / "err.log").read_text()
    assert rc == 0, err
    assert "sim stopping" in err and "Database pool closed" in err


def test_hypercorn_worker_api_is_what_serve_relies_on() -> None:
    """``sim serve`` uses hypercorn one level below its public ``serve``: fail if that moves."""
    import inspect

    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app

    params = inspect.signature(worker_serve).parameters
    assert {"app", "config", "sockets", "shutdown_trigger"} <= params.keys()
    assert list(inspect.signature(wrap_app).parameters)[:3] == ["app", "wsgi_max_body_size", "mode"]


def test_bench_delegates_or_says_why_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`sim bench` runs `python -m bench` with its arguments, or says in one line it cannot."""
    monkeypatch.setattr(cli.local, "_bench_roots", lambda: [tmp_path])
    assert cli.main(["bench"]) == 1
    assert "no benchmark found" in _one_error_line(capsys.readouterr().err)

    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "__main__.py").write_text(
        "import json, sys\nopen('args.json', 'w').write(json.dumps(sys.argv[1:]))\nsys.exit(3)\n"
    )
    assert cli.main(["bench", "--rows", "10"]) == 3
    assert json.loads((tmp_path / "args.json").read_text()) == ["--rows", "10"]
