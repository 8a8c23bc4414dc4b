"""SIGTERM or Ctrl-C on ``make run`` with the bundled sink: sim exits, delivering nothing after.

sim runs as ``make run`` runs it (``python -m sim serve``), delivering to its own ``/sink``
while a user's burst is on its way. "After the signal" is made exact: sim is frozen
(SIGSTOP) while the test reads the clock, the signal is queued, and only then does sim
resume (SIGCONT) with the signal pending, so nothing in sim runs between the clock
reading and the signal. The sink stores the time it took each request, so a request taken
after the signal would show. How long the exit took is reported (``exit_after_signal_s``
in the test's report), not asserted against a tight bound: timings on a busy machine
belong in the docs.
"""

from __future__ import annotations

import base64
import ctypes
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from conftest import sql
from faults.faultproc import REPO, Service, wait_until

BURST = {"videos": 20, "comments": 3000, "dms": 3000, "live_per_minute": 0}
BATCH = 20  # small batches: a steady stream of requests to /sink
LIMIT_S = 2.0  # the exit the issue asks for (reported; only a gross overrun fails)
OVERRUN_S = 30.0


class Served(Service):
    """``python -m sim serve`` (what ``make run`` runs): sim and hypercorn in one process."""

    def start(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
        base.pop("DATABASE_URL", None)
        args = [sys.executable, "-m", "sim", "serve", "--bind", f"127.0.0.1:{self.port}"]
        with self.logfile.open("ab") as out:
            self.proc = subprocess.Popen(
                args,
                cwd=REPO,
                env={**base, "PYTHONUNBUFFERED": "1", **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


@pytest.fixture
def sim(db_url: str, tmp_path: Path) -> Any:
    """sim served on the test's database, delivering to its own bundled sink."""
    service = Served(
        "sim",
        "sim.app:create_app()",
        {
            "DATABASE_URL": db_url,
            "SIM_DATA_DIR": str(tmp_path / "data"),
            "SIM_SEND_BATCH_SIZE": str(BATCH),
            "SIM_LOG_LEVEL": "INFO",
            # signed: the sink keeps each request's webhook id, so requests can be counted
            "SIM_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"shutdown-test-secret").decode(),
        },
        tmp_path,
    )
    service.env["SIM_PUBLIC_URL"] = service.url
    yield service
    service.kill()


def _frozen(pid: int) -> bool:
    """Every thread of ``pid`` is stopped (state ``T`` in ``/proc``)."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # a thread that just ended
            continue
        states.append(stat.rpartition(")")[2].split()[0])
    return bool(states) and all(state in ("T", "t") for state in states)


def _to_main_thread(pid: int, sig: signal.Signals) -> None:
    """``sig`` to the main thread of ``pid`` (tgkill(2)), the thread that runs sim's handler.

    Sent to the process instead, the signal may be taken on resuming by another of its
    threads, and the main thread would run on for a moment before Python notices it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.tgkill(pid, pid, int(sig)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


async def _signal_exactly(pid: int, sig: signal.Signals) -> datetime:
    """Deliver ``sig`` to the frozen process; the time before which sim did all it did."""
    os.kill(pid, signal.SIGSTOP)

    async def frozen() -> bool:
        return _frozen(pid)

    await wait_until(frozen, 10, what="sim stopped by SIGSTOP", interval_s=0.005)
    signalled_at = datetime.now(UTC)
    _to_main_thread(pid, sig)
    os.kill(pid, signal.SIGCONT)
    return signalled_at


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_stops_sim_and_its_deliveries_at_once(
    sim: Service, db_url: str, sig: signal.Signals, record_property: Any
) -> None:
    """Mid-burst signal: exit 0; nothing stored or counted after it; claimed rows given back."""
    sim.start()
    await sim.wait_ready(60)
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as http:
        enabled = await http.put("/v1/users/stop-user/demo", json=BURST)
        assert enabled.status_code == 202, enabled.text

        async def delivering() -> bool:
            return int((await http.get("/sink/stats")).json()["unique"]) >= 10 * BATCH

        await wait_until(delivering, 60, what="deliveries to /sink", interval_s=0.05)

    signalled_at = await _signal_exactly(sim.pid, sig)
    exited = await sim.wait_exit(OVERRUN_S)
    assert exited is not None, f"sim still runs {OVERRUN_S:g} s after {sig.name}:\n{sim.tail()}"
    assert sim.proc is not None and sim.proc.returncode == 0, sim.tail()
    assert sim.problems() == [], sim.tail()

    ((received, late, late_requests),) = await trio.to_thread.run_sync(
        sql,
        db_url,
        "select count(*), count(*) filter (where first_seen_at > %(t)s),"
        " count(distinct webhook_id) filter (where first_seen_at > %(t)s) from sink_received",
        {"t": signalled_at},
    )
    refused = sim.log_text().count('"POST /sink/interactions 1.1" 503')
    record_property("exit_after_signal_s", round(exited, 2))
    record_property("stored_after_signal", f"{late} interactions in {late_requests} requests")
    record_property("sink_503_answers", refused)
    print(
        f"{sig.name}: exit {exited:.2f}s after it (asked: {LIMIT_S:g}s); stored after it:"
        f" {late} interactions in {late_requests} requests; {refused} requests refused (503)"
    )
    total = sum(v for k, v in BURST.items() if k != "live_per_minute")
    assert received < total, "the burst was over before the signal"
    assert (late, late_requests) == (0, 0), "the sink stored requests taken after the signal"

    by_status = dict(
        await trio.to_thread.run_sync(
            sql, db_url, "select status, count(*) from interactions group by 1"
        )
    )
    # nothing is left leased: the rows in flight went back to pending, nothing failed
    assert set(by_status) <= {"pending", "sent"}, by_status
    ((attempts, logged, cut_short),) = await trio.to_thread.run_sync(
        sql,
        db_url,
        "select (select coalesce(sum(attempts), 0) from interactions),"
        " (select coalesce(sum(items), 0) from delivery_attempts),"
        " (select count(*) from delivery_attempts where outcome <> 'ok'"
        "  and at + make_interval(secs => latency_s) > %(t)s)",
        {"t": signalled_at},
    )
    # every attempt a row counts is a request that got an answer (the attempt log has it):
    # the requests the signal cut short counted nowhere, neither as attempts nor as failures
    assert attempts == logged, f"rows count {attempts} attempts, answered requests carried {logged}"
    assert cut_short == 0, f"{cut_short} requests ended by the signal were logged as failures"
