"""Schemathesis fuzzes sim's own OpenAPI document against a real served instance.

Real HTTP and real PostgreSQL: sim (with its bundled sink) is served on a
loopback port and `st run` generates requests from ``/openapi.json``: schema
examples, boundary/"coverage" cases and random (positive and negative) data,
with a fixed seed and a bounded number of examples per operation. It must find
no 5xx, no response that breaks the documented schema, status code or content
type, no accepted invalid input, and no 405 without ``Allow``.

Left out: ``/sink/admin/*`` (fault knobs: they make the sink fail on purpose),
the SSE stream ``/dashboard/events`` (it is meant to stay open) and the
dashboard's static files (not an API). The
``positive_data_acceptance`` check is off because some schema-valid requests
are refused by rules a schema cannot express (the per-user row cap, "comments
need at least one video"), each with a 400 naming the field.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio
from conftest import free_port, served

from sim.app import create_app
from sim.settings import Settings

TOKEN = "fuzz-t0ken"
SEED = 20_240_601
MAX_EXAMPLES = 25  # per operation and phase: a few hundred requests in all
RUN_TIMEOUT_S = 240
EXCLUDE_PATHS = r"^/sink/admin/|^/dashboard/events$|^/dashboard/static/"
CHECKS = "all"
EXCLUDE_CHECKS = "positive_data_acceptance"


async def test_schemathesis_finds_nothing(settings: Settings, tmp_path: Path) -> None:
    """A seeded schemathesis run over every documented operation reports no failure."""
    port = free_port()
    app = create_app(
        settings.replace(
            public_url=f"http://127.0.0.1:{port}",
            api_token=TOKEN,
            webhook_secret=None,  # the fuzzer posts to /sink/interactions unsigned
            max_rows_per_user=400,  # keeps accepted demo runs small
            page_size_max=200,
        ),
        configure_logs=False,
    )
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"http://127.0.0.1:{port}/openapi.json",
        "--checks",
        CHECKS,
        "--exclude-checks",
        EXCLUDE_CHECKS,
        "--exclude-path-regex",
        EXCLUDE_PATHS,
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--no-color",
        "--output-truncate",
        "false",
    ]
    with trio.fail_after(RUN_TIMEOUT_S + 30):
        async with served(app, port):
            with trio.fail_after(RUN_TIMEOUT_S):
                result = await trio.run_process(
                    command, cwd=tmp_path, capture_stdout=True, capture_stderr=True, check=False
                )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output[-20_000:]
    assert "No issues found" in output or " passed" in output, output[-5_000:]
