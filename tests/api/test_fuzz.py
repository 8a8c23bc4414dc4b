"""Schemathesis fuzzes every documented operation of sim and of its sink, over real HTTP.

Real HTTP and real PostgreSQL: sim (with its bundled sink) and the standalone
sink are served on loopback ports and ``st run`` generates requests from their
``/openapi.json``: schema examples, boundary ("coverage") cases and random
(positive and negative) data. It must find no 5xx, no response that breaks the
documented schema, status code or content type, no accepted invalid input, and
no 405 without ``Allow``; and every operation of both documents must have been
exercised (checked from schemathesis' JUnit report).

The seed changes per run and is printed; ``FUZZ_SEED=<seed>`` replays a run. A
failure shows schemathesis' own report, with a ``curl`` line reproducing each
failing request.

The sink's fault knobs (``/sink/admin/*``) make ``POST /sink/interactions`` fail
on purpose, so they are fuzzed on the standalone sink, whose receiving end is
left out there (it is fuzzed on sim's bundled sink, the same code). The
``positive_data_acceptance`` check is off because some schema-valid requests
are refused by rules a schema cannot express (the per-user row cap, "comments
need at least one video"), each with a 400 naming the field.
"""

from __future__ import annotations

import os
import random
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from conftest import served

from sim.app import create_app
from sim.settings import Settings
from sim.sink import create_sink_app

TOKEN = "fuzz-t0ken"
MAX_EXAMPLES = 4  # per operation and phase: a few hundred requests in all
RUN_TIMEOUT_S = 240
CHECKS = "all"
EXCLUDE_CHECKS = "positive_data_acceptance"
METHODS = ("get", "put", "post", "delete", "patch")


def _seed() -> int:
    given = os.environ.get("FUZZ_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**31)


def _command(url: str, seed: int, report: Path, exclude_paths: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        "--exclude-checks",
        EXCLUDE_CHECKS,
        "--exclude-path-regex",
        exclude_paths,
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
        "--output-truncate",
        "false",
    ]


def _operations(doc: dict[str, Any]) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


def _tested(report: Path) -> set[str]:
    """The operations the JUnit report has a test case for (``METHOD /path``)."""
    names = {case.get("name", "") for case in ET.parse(report).iter("testcase")}
    return {" ".join(name.split()[:2]) for name in names}


async def test_schemathesis_finds_nothing(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schemathesis run over every operation of sim and its sink reports no failure."""
    seed = _seed()
    replay = f"FUZZ_SEED={seed} .venv/bin/python -m pytest tests/api/test_fuzz.py"
    with capsys.disabled():
        print(f"\nschemathesis seed {seed} (replay: {replay})", flush=True)
    base = settings.replace(
        api_token=TOKEN,
        webhook_secret=None,  # the fuzzer posts to /sink/interactions unsigned
        max_rows_per_user=400,  # keeps accepted demo runs small
        page_size_max=200,
        dashboard_stream_max_s=0.5,  # an event stream ends quickly
    )
    runs = {
        # sim with its bundled sink: everything but the fault knobs
        "sim": (create_app, r"^/sink/admin/faults$"),
        # the standalone sink: its knobs, but not the receiving end they break on purpose
        "sink": (create_sink_app, r"^/sink/interactions$"),
    }
    docs: dict[str, dict[str, Any]] = {}
    results: dict[str, tuple[int, str]] = {}

    async def fuzz(name: str) -> None:
        factory, exclude = runs[name]
        async with served(factory(base, configure_logs=False)) as url:
            async with httpx.AsyncClient(base_url=url) as client:
                docs[name] = (await client.get("/openapi.json")).json()
            report = tmp_path / f"{name}.xml"
            with trio.fail_after(RUN_TIMEOUT_S):
                done = await trio.run_process(
                    _command(url, seed, report, exclude),
                    cwd=tmp_path,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
        output = (done.stdout + done.stderr).decode(errors="replace")
        results[name] = (done.returncode, output)

    with trio.fail_after(RUN_TIMEOUT_S + 60):
        async with trio.open_nursery() as nursery:
            for name in runs:
                nursery.start_soon(fuzz, name)

    for name, (returncode, output) in results.items():
        assert returncode == 0, f"{name}: {replay}\n{output[-20_000:]}"
    every = _operations(docs["sim"]) | _operations(docs["sink"])
    tested = _tested(tmp_path / "sim.xml") | _tested(tmp_path / "sink.xml")
    assert every - tested == set(), f"operations never fuzzed ({replay})"
    assert len(every) >= 15, sorted(every)
