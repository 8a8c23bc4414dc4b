"""The fault-injection kit: a private PostgreSQL, and sim and its receiver as real processes.

``Cluster`` is a dedicated embedded PostgreSQL that can be stopped and started again
(``pg_ctl``) and whose sim connections can be killed (``pg_terminate_backend``).
``Service`` is one ``hypercorn -c hypercorn.toml`` process (sim, or the standalone sink),
configured by environment variables only, its output captured to a file. ``Stack`` puts a
sink and a sim on their own databases and owns their lifetimes: every process it started
is killed when it closes, whatever happened. Every wait here is bounded.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import psycopg
import trio

from sim.db.embedded import EmbeddedPostgres, _start

__all__ = [
    "REPO",
    "SECRET",
    "Cluster",
    "Service",
    "Stack",
    "Storm",
    "Totals",
    "free_port",
    "wait_until",
]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECRET = "whsec_" + base64.b64encode(b"fault-suite-secret-32-bytes-long").decode()
#: settings every sim of the suite runs with: short leases, timeouts and backoffs
SIM_ENV = {
    "SIM_LEASE_S": "3",
    "SIM_REQUEST_TIMEOUT_S": "1",
    "SIM_BACKOFF_BASE_S": "0.05",
    "SIM_BACKOFF_MAX_S": "1",
    "SIM_MAX_ATTEMPTS": "50",
    "SIM_IDLE_POLL_S": "0.1",
    "SIM_POOL_MIN_SIZE": "2",
    "SIM_POOL_MAX_SIZE": "8",
    "SIM_POOL_TIMEOUT_S": "5",
    "SIM_RESTART_BACKOFF_S": "0.2",
    "SIM_RESTART_BACKOFF_MAX_S": "2",
    "SIM_READYZ_TIMEOUT_S": "1",
    "SIM_LOG_LEVEL": "INFO",
}
SINK_ENV = {
    "SIM_POOL_MIN_SIZE": "2",
    "SIM_POOL_MAX_SIZE": "8",
    "SIM_READYZ_TIMEOUT_S": "1",
    "SIM_LOG_LEVEL": "INFO",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, *, interval_s: float = 0.2, what: str
) -> float:
    """Poll ``check`` until it is true; the seconds it took. ``TimeoutError`` past the limit."""
    start = trio.current_time()
    with trio.move_on_after(timeout_s):
        while True:
            if await check():
                return trio.current_time() - start
            await trio.sleep(interval_s)
    raise TimeoutError(f"{what}: not within {timeout_s:g}s")


# --- PostgreSQL ------------------------------------------------------------------------------
class Cluster:
    """A dedicated embedded PostgreSQL that the suite may stop, start and harass."""

    def __init__(self, root: Path) -> None:
        self.server: EmbeddedPostgres = _start(root / "pgdata")
        info = self.server.server.get_postmaster_info()
        self.pgdata = Path(self.server.server.pgdata)
        self.socket_dir = Path(info.socket_dir)
        self.logfile = Path(self.server.server.log)
        self.user: str | None = self.server.server.system_user
        self.running = True

    def url(self, database: str) -> str:
        return self.server.url(database)

    def _admin(self, database: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> str:
        with self._admin() as conn:
            conn.execute(f'create database "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    def query(self, database: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """One statement on ``database`` (its own short connection); the rows, if any."""
        with self._admin(database) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def log_offset(self) -> int:
        return self.logfile.stat().st_size

    def dropped_connections(self, since: int) -> int:
        """Sessions that ended without a goodbye since log offset ``since``.

        A client that closes its connection says so; one that vanishes leaves an
        "unexpected EOF" (logged for idle sessions too in databases made by ``Stack``).
        """
        with self.logfile.open("rb") as log_file:
            log_file.seek(since)
            text = log_file.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if "unexpected EOF on client" in line)

    def _pg_ctl(self, *args: str, timeout_s: float = 30) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=timeout_s)

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are disconnected); waits until it is down."""
        self._pg_ctl("-w", "-m", "fast", "stop")
        self.running = False

    def start(self) -> None:
        """Start it again on the same socket; waits until it accepts connections."""
        from pgserver.utils import PostmasterInfo

        self._pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.logfile), "start"
        )
        # pgserver stops the server it knows at clean-up: let it know the new postmaster
        self.server.server._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)
        self.running = True

    def close(self) -> None:
        """Stop the server (pgserver does, as the last handle goes) and release the handle."""
        if not self.running:
            self.server.server._postmaster_info = None  # nothing left to stop
        self.server.stop()
        self.running = False


class Storm:
    """Terminates every ``sim`` backend of one database, every ``interval_s``, until stopped."""

    def __init__(self, cluster: Cluster, database: str, interval_s: float = 0.1) -> None:
        self.cluster = cluster
        self.database = database
        self.interval_s = interval_s
        self.rounds = 0
        self.killed = 0

    async def run(self, stop: trio.Event) -> None:
        conn = await trio.to_thread.run_sync(self.cluster._admin)
        try:
            while not stop.is_set():
                rows = await trio.to_thread.run_sync(self._kill, conn)
                self.rounds += 1
                self.killed += rows
                with trio.move_on_after(self.interval_s):
                    await stop.wait()
        finally:
            conn.close()

    def _kill(self, conn: psycopg.Connection[Any]) -> int:
        rows = conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = 'sim' and datname = %s and pid <> pg_backend_pid()",
            (self.database,),
        ).fetchall()
        return sum(1 for (ok,) in rows if ok)


# --- processes -------------------------------------------------------------------------------
class Service:
    """One ``hypercorn -c hypercorn.toml <app>`` process (master + one worker) on a free port."""

    def __init__(self, name: str, app: str, env: Mapping[str, str], logdir: Path) -> None:
        self.name = name
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env)
        self.logfile = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
        base.pop("DATABASE_URL", None)
        base["PYTHONUNBUFFERED"] = "1"
        hypercorn = BIN / "hypercorn"
        args = [str(hypercorn), "-c", "hypercorn.toml", "-b", f"127.0.0.1:{self.port}", self.app]
        self.starts += 1
        with self.logfile.open("ab") as out:
            out.write(f"--- start {self.starts}: {' '.join(args)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                args,
                cwd=REPO,
                env={**base, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches the worker too
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def worker(self) -> psutil.Process | None:
        """hypercorn's worker process (where sim runs), if it is up."""
        if not self.alive():
            return None
        try:
            children = psutil.Process(self.pid).children()
            for child in children:  # the other child is multiprocessing's resource tracker
                if any("spawn_main" in arg for arg in child.cmdline()):
                    return child
        except psutil.NoSuchProcess:
            pass
        return None

    def connections_to(self, port: int) -> dict[str, int]:
        """The worker's TCP connections to 127.0.0.1:``port``, counted by state."""
        worker = self.worker()
        counts: dict[str, int] = {}
        if worker is None:
            return counts
        for c in worker.net_connections(kind="tcp"):
            if c.raddr and c.raddr.port == port:
                counts[c.status] = counts.get(c.status, 0) + 1
        return counts

    def rss_mib(self) -> float:
        worker = self.worker()
        return 0.0 if worker is None else worker.memory_info().rss / 2**20

    async def wait_ready(self, timeout_s: float = 30) -> float:
        """Until ``/readyz`` answers 200; the seconds it took. Fails if the process exits."""
        start = trio.current_time()
        async with httpx.AsyncClient(timeout=2) as client:
            with trio.move_on_after(timeout_s):
                while True:
                    if not self.alive():
                        raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
                    try:
                        response = await client.get(self.url + "/readyz")
                        if response.status_code == 200:
                            return trio.current_time() - start
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready within {timeout_s:g}s:\n{self.tail()}")

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the master (hypercorn forwards a shutdown to its worker)."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the whole process group (master and worker), at once."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            log.error("%s (pid %d) survived SIGKILL", self.name, self.proc.pid)

    async def wait_exit(self, timeout_s: float) -> float | None:
        """Seconds until the master exited, or None if it still runs after ``timeout_s``."""
        proc = self.proc
        assert proc is not None
        start = trio.current_time()
        try:
            await trio.to_thread.run_sync(partial(proc.wait, timeout_s))
        except subprocess.TimeoutExpired:
            return None
        return trio.current_time() - start

    def log_text(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def problems(self) -> list[str]:
        """Log lines at ERROR or above, and tracebacks."""
        pattern = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")
        return [line for line in self.log_text().splitlines() if pattern.search(line)]


@dataclass(frozen=True)
class Totals:
    """What became of a scenario's interactions, from sim's side and the receiver's."""

    expected: int  # interactions the demo runs consist of (their initial bursts)
    generated: int  # rows sim stored
    statuses: dict[str, int]  # sim's rows by status
    failed_with_reason: int  # ``failed`` rows that say why
    delivered: int  # distinct generated ids the receiver holds
    received: int  # deliveries the receiver counted, repeats of an id included
    missing: int  # ``sent`` by sim's account but absent at the receiver
    unexpected: int  # held by the receiver but never generated by sim
    visible_duplicates: int  # items the receiver holds twice (same id, or same content)

    @property
    def redeliveries(self) -> int:
        """Deliveries of an id the receiver already had (absorbed by its de-duplication)."""
        return self.received - self.delivered

    @property
    def lost(self) -> int:
        """Interactions neither held by the receiver nor ``failed`` with a reason."""
        return self.expected - self.delivered - self.failed_with_reason


class Stack:
    """A receiver (the standalone sink) and a sim, each on its own database of ``cluster``."""

    def __init__(self, cluster: Cluster, workdir: Path, name: str) -> None:
        self.cluster = cluster
        self.workdir = workdir
        tag = uuid.uuid4().hex[:8]
        self.sim_db = f"sim_{name}_{tag}"
        self.sink_db = f"sink_{name}_{tag}"
        self.services: list[Service] = []
        self.sink: Service | None = None
        self.sim: Service | None = None

    def start_sink(self, **env: str) -> Service:
        url = self.cluster.create_database(self.sink_db)
        sink = Service(
            "sink",
            "sim.sink.app:app",
            {**SINK_ENV, "DATABASE_URL": url, "SIM_WEBHOOK_SECRET": SECRET, **env},
            self.workdir,
        )
        self.services.append(sink)
        sink.start()
        self.sink = sink
        return sink

    def start_sim(self, **env: str) -> Service:
        assert self.sink is not None, "start the receiver first"
        url = self.cluster.create_database(self.sim_db)
        # an idle session that ends without a goodbye is logged (at DEBUG1) only with this
        self.cluster.query(
            "postgres", f'alter database "{self.sim_db}" set log_min_messages = debug1'
        )
        sim = Service(
            "sim",
            "sim.app:app",
            {
                **SIM_ENV,
                "DATABASE_URL": url,
                "SIM_MAIN_APP_URL": self.sink.url + "/sink/interactions",
                "SIM_WEBHOOK_SECRET": SECRET,
                **env,
            },
            self.workdir,
        )
        sim.env["SIM_PUBLIC_URL"] = sim.url
        self.services.append(sim)
        sim.start()
        self.sim = sim
        return sim

    async def start(
        self, sim_env: Mapping[str, str] = {}, sink_env: Mapping[str, str] = {}
    ) -> None:
        """Start the receiver and sim (concurrently) and wait until both are ready."""
        sink = self.start_sink(**sink_env)
        sim = self.start_sim(**sim_env)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sink.wait_ready)
            nursery.start_soon(sim.wait_ready)

    def close(self) -> None:
        for service in self.services:
            service.kill()
        for name in (self.sim_db, self.sink_db):
            if self.cluster.running:
                try:
                    self.cluster.drop_database(name)
                except psycopg.Error:
                    log.warning("Could not drop %s", name, exc_info=True)

    # --- driving -----------------------------------------------------------------------------
    async def enable(
        self, client: httpx.AsyncClient, user_id: str, *, timeout_s: float = 30, **spec: Any
    ) -> None:
        """Turn demo mode on (retrying while sim answers 503), live generation off."""
        assert self.sim is not None
        body = {"live_per_minute": 0, "seed": 7, **spec}
        with trio.fail_after(timeout_s):
            while True:
                try:
                    r = await client.put(f"{self.sim.url}/v1/users/{user_id}/demo", json=body)
                except httpx.TransportError:
                    await trio.sleep(0.2)
                    continue
                if r.status_code in (200, 202):
                    return
                assert r.status_code == 503, (r.status_code, r.text)
                await trio.sleep(0.2)

    async def set_faults(self, client: httpx.AsyncClient, **faults: Any) -> None:
        assert self.sink is not None
        r = await client.put(self.sink.url + "/sink/admin/faults", json=faults)
        assert r.status_code == 200, r.text

    async def sink_stats(self, client: httpx.AsyncClient) -> dict[str, int]:
        assert self.sink is not None
        r = await client.get(self.sink.url + "/sink/stats")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def readyz(self, client: httpx.AsyncClient) -> int:
        assert self.sim is not None
        r = await client.get(self.sim.url + "/readyz")
        return r.status_code

    # --- checking (from outside: SQL on both databases) -----------------------------------------
    def statuses(self) -> dict[str, int]:
        rows = self.cluster.query(
            self.sim_db, "select status, count(*) from interactions group by status"
        )
        return {str(s): int(n) for s, n in rows}

    async def settled(self) -> dict[str, int]:
        """Status counts (by a thread: the query must not block the test's event loop)."""
        return await trio.to_thread.run_sync(self.statuses)

    def expected_total(self) -> int:
        rows = self.cluster.query(
            self.sim_db, "select coalesce(sum(initial_total), 0) from demo_users"
        )
        return int(rows[0][0])

    async def wait_done(self, timeout_s: float, *, interval_s: float = 0.25) -> float:
        """Until every generated interaction is ``sent`` or ``failed``; the seconds it took."""
        total = await trio.to_thread.run_sync(self.expected_total)

        async def done() -> bool:
            counts = await self.settled()
            return counts.get("sent", 0) + counts.get("failed", 0) >= total > 0

        return await wait_until(done, timeout_s, interval_s=interval_s, what="the run completing")

    def overdue_leases(self) -> int:
        """Rows still ``sending`` although their lease ran out (more than a second ago)."""
        rows = self.cluster.query(
            self.sim_db,
            "select count(*) from interactions"
            " where status = 'sending' and due_at < now() - interval '1 second'",
        )
        return int(rows[0][0])

    def unsigned(self) -> int:
        """Items the receiver took without a Standard Webhooks message id (it verifies them)."""
        rows = self.cluster.query(
            self.sink_db,
            "select count(*) from sink_received where webhook_id is null"
            " or webhook_id !~ '^msg_[0-9a-f]{32}$'",
        )
        return int(rows[0][0])

    def totals(self) -> Totals:
        """Compare what sim generated and recorded with what the receiver holds, id by id."""
        rows = self.cluster.query(self.sim_db, "select id, status, last_error from interactions")
        generated = {str(i): (str(s), e) for i, s, e in rows}
        held = {
            str(i): int(n)
            for i, n in self.cluster.query(self.sink_db, "select id, deliveries from sink_received")
        }
        # same id twice, or one item (user, kind, time, author, text) under two ids
        (dupes,) = self.cluster.query(
            self.sink_db,
            "select count(*) - count(distinct (user_id, kind, payload->>'created_at',"
            " payload->>'author', payload->>'text')) + count(*) - count(distinct id)"
            " from sink_received",
        )
        statuses: dict[str, int] = {}
        for status, _ in generated.values():
            statuses[status] = statuses.get(status, 0) + 1
        sent = {i for i, (s, _) in generated.items() if s == "sent"}
        return Totals(
            expected=self.expected_total(),
            generated=len(generated),
            statuses=statuses,
            failed_with_reason=sum(1 for s, e in generated.values() if s == "failed" and e),
            delivered=len(held.keys() & generated.keys()),
            received=sum(n for i, n in held.items() if i in generated),
            missing=len(sent - held.keys()),
            unexpected=len(held.keys() - generated.keys()),
            visible_duplicates=int(dupes[0]),
        )
