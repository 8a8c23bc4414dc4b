"""BENCHMARKS.md from one invocation's results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.attemptlog import AttemptLogResult
from bench.fleet import FleetResult
from bench.fleet_report import fleet_section, fleet_summary
from bench.recording import OLD_BATCH, OLD_PER_SESSION, USERS, RecordingResult
from bench.relay import RelayResult
from bench.scale import PER_USER, ScalePoint
from bench.stats import Series
from bench.tuning import Tuning
from bench.visible import INITIAL, VisibleResult
from sim.settings import Settings

__all__ = ["TARGETS", "Results", "render"]

#: the targets each verdict is computed against (the summary's "target" column)
TARGETS = {
    "rec-old": 4.0,  # sim's recorder ÷ the old method, at least
    "rec-ceil": 0.9,  # sim's recorder ÷ the raw ceiling, at least
    "relay-pgq": 1.5,  # sim's relay ÷ pgqueuer, at least
    "relay-rate": 10_000.0,  # sim's relay, interactions/s, at least
    "visible-ms": 500.0,  # p95 time to visible, below
    "scale-time": 1.2,  # time per 1,000 at the largest size ÷ the smallest, at most
    "scale-rss-mb": 150.0,  # peak RSS, below
    "scale-rss-flat": 1.5,  # largest peak ÷ smallest peak, at most
}


@dataclass
class Results:
    command: str
    quick: bool
    sections: set[str]
    machine: str = ""
    pg_settings: str = ""
    duration_s: float = 0.0
    recording: RecordingResult | None = None
    relay: RelayResult | None = None
    visible: VisibleResult | None = None
    scale: list[ScalePoint] | None = None
    tuning: Tuning | None = None
    fleet: FleetResult | None = None
    attempt_log: AttemptLogResult | None = None
    lines: list[str] = field(default_factory=list)


def _mark(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _summary(r: Results) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """Rows of the summary table, and the names of missed targets."""
    rows: list[list[str]] = []
    missed: list[tuple[str, str]] = []

    def add(name: str, what: str, target: str, value: str, ok: bool | None) -> None:
        rows.append([what, target, value, _mark(ok)])
        if ok is False:
            missed.append((name, what))

    t = TARGETS
    if r.recording is not None:
        a = r.recording.sim_over_old
        c = r.recording.sim_over_ceiling
        add(
            "rec-old",
            "1. recording: sim ÷ old method",
            f"≥ {t['rec-old']:g}x",
            a.fmt(".1f", "x"),
            a.median >= t["rec-old"],
        )
        add(
            "rec-ceil",
            "1. recording: sim ÷ raw ceiling",
            f"≥ {t['rec-ceil']:g}",
            c.fmt(".2f"),
            c.median >= t["rec-ceil"],
        )
    if r.relay is not None and "relay" in r.sections:
        q = r.relay.sim_over_pgq
        add(
            "relay-pgq",
            "2. relay: sim ÷ pgqueuer",
            f"≥ {t['relay-pgq']:g}x",
            q.fmt(".2f", "x"),
            q.median >= t["relay-pgq"],
        )
        s = r.relay.sim
        add(
            "relay-rate",
            "2. relay: sim",
            f"≥ {t['relay-rate']:,.0f}/s",
            s.fmt(",.0f", "/s"),
            s.median >= t["relay-rate"],
        )
    if r.visible is not None:
        p95 = r.visible.p95
        add(
            "visible",
            "3. time to visible, p95",
            f"< {t['visible-ms']:g} ms",
            p95.fmt(".0f", " ms"),
            p95.hi < t["visible-ms"],
        )
    if r.scale:
        first, last = r.scale[0], r.scale[-1]
        ratio = last.per_1000_ms.median / first.per_1000_ms.median
        add(
            "scale-time",
            f"4. time per 1,000: {last.total:,} ÷ {first.total:,}",
            f"≤ {t['scale-time']:g}",
            f"{ratio:.2f}",
            ratio <= t["scale-time"],
        )
        peaks = [max(p.peak_rss_mb) for p in r.scale]
        flat = max(peaks) <= t["scale-rss-flat"] * min(peaks)
        add(
            "scale-rss",
            "4. peak RSS of sim, all sizes",
            f"< {t['scale-rss-mb']:g} MB, flat (largest ≤ {t['scale-rss-flat']:g} x smallest)",
            f"{min(peaks):.0f}-{max(peaks):.0f} MB",
            max(peaks) < t["scale-rss-mb"] and flat,
        )
    if r.relay is not None and "connections" in r.sections:
        worst = max(r.relay.sessions)
        add(
            "connections",
            f"5. sessions opened in the {r.relay.rows:,}-row relay",
            f"≤ pool max ({r.relay.pool_max})",
            f"{worst} (max of {len(r.relay.sessions)} runs)",
            worst <= r.relay.pool_max,
        )
    for name, what, target, value, ok in fleet_summary(r.fleet) if r.fleet else []:
        add(name, what, target, value, ok)
    return rows, missed


def _recording(rec: RecordingResult) -> list[str]:
    s = Settings()
    out = [
        "## 1. Recording throughput: mark delivered interactions `sent`",
        "",
        f"{rec.rows:,} rows in status `sending` ({USERS} users, payloads from sim's "
        "generator), COPYed afresh, VACUUM ANALYZEd and CHECKPOINTed before every run.",
        "",
        "- **(a) old method**: sync psycopg, `UPDATE interactions SET status = 'sent', "
        f"sent_at = now() WHERE id IN ({OLD_BATCH} ids)`, one batch at a time, a commit "
        f"each, a new connection every {OLD_PER_SESSION} rows — on the table as the old "
        "service had it, with a unique index on `id` (sim's key is `(user_id, seq)`; the "
        "index is created for these runs and dropped after).",
        f"- **(b) sim's recorder as shipped**: `Recorder` writing through "
        f"`sim.db.outbox.record` with the `Settings` defaults (batches of "
        f"{s.record_batch_size:,}, {s.record_concurrency} in flight, pool "
        f"{s.pool_min_size}-{s.pool_max_size}), fed lists of {s.send_batch_size:,} outcomes "
        "as the senders feed it, through trio-asyncio as in production.",
        "- **(c) ceiling**: raw psycopg (asyncio, one connection per concurrent writer) over "
        "the grid below; each round runs the three best screening variants and keeps the "
        "fastest.",
        "",
    ]
    rows = [
        ["(a) old method", rec.old.fmt(), f"{rec.old_sessions}"],
        ["(b) sim's recorder", rec.sim.fmt(), "—"],
        ["(c) raw ceiling", rec.ceiling.fmt(), "—"],
    ]
    out += _table(["", "rows/s, median (min-max)", "sessions opened"], rows)
    out += [
        "",
        f"- (b) ÷ (a) = **{rec.sim_over_old.fmt('.1f', 'x')}**, "
        f"(b) ÷ (c) = **{rec.sim_over_ceiling.fmt('.2f')}** (per-round ratios).",
        f"- Ceiling variants per round: {', '.join(rec.ceiling_label)}.",
        "",
        "Screening grid (one run each), rows/s:",
        "",
    ]
    batches = sorted({v.batch for v in rec.grid})
    concs = sorted({v.concurrency for v in rec.grid})
    grid_rows = []
    for b in batches:
        for m in ("any", "unnest"):
            cells = []
            for c in concs:
                hit = [
                    rate
                    for v, rate in rec.grid.items()
                    if (v.batch, v.concurrency, v.method) == (b, c, m)
                ]
                cells.append(f"{hit[0]:,.0f}" if hit else "—")
            label = "`seq = any(%s)` per user" if m == "any" else "`from unnest(%s, %s)`"
            grid_rows.append([f"{b:,}", label, *cells])
    out += _table(["batch", "statement", *(f"x {c}" for c in concs)], grid_rows)
    return [*out, ""]


def _relay(rel: RelayResult) -> list[str]:
    s = Settings()
    out = [
        "## 2. Relay throughput: claim → deliver → record",
        "",
        f"{rel.rows:,} interactions of {rel.users} user already stored (COPY, then "
        "`demo_users` rows saying generation is done); a fresh process runs sim's "
        "`Runtime` — pool, supervisor, sender workers, deliverer, recorder, everything "
        "`make run` runs but the HTTP API — with the shipped defaults "
        f"({s.send_concurrency} workers per user claiming {s.send_batch_size:,} at a time, "
        f"{s.http_concurrency} requests in flight, recorder {s.record_batch_size:,} x "
        f"{s.record_concurrency}) until every row is recorded `sent`. Deliveries are real "
        'HTTP/1.1 on loopback, in batch mode (`{"interactions": [...]}`), to an ack-only '
        "ASGI receiver (`bench/receiver.py`, hypercorn's trio worker) in its own process; "
        "the receiver confirms every id arrived.",
        "",
        "pgqueuer (installed by the `bench` extra) runs its own no-op job throughput on the "
        "same server in the same invocation, the way its drain benchmark does (uvloop, "
        "asyncpg, queue managers on their own connections, an entrypoint that does nothing; "
        "enqueueing is not timed). Like sim's rows, its queue is then VACUUM ANALYZEd and "
        "CHECKPOINTed before the clock starts. Its configuration for the rounds is the best "
        "of a short screening:",
        "",
    ]
    out += _table(
        ["pgqueuer screening (one run each)", "jobs/s"],
        [[k, f"{v:,.0f}"] for k, v in rel.pgq_grid.items()],
    )
    out += [
        "",
        f"Rounds (sim and pgqueuer alternate; pgqueuer at {rel.pgq_label}):",
        "",
    ]
    out += _table(
        ["", "per second, median (min-max)"],
        [
            ["sim: interactions claimed, delivered over HTTP and recorded", rel.sim.fmt()],
            ["pgqueuer: no-op jobs", rel.pgq.fmt()],
            ["sim ÷ pgqueuer (per round)", rel.sim_over_pgq.fmt(".2f", "x")],
        ],
    )
    return [*out, ""]


def _visible(vis: VisibleResult) -> list[str]:
    out = [
        "## 3. Time to visible",
        "",
        "sim served as `make run` serves it (hypercorn, `hypercorn.toml`, shipped "
        "defaults) with `SIM_MAIN_APP_URL` at the ack-only receiver. Each user: from just "
        "before `PUT /v1/users/{id}/demo` (the default body) "
        f"to the receiver's arrival time of the {INITIAL}th distinct item; "
        f"{vis.users} users one after another, each round in a fresh sim process.",
        "",
    ]
    rows = [
        [f"round {i + 1}", f"{_pct(r, 50):.0f}", f"{_pct(r, 95):.0f}", f"{max(r):.0f}"]
        for i, r in enumerate(vis.latencies_ms)
    ]
    rows.append(["median (min-max)", vis.p50.fmt(".0f"), vis.p95.fmt(".0f"), vis.worst.fmt(".0f")])
    out += _table(["", "p50 ms", "p95 ms", "max ms"], rows)
    return [*out, ""]


def _pct(values: list[float], p: float) -> float:
    from bench.stats import percentile

    return percentile(values, p)


def _scale(points: list[ScalePoint]) -> list[str]:
    out = [
        "## 4. Scale curve",
        "",
        "End to end through the sim app (hypercorn as `make run`, the ack-only receiver as "
        "the main app): generate → store → deliver → record. N interactions are "
        f"N / {PER_USER:,} users of {PER_USER:,} each (the API caps one user's initial "
        "burst), all turned on at once. Time is "
        "PostgreSQL's own: first `enabled_at` to last `live_at` (set when a user's last "
        "initial item is recorded). Peak RSS is the kernel's high-water mark (VmHWM) of "
        "the hypercorn worker that runs sim. Generation alone is `OfflineProvider` + "
        "`to_rows` in a separate process, no database (up to 100,000 items).",
        "",
    ]
    rows = []
    for p in points:
        rows.append(
            [
                f"{p.total:,}",
                f"{p.users}",
                p.per_1000_ms.fmt(".0f"),
                p.rate.fmt(",.0f"),
                Series.of(p.generation).fmt(",.0f"),
                Series.of(p.peak_rss_mb).fmt(".0f"),
                Series.of(p.idle_rss_mb).fmt(".0f"),
                f"{len(p.seconds)}",
            ]
        )
    out += _table(
        [
            "interactions",
            "users",
            "ms per 1,000",
            "interactions/s",
            "generation alone, items/s",
            "peak RSS, MB",
            "RSS before, MB",
            "runs",
        ],
        rows,
    )
    if len(points) > 1:
        base = points[0].per_1000_ms.median
        ratios = ", ".join(f"{p.total:,}: {p.per_1000_ms.median / base:.2f}" for p in points[1:])
        out += ["", f"Time per 1,000 relative to {points[0].total:,}: {ratios}."]
    return [*out, ""]


def _connections(rel: RelayResult) -> list[str]:
    out = [
        "## 5. Connections",
        "",
        "Read from PostgreSQL's statistics for the relay's database during each relay "
        "run: `pg_stat_database.sessions` (sessions established), the peak of "
        "`pg_stat_activity` sampled while it runs, and `xact_commit` — the transactions, "
        "each of which would have been a connection of its own without a pool.",
        "",
    ]
    rows = [
        [f"run {i + 1}", f"{s}", f"{p}", f"{t:,}", f"{q:,}"]
        for i, (s, p, t, q) in enumerate(
            zip(rel.sessions, rel.peak_backends, rel.transactions, rel.requests, strict=False)
        )
    ]
    out += _table(
        [
            "",
            "sessions opened",
            "peak backends",
            "transactions (= connections without a pool)",
            "HTTP requests",
        ],
        rows,
    )
    out += [
        "",
        f"The pool's maximum is {rel.pool_max}; it opens its minimum at start and grows "
        "only under load. For comparison the old method (section 1a) opened one session "
        f"per {OLD_PER_SESSION} rows.",
        "",
    ]
    return out


def _sweep(title: str, unit: str, found: dict[str, float]) -> list[str]:
    out = [title, ""]
    out += _table(
        ["settings (others at their defaults)", unit], [[k, f"{v:,.0f}"] for k, v in found.items()]
    )
    return [*out, ""]


def _tuning(t: Tuning) -> list[str]:
    out = ["### Sensitivity runs (one run each, same invocation)", ""]
    out += _sweep(f"sim's recorder on {t.recorder_rows:,} rows (as in 1b):", "rows/s", t.recorder)
    out += _sweep(
        f"sim's relay, one user, {t.one_rows:,} interactions (as in 2):",
        "interactions/s",
        t.relay_one,
    )
    out += _sweep(
        f"sim's relay, {t.many_users} users, {t.many_rows:,} interactions together:",
        "interactions/s",
        t.relay_many,
    )
    return out


def _defaults(t: Tuning | None) -> list[str]:
    s = Settings()
    values = {
        "record_batch_size": f"{s.record_batch_size:,}",
        "record_concurrency": f"{s.record_concurrency}",
        "record_flush_interval_s": f"{s.record_flush_interval_s}",
        "send_batch_size": f"{s.send_batch_size}",
        "send_concurrency": f"{s.send_concurrency}",
        "http_concurrency": f"{s.http_concurrency}",
        "pool_min_size / pool_max_size": f"{s.pool_min_size} / {s.pool_max_size}",
        "store_batch_size / store_queue_batches": f"{s.store_batch_size} / {s.store_queue_batches}",
    }
    out = [
        "## Defaults",
        "",
        "sim's defaults (`sim/settings.py`) and, below, this invocation's runs around them. "
        "Why each default was chosen is in the notes after this generated part.",
        "",
    ]
    out += _table(
        ["setting (`SIM_...`)", "default"], [[f"`{name}`", value] for name, value in values.items()]
    )
    out.append("")
    if t is not None:
        out += _tuning(t)
    return out


def render(r: Results, *, when: datetime | None = None) -> str:
    """The generated part of BENCHMARKS.md: what this invocation ran and measured, nothing else.

    Every figure comes from ``r``, from ``Settings()`` (the defaults that were run), from
    the parameters the benchmarks ran with, or from ``TARGETS``; every verdict is computed
    from them. History and explanations belong in the hand-written notes
    (``bench/document.py`` keeps them).
    """
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"Written by `{r.command}` on {stamp} ({r.duration_s / 60:.1f} min)"
        + (" — **quick smoke run, sizes reduced**" if r.quick else "")
        + ". `make bench` installs `.[dev,bench]` into `.venv` and runs "
        "`.venv/bin/python -m bench`; `python -m bench SECTION ...` runs a subset "
        "(recording, relay, visible, scale, connections, defaults, fleet, attemptlog), "
        "`--quick` a smoke size.",
        "",
        f"**Machine:** {r.machine}.",
        "",
        f"**PostgreSQL:** one private embedded server for the whole invocation (`pgserver`, "
        f"default configuration: {r.pg_settings}), a fresh database per scenario, stopped "
        "at the end.",
        "",
        "**Method.** Benchmarks, not timed tests. Every measured run is a fresh process "
        "(`python -m bench.worker`, or sim under hypercorn), so none inherits another's "
        "imports, loop or memory. Every comparison is a ratio of runs made side by side "
        "in this invocation — alternating order, repeated — reported as the median with "
        "the min-max spread. Nothing is pinned to a core: the sim process (one Python "
        "thread), PostgreSQL's backends and the receiver's process share the machine.",
        "",
        "## Summary",
        "",
    ]
    rows, missed = _summary(r)
    out += _table(["", "target", "result, median (min-max)", ""], rows)
    out.append("")
    if r.recording is not None:
        out += _recording(r.recording)
    if r.relay is not None and "relay" in r.sections:
        out += _relay(r.relay)
    if r.visible is not None:
        out += _visible(r.visible)
    if r.scale:
        out += _scale(r.scale)
    if r.relay is not None and "connections" in r.sections:
        out += _connections(r.relay)
    if r.fleet is not None:
        out += fleet_section(r.fleet)
    if "defaults" in r.sections:
        out += _defaults(r.tuning)
    if r.attempt_log is not None:
        out += r.attempt_log.lines()
    out += ["## Targets missed in this run", ""]
    if missed:
        out += [f"- {what}" for _, what in missed]
        out += ["", "What is known about them is in the notes below."]
    else:
        out.append("None.")
    return "\n".join(out).rstrip() + "\n"
