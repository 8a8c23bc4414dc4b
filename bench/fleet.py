"""Many users on one instance, several instances on one PostgreSQL.

(a) ``users`` users of ``per_user`` items each (live rate 0) turned on at once through
``PUT /v1/users/{id}/demo`` by ``clients`` parallel clients against sim under hypercorn
(``make run``'s config), the enables inside the clock: items per second until every
initial item is ``sent`` (read from PostgreSQL). While that burst runs, a new user of
the API's default 208 items is turned on each second: the time until the receiver has
all 208 shows whether the burst holds it back. (c) ``users`` users live at the API's
default rate (seeded directly, resumed by sim at start), and new users turned on one
after another, the same way. (e) The peak RSS (VmHWM) of sim's process in (a) and (c).
(b) PostgreSQL transactions per second (``pg_stat_database.xact_commit``) of an idle
instance: users fully delivered, live rate 0, seeded, 20 against ``users``, alternating.
(d) The one-user relay (``bench.relay``'s data) drained by 1, 2 and 3 sim processes
(each sim's ``Runtime`` without the HTTP API) sharing one database, alternating.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

import httpx
import psycopg
import trio

from bench.data import outbox_rows, seed_users
from bench.pg import BenchPostgres, copy_rows
from bench.proc import Receiver, SimApp, run_worker, sim_app
from bench.stats import Series, percentile

__all__ = ["FleetResult", "fleet_relay", "run_fleet"]

DB = "bench_fleet"
DEFAULT_ITEMS = 8 + 100 + 100  # a new user with the API's defaults
LIVE_PER_MINUTE = 6.0  # the API's default
SETTLE_S = 12.0


# --- worker side: one sim instance of the multi-instance relay ------------------------------
async def _fleet_relay(url: str, receiver_url: str, overrides: dict[str, Any]) -> dict[str, Any]:
    from sim.runtime import Runtime
    from sim.settings import Settings

    settings = Settings(database_url=url, main_app_url=receiver_url, **overrides)
    runtime = Runtime(settings)
    started = time.time()
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        with psycopg.connect(url, autocommit=True) as watch:
            left = "select exists (select from interactions where status in ('pending', 'sending'))"
            with trio.fail_after(600):
                while True:  # done when no instance has anything left to record
                    row = await trio.to_thread.run_sync(lambda: watch.execute(left).fetchone())
                    if row is not None and not row[0]:
                        break
                    await trio.sleep(0.02)
        finished = time.time()
        recorder = runtime.recorder
        written = recorder.rows_written if recorder is not None else 0
        runtime.stop()
    return {"started": started, "finished": finished, "written": written}


def fleet_relay(args: dict[str, Any]) -> dict[str, Any]:
    """Run one sim instance until no row of the shared outbox is left to record."""
    result: dict[str, Any] = trio.run(
        _fleet_relay, args["url"], args["receiver"], args.get("overrides", {})
    )
    return result


# --- orchestration ---------------------------------------------------------------------------
@dataclass
class FleetResult:
    users: int
    burst_users: int
    per_user: int
    clients: int
    enable_s: list[float] = field(default_factory=list)
    visible_s: list[float] = field(default_factory=list)
    burst_probe_ms: list[float] = field(default_factory=list)
    burst_visible: list[int] = field(default_factory=list)  # items sent when the clock stopped
    burst_max_s: float = 600.0
    live_probe_ms: list[float] = field(default_factory=list)
    live_received: list[int] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    idle_users: tuple[int, int] = (20, 2000)
    idle_tps: dict[int, list[float]] = field(default_factory=dict)
    idle_window_s: float = 0.0
    relay_rows: int = 0
    relay: dict[int, list[float]] = field(default_factory=dict)

    @property
    def burst_rate(self) -> Series:
        return Series.of([n / s for n, s in zip(self.burst_visible, self.visible_s, strict=True)])

    @property
    def burst_complete(self) -> bool:
        return all(n >= self.burst_users * self.per_user for n in self.burst_visible)

    @property
    def idle_ratio(self) -> Series:
        few, many = (self.idle_tps[n] for n in self.idle_users)
        return Series.of([b / a for a, b in zip(few, many, strict=False) if a])

    def p95(self, values: list[float]) -> float:
        return percentile(values, 95)


def _put(app: SimApp, client: httpx.Client, user_id: str, body: dict[str, Any]) -> None:
    response = client.put(f"{app.url}/v1/users/{user_id}/demo", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"PUT demo for {user_id}: HTTP {response.status_code}")


def _probe(app: SimApp, receiver: Receiver, client: httpx.Client, user_id: str) -> float:
    """Turn on a user with the defaults (live rate 0); ms until the receiver has all items."""
    started = time.monotonic()
    _put(app, client, user_id, {"live_per_minute": 0})
    params: dict[str, str | int | float] = {"user": user_id, "n": DEFAULT_ITEMS, "timeout": 120}
    doc = client.get(receiver.url + "/wait", params=params, timeout=130).json()
    if doc["count"] < DEFAULT_ITEMS:
        raise RuntimeError(f"{user_id}: only {doc['count']} of {DEFAULT_ITEMS} arrived")
    return float((doc["reached_at"] - started) * 1000)


def _burst(
    pg: BenchPostgres, receiver: Receiver, result: FleetResult, rnd: int, probes: int, log: IO[str]
) -> None:
    url = pg.create(DB, schema=False)
    receiver.reset()
    n, per_user = result.burst_users, result.per_user
    body = {
        "videos": 1,
        "comments": per_user // 2 - 1,
        "dms": per_user - per_user // 2,
        "live_per_minute": 0,
        "seed": 7,
    }
    env = {"DATABASE_URL": url, "SIM_MAIN_APP_URL": receiver.ingest_url}
    sent_sql = (
        "select count(*) from interactions where status = 'sent'"
        " and user_id like 'fleet-%%' and seq < %s"
    )
    with sim_app(env, log=log) as app, psycopg.connect(url, autocommit=True) as watch:
        done = threading.Event()
        burst_probes: list[float] = []

        def probe_during_burst() -> None:
            with httpx.Client(timeout=60) as client:
                for i in range(probes):
                    if done.wait(1.0):
                        return
                    burst_probes.append(_probe(app, receiver, client, f"probe-b{rnd}-{i:02d}"))

        local = threading.local()

        def enable(u: int) -> None:
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=60)
            _put(app, local.client, f"fleet-{u:05d}", body)

        prober = threading.Thread(target=probe_during_burst, daemon=True)
        started = time.monotonic()
        prober.start()
        with ThreadPoolExecutor(result.clients) as pool:
            list(pool.map(enable, range(n)))
        result.enable_s.append(time.monotonic() - started)
        deadline = started + result.burst_max_s  # then the clock stops with what is visible
        while True:
            row = watch.execute(sent_sql.encode(), (per_user,)).fetchone()
            visible = int(row[0]) if row is not None else 0
            if visible >= n * per_user or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        result.visible_s.append(time.monotonic() - started)
        result.burst_visible.append(visible)
        done.set()
        prober.join(150)
        result.burst_probe_ms.extend(burst_probes)
        result.peak_rss_mb.append(app.peak_rss_mb())
    pg.drop(DB)


def _seeded(pg: BenchPostgres, n: int, live_per_minute: float) -> str:
    """A database with ``n`` users fully delivered (one item each) at ``live_per_minute``."""
    url = pg.create(DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into demo_users (user_id, state, enabled, run_id, seed, videos, comments, dms,"
            " live_per_minute, initial_total, generated, enabled_at, live_at)"
            " select 'seeded-' || lpad(g::text, 5, '0'), 'live', true, gen_random_uuid(), g,"
            " 0, 0, 1, %s, 1, 1, now(), now() from generate_series(1, %s) g",
            (live_per_minute, n),
        )
        conn.execute(
            "insert into interactions (id, user_id, seq, kind, payload, created_at, status,"
            " sent_at) select gen_random_uuid(), user_id, 0, 'dm', '{}', now(), 'sent', now()"
            " from demo_users"
        )
        conn.execute("vacuum analyze")  # no autovacuum inside the measured window
    return url


def _live_probes(
    pg: BenchPostgres, receiver: Receiver, result: FleetResult, rnd: int, probes: int, log: IO[str]
) -> None:
    url = _seeded(pg, result.users, LIVE_PER_MINUTE)
    receiver.reset()
    env = {"DATABASE_URL": url, "SIM_MAIN_APP_URL": receiver.ingest_url}
    with sim_app(env, log=log, ready_timeout_s=600) as app, httpx.Client(timeout=60) as client:
        time.sleep(SETTLE_S)
        for i in range(probes):
            result.live_probe_ms.append(_probe(app, receiver, client, f"probe-l{rnd}-{i:02d}"))
        result.peak_rss_mb.append(app.peak_rss_mb())
        result.live_received.append(receiver.stats()["unique"] - probes * DEFAULT_ITEMS)
    pg.drop(DB)


def _idle_tps(
    pg: BenchPostgres, receiver: Receiver, n: int, window_s: float, log: IO[str]
) -> float:
    url = _seeded(pg, n, 0)
    env = {"DATABASE_URL": url, "SIM_MAIN_APP_URL": receiver.ingest_url}
    with sim_app(env, log=log, ready_timeout_s=600):  # resuming every user comes first
        # an idle backend reports its statistics after up to 10 s: the start-up's must
        # not land inside the window
        time.sleep(SETTLE_S)
        before, t0 = pg.commits(DB), time.monotonic()
        time.sleep(window_s)
        after, t1 = pg.commits(DB), time.monotonic()
    pg.drop(DB)
    return (after - before) / (t1 - t0)


def _relay(
    pg: BenchPostgres, receiver: Receiver, data: list[tuple[Any, ...]], k: int, log: IO[str]
) -> float:
    url = pg.url(DB)
    copy_rows(url, data)
    seed_users(url, 1, len(data))
    receiver.reset()
    args = {"url": url, "receiver": receiver.ingest_url}
    with ThreadPoolExecutor(k) as pool:
        outs = list(pool.map(lambda _: run_worker("fleet-relay", args, log=log), range(k)))
    stats = receiver.stats()
    written = sum(o["written"] for o in outs)
    if stats["unique"] != len(data) or written < len(data):
        raise RuntimeError(f"relay x{k}: receiver has {stats['unique']}, recorded {written}")
    seconds = float(max(o["finished"] for o in outs) - min(o["started"] for o in outs))
    return len(data) / seconds


def run_fleet(
    pg: BenchPostgres,
    receiver: Receiver,
    *,
    users: int,
    burst_users: int,
    per_user: int,
    clients: int,
    probes: int,
    live_probes: int,
    rounds: int,
    burst_rounds: int,
    relay_rows: int,
    idle_window_s: float,
    log: IO[str],
    say: Any,
) -> FleetResult:
    result = FleetResult(users, burst_users, per_user, clients, idle_users=(20, users))
    result.idle_window_s = idle_window_s
    for r in range(burst_rounds):
        _burst(pg, receiver, result, r, probes, log)
        _live_probes(pg, receiver, result, r, live_probes, log)
        say(
            f"  (a) {burst_users:,} x {per_user} enabled by {clients} clients in "
            f"{result.enable_s[-1]:.1f} s, {result.burst_visible[-1]:,} visible after "
            f"{result.visible_s[-1]:.1f} s "
            f"({result.burst_rate.values[-1]:,.0f} items/s); (c) a new user's "
            f"{DEFAULT_ITEMS}: during the burst p95 {result.p95(result.burst_probe_ms):.0f} ms, "
            f"while live p95 {result.p95(result.live_probe_ms):.0f} ms; (e) peak RSS "
            f"{result.peak_rss_mb[-1]:.0f} MB"
        )
    for r in range(rounds):
        for n in result.idle_users if r % 2 == 0 else reversed(result.idle_users):
            tps = _idle_tps(pg, receiver, n, idle_window_s, log)
            result.idle_tps.setdefault(n, []).append(tps)
            say(f"  (b) {n:,} idle users: {tps:.1f} transactions/s")
    pg.create(DB)
    data = list(outbox_rows(1, relay_rows))
    result.relay_rows = len(data)
    for r in range(rounds):
        for k in (1, 2, 3) if r % 2 == 0 else (3, 2, 1):
            rate = _relay(pg, receiver, data, k, log)
            result.relay.setdefault(k, []).append(rate)
            say(f"  (d) relay of {len(data):,} by {k} instance(s): {rate:,.0f}/s")
    pg.drop(DB)
    return result
