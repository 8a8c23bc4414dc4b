"""BENCHMARKS.md's fleet section (6.) and its summary rows, computed from the figures."""

from __future__ import annotations

from bench.fleet import DEFAULT_ITEMS, LIVE_PER_MINUTE, SETTLE_S, FleetResult
from bench.stats import Series, percentile
from sim.settings import Settings

__all__ = ["fleet_section", "fleet_summary"]

#: (name, what, target, value, met?)
Row = tuple[str, str, str, str, bool | None]


def _half_relay(f: FleetResult) -> float:
    return Series.of(f.relay.get(1, [])).median / 2


def fleet_summary(f: FleetResult) -> list[Row]:
    """The fleet's targets: each verdict computed from this run's figures."""
    rows: list[Row] = []
    if f.visible_s:
        rate, half = f.burst_rate, _half_relay(f)
        rows.append(
            (
                "fleet-burst",
                f"6a. {f.burst_users:,} users x {f.per_user} enabled at once",
                f"≥ half the one-instance relay ({half:,.0f}/s)",
                rate.fmt(",.0f", " items/s") + ("" if f.burst_complete else " (unfinished)"),
                f.burst_complete and rate.median >= half if half == half else None,
            )
        )
    if f.idle_tps:
        ratio = f.idle_ratio
        few, many = f.idle_users
        rows.append(
            (
                "fleet-idle",
                f"6b. idle transactions/s, {many:,} ÷ {few} users",
                "≤ 2",
                ratio.fmt(".2f"),
                ratio.hi <= 2,
            )
        )
    if f.live_probe_ms:
        p95 = percentile(f.live_probe_ms, 95)
        rows.append(
            (
                "fleet-visible",
                f"6c. a new user's {DEFAULT_ITEMS} visible, {f.users:,} users live, p95",
                "< 500 ms",
                f"{p95:.0f} ms",
                p95 < 500,
            )
        )
    if f.peak_rss_mb:
        peak = max(f.peak_rss_mb)
        rows.append(
            (
                "fleet-rss",
                f"6e. peak RSS with {f.users:,} users",
                "< 250 MB",
                f"{peak:.0f} MB",
                peak < 250,
            )
        )
    return rows


def fleet_section(f: FleetResult) -> list[str]:
    s = Settings()
    out = [
        "## 6. A fleet: many users on one instance, several instances on one PostgreSQL",
        "",
        f"sim's sender runs {s.send_concurrency} claim/deliver workers per instance for all "
        f"users together; each claim serves up to 64 users with due rows, round robin, a "
        f"water-filled share of {s.send_batch_size:,} each (what users with fewer rows leave "
        f"goes to those with more). Measured with `bench/fleet.py`.",
        "",
    ]
    if f.visible_s:
        out += [
            f"**(a) {f.burst_users:,} users x {f.per_user} items enabled at once** through the "
            f"HTTP API, {f.clients} clients in parallel, live rate 0; the clock runs from the "
            f"first PUT until every initial item is `sent` (at most {f.burst_max_s:g} s):",
            "",
        ]
        rows = [
            ["enables done after", Series.of(f.enable_s).fmt(".1f", " s")],
            ["clock stopped after", Series.of(f.visible_s).fmt(".1f", " s")],
            [
                "items visible then",
                ", ".join(f"{n:,} of {f.burst_users * f.per_user:,}" for n in f.burst_visible),
            ],
            ["items/s", f.burst_rate.fmt(",.0f")],
            ["one-instance relay of one user, (d) below", Series.of(f.relay.get(1, [])).fmt()],
        ]
        out += [*_table(["", "value"], rows), ""]
    if f.burst_probe_ms or f.live_probe_ms:
        out += [
            f"**(c) a new user's {DEFAULT_ITEMS} items** (the API's defaults), from its PUT "
            "until the receiver has all of them, one new user after another:",
            "",
        ]
        rows = []
        for label, values in (
            (
                f"during the burst of (a) (one each second, {len(f.burst_probe_ms)} users)",
                f.burst_probe_ms,
            ),
            (
                f"{f.users:,} users live at {LIVE_PER_MINUTE:g}/min each "
                f"({len(f.live_probe_ms)} users)",
                f.live_probe_ms,
            ),
        ):
            if values:
                rows.append(
                    [
                        label,
                        f"{percentile(values, 50):.0f}",
                        f"{percentile(values, 95):.0f}",
                        f"{max(values):.0f}",
                    ]
                )
        out += [*_table(["", "p50 ms", "p95 ms", "max ms"], rows), ""]
        if f.live_received:
            out += [
                f"Live items the receiver got meanwhile: {', '.join(map(str, f.live_received))}.",
                "",
            ]
    if f.peak_rss_mb:
        out += [
            f"**(e) peak RSS** (VmHWM) of sim in (a) and (c): {max(f.peak_rss_mb):.0f} MB.",
            "",
        ]
    if f.idle_tps:
        few, many = f.idle_users
        out += [
            "**(b) an idle instance**: users fully delivered, live rate 0, resumed at start; "
            "PostgreSQL's committed transactions in the database over a window of "
            f"{f.idle_window_s:g} s after {SETTLE_S:g} s of settling, the sizes alternating:",
            "",
        ]
        rows = [[f"{n:,} users", Series.of(v).fmt(".1f")] for n, v in sorted(f.idle_tps.items())]
        rows.append([f"ratio {many:,} ÷ {few} (per round)", f.idle_ratio.fmt(".2f")])
        out += [*_table(["", "transactions/s"], rows), ""]
    if f.relay:
        one = Series.of(f.relay.get(1, [])).median
        out += [
            f"**(d) relay of one user's {f.relay_rows:,} rows by 1, 2 and 3 sim processes** on "
            "one database (each a `Runtime` without the HTTP API; the clock runs from the "
            "first process's start to the last row recorded), the counts alternating:",
            "",
        ]
        rows = [
            [f"{k}", Series.of(v).fmt(), f"{Series.of(v).median / one:.2f}"]
            for k, v in sorted(f.relay.items())
        ]
        out += [*_table(["instances", "interactions/s", "÷ one instance"], rows), ""]
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]
