"""The pytest side of the fault suite: fixtures, shared checks, and ``RELIABILITY.md``.

The test modules import the fixtures from here, so a plain ``pytest`` runs the scenarios.
Loaded as a plugin as well (``make faults``: ``-p faults.faultplugin`` with ``tests`` on
``PYTHONPATH``), it adds ``--faults-report PATH``: the scenarios' figures are then written
to PATH at the end of the session. (A ``conftest.py`` here would shadow ``tests/conftest.py``,
which other test modules import by name.)
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest
from faults.faultkit import SIM_ENV, Stack, Totals
from faults.faultpg import Cluster
from faults.faultprobe import ProbeStats

__all__ = [
    "Row",
    "check_totals",
    "client",
    "cluster_fixture",
    "record",
    "stack_fixture",
]

SESSION_START = time.monotonic()
#: the probe timeout every sim of the suite runs with
PROBE_LIMIT_S = float(SIM_ENV["SIM_READYZ_TIMEOUT_S"])


@dataclass(frozen=True)
class Row:
    """One scenario's line in ``RELIABILITY.md``."""

    number: int
    scenario: str
    injected: str
    amount: str
    totals: Totals
    recovery: str
    seconds: float
    probes: tuple[ProbeStats, ...] = ()  # /healthz and /readyz seen from a separate process


ROWS: list[Row] = []


def record(row: Row) -> None:
    """Keep a scenario's figures for the report (and print them: ``pytest -s`` shows them)."""
    ROWS.append(row)
    t = row.totals
    print(
        f"[{row.number}] {row.scenario}: {row.amount}; generated {t.generated},"
        f" delivered {t.delivered}, failed {t.failed_with_reason}, lost {t.lost},"
        f" visible duplicates {t.visible_duplicates}, redeliveries {t.redeliveries};"
        f" recovery {row.recovery}; {row.seconds:.1f}s"
    )
    for p in row.probes:
        print(f"    {_probe_cells(p)}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _probe_cells(p: ProbeStats) -> str:
    answers = ", ".join(f"{n} x {s or 'none'}" for s, n in sorted(p.statuses.items()))
    return (
        f"`{p.path}` | {p.count} | {answers} | {_ms(p.p50)} | {_ms(p.p95)} | {_ms(p.max)}"
        f" | {p.over_limit}"
    )


# --- checks --------------------------------------------------------------------------------
def check_totals(stack: Stack, *, failures_allowed: bool = False) -> Totals:
    """The invariants every scenario ends with: nothing lost, nothing shown twice, no stuck row."""
    totals = stack.totals()
    assert totals.generated == totals.expected, totals
    assert totals.statuses.get("pending", 0) == 0, totals
    assert totals.statuses.get("sending", 0) == 0, totals
    assert stack.overdue_leases() == 0
    assert totals.missing == 0, totals
    assert totals.unexpected == 0, totals
    assert totals.visible_duplicates == 0, totals
    assert totals.lost == 0, totals
    if not failures_allowed:
        assert totals.statuses.get("failed", 0) == 0, totals
        assert totals.delivered == totals.expected, totals
    return totals


@asynccontextmanager
async def client(connections: int = 20) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=15, limits=limits) as c:
        yield c


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module", name="cluster")
def cluster_fixture() -> Iterator[Cluster]:
    """A PostgreSQL of the fault suite's own (it gets stopped and harassed), per test module.

    Its data lives outside pytest's temporary tree: a pytest session starting meanwhile
    (another checkout, another terminal) takes the group and other bits off that tree's
    root, and the server, which runs as its own user when started as root, would lose
    access to its files.
    """
    root = Path(tempfile.mkdtemp(prefix="sim-faults-"))
    try:
        cluster = Cluster(root)
        try:
            yield cluster
        finally:
            cluster.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(name="stack")
def stack_fixture(
    cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """A receiver and a sim for one scenario; both killed and their databases dropped after."""
    name = request.node.name.removeprefix("test_")[:24]
    stack = Stack(cluster, tmp_path, name)
    try:
        yield stack
    finally:
        try:
            stack.close()
        finally:
            if not cluster.running:  # a scenario that stopped PostgreSQL failed half-way
                cluster.start()
        for service in stack.services:
            print(f"--- {service.name} log ({service.logfile}), last lines:\n{service.tail(30)}")


# --- the report ------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("faults").addoption(
        "--faults-report",
        metavar="PATH",
        default=None,
        help="write the fault scenarios' figures to PATH (RELIABILITY.md)",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("faults_report", default=None)
    if path:
        failed = session.testsfailed
        Path(path).write_text(render(ROWS, time.monotonic() - SESSION_START, failed))


def render(rows: list[Row], seconds: float, failed: int) -> str:
    """``RELIABILITY.md``: what each scenario injected, and what became of the interactions."""
    rows = sorted(rows, key=lambda r: r.number)
    cpu = f"{psutil.cpu_count()} CPUs, {platform.system()} {platform.machine()}"
    lines = [
        "# Reliability",
        "",
        "What sim does under faults, measured by the fault-injection suite in `tests/faults/`.",
        "Every scenario drives a real `hypercorn -c hypercorn.toml 'sim.app:create_app()'`",
        "process, a real embedded PostgreSQL and a real receiver (the standalone sink,",
        "`sim.sink.app:create_sink_app()`, on its own database) over HTTP, injects one kind of",
        "fault, and then checks from the outside (SQL on both databases, the receiver's",
        "`/sink/stats`, sim's `/readyz` and `/metrics`).",
        "",
        "Re-run it with `make faults` (it rewrites this file). `make test` runs the same",
        "scenarios without writing the file.",
        "",
        "- **generated**: interactions sim stored; **delivered**: distinct ids the receiver",
        "  holds; **failed**: rows sim marked `failed` with a reason (only where the receiver",
        "  refused them for good); **lost**: generated but neither delivered nor failed with a",
        "  reason.",
        "- **visible duplicates**: items the receiver holds twice, by id or by content (user,",
        "  kind, time, author, text). **redeliveries**: repeated deliveries of an id the receiver",
        "  already had; at-least-once delivery makes them, the receiver's de-duplication absorbs",
        "  them.",
        "- **recovery**: see each row.",
        "",
        "| # | scenario | injected | how much | generated | delivered | failed | lost"
        " | visible duplicates | redeliveries | recovery | duration |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        t = r.totals
        lines.append(
            f"| {r.number} | {r.scenario} | {r.injected} | {r.amount} | {t.generated} |"
            f" {t.delivered} | {t.failed_with_reason} | {t.lost} | {t.visible_duplicates} |"
            f" {t.redeliveries} | {r.recovery} | {r.seconds:.1f} s |"
        )
    lines += [
        "",
        "## Probes during the scenarios",
        "",
        "`/healthz` and `/readyz` as an orchestrator sees them: probed from a process of its",
        "own (one new connection per probe, one at a time, both paths every 100 ms) while the",
        "fault was on, so that the test's own load does not count. sim's probe timeout",
        f"(`SIM_READYZ_TIMEOUT_S`) is {PROBE_LIMIT_S:g} s here; the last column counts answers",
        "slower than that.",
        "",
        "| # | scenario | probe | probes | answers | p50 | p95 | max"
        f" | slower than {PROBE_LIMIT_S:g} s |",
        "|---|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        for p in r.probes:
            lines.append(f"| {r.number} | {r.scenario} | {_probe_cells(p)} |")
    lines += [
        "",
        "Checked after every scenario: every generated interaction is `sent` (or, in 7, `failed`",
        "with the receiver's reason); the receiver holds each sent id, and nothing else; no row",
        "is left `pending` or `sending` (none past its lease); no comment reached the receiver",
        "before its video. Besides: (1) every request was signed, `/readyz` is 200 again;",
        "(2) `/readyz` answered 503 within its timeout while PostgreSQL was down, the same",
        "worker process recovered, and with sim idle the first request after a restart answers",
        "at once; (3) no request outlived its timeout (sim's `/metrics` latency histogram), and",
        "sim's connections to the receiver, descriptors, threads and memory did not grow;",
        "(4) exit within hypercorn's graceful timeout, exit code 0, no ERROR or traceback in",
        "sim's log, no connection dropped in PostgreSQL's log, no row left `sending`;",
        "(5) every row claimed at the kill was claimed again and delivered; (6) every answer",
        "200/202 or 503 with `Retry-After` and a JSON error, and the run complete; (7) see the",
        "table; (8) every row generated, live items included, delivered once, none twice, and",
        "live items stored at the configured rate ±25% in every window, through the kill, the",
        "stop and the rolling restart; (9) `/readyz` stayed 200",
        "with the circuit open, no row failed, probes at most one per interval, and the attempt",
        "log kept the refused requests.",
        "",
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {cpu}: {len(rows)} scenarios"
        f" recorded, {failed} failed, {seconds:.0f} s in all.",
        "",
    ]
    return "\n".join(lines)
