"""Logs: readable text or one JSON object per line with the same fields; never a secret."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from conftest import free_port

from sim.logs import JsonFormatter, TextFormatter, configure_logging
from sim.settings import Settings

TOKEN = "tok-Sup3rSecret-0001"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PASSWORD = "pg-Passw0rd-xyzzy"
SECRETS = (TOKEN, WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"), PASSWORD)
FIELDS = {"time", "level", "logger", "message"}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger (and hypercorn's) back as they were after the test."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    hypercorn = [logging.getLogger(n) for n in ("hypercorn.error", "hypercorn.access")]
    filters = [list(logger.filters) for logger in hypercorn]
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for logger, kept in zip(hypercorn, filters, strict=True):
        logger.filters[:] = kept


def _secret_settings(log_format: str) -> Settings:
    return Settings(
        api_token=TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        database_url=f"postgresql://sim:{PASSWORD}@127.0.0.1:5432/sim",
        log_format=log_format,
    )


def _log_everything(logger: logging.Logger) -> None:
    """Secrets in a message, its arguments, an extra field and an exception."""
    logger.info("Progress %d/%d for user %s", 3, 10, "alice", extra={"user_id": "alice"})
    logger.warning("token is %s, secret %s", TOKEN, WEBHOOK_SECRET)
    logger.info("connecting to postgresql://sim:%s@db/sim", PASSWORD, extra={"dsn": PASSWORD})
    try:
        raise RuntimeError(f"failed with Authorization: Bearer {TOKEN}")
    except RuntimeError:
        logger.exception("request failed")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_reaches_the_output(log_format: str, restore_logging: None) -> None:
    """Registered secrets are replaced by *** in every line, in both formats."""
    stream = io.StringIO()
    configure_logging(_secret_settings(log_format), stream=stream)
    _log_everything(logging.getLogger("sim.test"))
    out = stream.getvalue()
    assert "Progress 3/10 for user alice" in out
    assert out.count("***") >= 4
    for secret in SECRETS:
        assert secret not in out


def test_json_lines_carry_the_same_fields_as_text(restore_logging: None) -> None:
    """A JSON line has time, level, logger, message and extras; the text line the same."""
    streams = {}
    for log_format in ("json", "text"):
        streams[log_format] = io.StringIO()
        configure_logging(_secret_settings(log_format), stream=streams[log_format])
        logging.getLogger("sim.test").info(
            "Updated %d/%d sent interactions for user %s", 5, 9, "bob", extra={"user_id": "bob"}
        )
    (line,) = streams["json"].getvalue().splitlines()
    doc = json.loads(line)
    assert FIELDS <= set(doc)
    assert doc["level"] == "INFO" and doc["logger"] == "sim.test"
    assert doc["message"] == "Updated 5/9 sent interactions for user bob"
    assert doc["user_id"] == "bob"
    assert doc["time"].endswith("+00:00")
    (text,) = streams["text"].getvalue().splitlines()
    assert " INFO " in text and "sim.test: Updated 5/9 sent interactions for user bob" in text
    assert text.endswith("user_id=bob")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO ", text), text


def test_hypercorn_lines_use_sims_format(restore_logging: None) -> None:
    """hypercorn's lines go once through sim's handler, even if hypercorn adds its own later."""
    stream = io.StringIO()
    configure_logging(_secret_settings("json"), stream=stream)
    access = logging.getLogger("hypercorn.access")
    theirs = io.StringIO()
    saved = (list(access.handlers), access.propagate, access.level)
    access.handlers = [logging.StreamHandler(theirs)]  # as hypercorn's Logger does
    access.propagate = False
    access.setLevel(logging.INFO)
    try:
        access.info('%(h)s "%(r)s" %(s)s', {"h": "127.0.0.1:1", "r": "GET /healthz 1.1", "s": 200})
    finally:
        access.handlers, access.propagate = saved[0], saved[1]
        access.setLevel(saved[2])
    assert theirs.getvalue() == ""
    (line,) = stream.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["logger"] == "hypercorn.access"
    assert doc["message"] == '127.0.0.1:1 "GET /healthz 1.1" 200'


def test_caplog_records_format_without_secrets(
    caplog: pytest.LogCaptureFixture, restore_logging: None
) -> None:
    """Records as captured (caplog) come out of sim's formatters with secrets masked."""
    configure_logging(_secret_settings("text"), stream=io.StringIO())
    with caplog.at_level(logging.INFO, logger="sim.test"):
        _log_everything(logging.getLogger("sim.test"))
    assert len(caplog.records) == 4
    for formatter in (JsonFormatter(), TextFormatter()):
        for record in caplog.records:
            line = formatter.format(record)
            for secret in SECRETS:
                assert secret not in line
    for record in caplog.records:
        if record.levelname != "ERROR":
            json.loads(JsonFormatter().format(record))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_real_server_logs_progress_and_no_secret(
    log_format: str, db_url: str, tmp_path: Path
) -> None:
    """`sim serve` at DEBUG with secrets set: progress lines, one format, no secret."""
    assert "postgres:@" in db_url
    port = free_port()
    env = _env(
        DATABASE_URL=db_url.replace("postgres:@", f"postgres:{PASSWORD}@"),
        SIM_API_TOKEN=TOKEN,
        SIM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        SIM_LOG_FORMAT=log_format,
        SIM_LOG_LEVEL="DEBUG",
        SIM_POOL_MIN_SIZE="2",
    )
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "sim", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env,
        cwd=tmp_path,
        stdout=out.open("wb"),
        stderr=err.open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with trio.fail_after(90):
            async with httpx.AsyncClient(base_url=base, timeout=5) as http:
                while True:
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.2)
                plan = {"videos": 2, "comments": 20, "dms": 20, "live_per_minute": 0}
                assert (
                    await http.put("/v1/users/log-user/demo", json=plan, headers=auth)
                ).is_success
                # a wrong token, and the real one where it does not belong (a query string)
                bad = {"Authorization": f"Bearer {TOKEN}x"}
                assert (await http.get("/v1/users/log-user/demo", headers=bad)).status_code == 401
                await http.get("/healthz", params={"token": TOKEN, "key": WEBHOOK_SECRET})
                while True:
                    doc = (await http.get("/v1/users/log-user/demo", headers=auth)).json()
                    if doc["state"] != "initializing":
                        break
                    await trio.sleep(0.1)
                assert doc["state"] == "live"
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = out.read_text() + err.read_text()
    for secret in SECRETS:
        assert secret not in output, f"a secret reached the log: ...{secret[-4:]}"
    lines = [line for line in output.splitlines() if line.strip()]
    assert any(
        "Updated " in line and "/42 sent interactions for user log-user" in line for line in lines
    )
    assert any("Demo mode fully initialized for user log-user" in line for line in lines)
    assert any('"GET /healthz' in line for line in lines)  # the access log is there too
    if log_format == "json":
        for line in lines:
            doc = json.loads(line)
            assert FIELDS <= set(doc), line
    else:
        assert not any(line.startswith("{") for line in lines)
