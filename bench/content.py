"""``python -m bench.content [--output PATH] [--quick] [--speed]``: the content realism report.

Generates 10,000 comments (plus DMs and live items) per niche with ``OfflineProvider``,
measures them with ``sim.pipeline.content.checks`` and writes ``CONTENT.md``: repetition,
vocabulary, topic, intent and sentiment mix against the configured one, ordering, speed
(items/s of the previous Faker generator and of today's, side by side in one run) and a
sample of 20 comments and 2 DM threads per niche for a reader to judge.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

from bench.content_baseline import DemoSpec as BaselineSpec
from bench.content_baseline import FakerProvider
from sim.pipeline.content import (
    COMMENT_INTENTS,
    DM_PURPOSES,
    NICHE_KEYS,
    DemoSpec,
    Draft,
    OfflineProvider,
    expected_sentiments,
)
from sim.pipeline.content.checks import Realism, measure
from sim.pipeline.store import to_rows

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
COMMENTS = 10_000
VIDEOS = 8
DMS = 1_000
LIVE = 500
SEED = 2026
SPEED_ROUNDS = 12
RUNS_PER_ROUND = 3  # runs (seeds) per generator and round


def _run(provider: OfflineProvider, niche: str, comments: int) -> list[Draft]:
    spec = DemoSpec(VIDEOS, comments, DMS, SEED + NICHE_KEYS.index(niche), niche)
    drafts = [d for batch in provider.initial(spec, 500) for d in batch]
    return drafts + [provider.live(spec, n) for n in range(LIVE)]


def _interleaved(
    makers: dict[str, Callable[[int], Iterator[list[Any]]]], seeds: range, rows: bool
) -> dict[str, float]:
    """Items per CPU second of each generator over runs with seeds, batch by batch in turn.

    The generators take turns one batch (500 items) at a time, so that other work on the
    machine hits both alike. CPU time of this process (``process_time``), not wall time;
    both are single-threaded. ``rows``: each batch is also turned into outbox rows.
    """
    spent = dict.fromkeys(makers, 0.0)
    made = dict.fromkeys(makers, 0)
    run, anchor = uuid.uuid4(), datetime.now(UTC)
    for seed in seeds:
        batches = {name: make(seed) for name, make in makers.items()}
        while batches:
            for name, it in list(batches.items()):
                started = time.process_time()
                batch = next(it, None)
                if batch is not None and rows:
                    to_rows("bench", run, anchor, batch)
                spent[name] += time.process_time() - started
                if batch is None:
                    del batches[name]
                else:
                    made[name] += len(batch)
    return {name: made[name] / spent[name] for name in makers}


def _speed(provider: OfflineProvider, rounds: int) -> list[str]:
    baseline = FakerProvider()
    shape = (20, 2_500, 2_500)
    makers: dict[str, Callable[[int], Iterator[list[Any]]]] = {
        "previous (Faker sentences)": lambda r: baseline.initial(BaselineSpec(*shape, r), 500),
        "offline (niche grammar)": lambda r: provider.initial(DemoSpec(*shape, r), 500),
    }
    names = list(makers)
    rates: dict[tuple[str, bool], list[float]] = {
        (n, rows): [] for n in names for rows in (False, True)
    }
    for r in range(rounds):
        # each round: a few runs (seeds, hence niches) of both, batch by batch in turn,
        # which one goes first alternating between rounds
        seeds = range(RUNS_PER_ROUND * r, RUNS_PER_ROUND * (r + 1))
        order = {n: makers[n] for n in (names if r % 2 == 0 else names[::-1])}
        for rows in (False, True):
            for name, rate in _interleaved(order, seeds, rows).items():
                rates[(name, rows)].append(rate)
    lines = [
        "## Speed",
        "",
        f"Items per second (of CPU time: other work on the shared machine does not count) "
        f"generating runs of {sum(shape):,} items (20 videos, 2,500 comments, 2,500 DMs): "
        f"{rounds} rounds of {RUNS_PER_ROUND} runs (seeds, hence niches) per generator, the "
        "two generators taking turns batch by batch (500 items) within each round, which "
        "goes first alternating between rounds, both in this one run. *Drafts* is the "
        "generator alone; *rows* adds `to_rows` (ids, JSON documents), what the store step "
        "does with each batch. Rates are medians over the rounds; the ratio is today ÷ "
        "previous per round, its median and its range (lowest to highest round).",
        "",
        "| generator | drafts/s | rows/s |",
        "|---|---:|---:|",
    ]
    for name in names:
        d, w = (statistics.median(rates[(name, rows)]) for rows in (False, True))
        lines.append(f"| {name} | {d:,.0f} | {w:,.0f} |")
    lines.append("")
    for rows, label in ((False, "drafts"), (True, "rows")):
        ratios = [
            n / o for o, n in zip(rates[(names[0], rows)], rates[(names[1], rows)], strict=True)
        ]
        lines.append(
            f"Ratio today ÷ previous, {label}: median {statistics.median(ratios):.2f} "
            f"(range {min(ratios):.2f} to {max(ratios):.2f} over {rounds} rounds).  "
        )
    lines[-1] = lines[-1].rstrip()
    return [*lines, ""]


def _pts(measured: dict[str, float], configured: dict[str, float]) -> float:
    return max(abs(measured.get(k, 0.0) - v) * 100 for k, v in configured.items())


def _figures(results: dict[str, Realism]) -> list[str]:
    lines = [
        "## Realism per niche",
        "",
        f"Per niche: {VIDEOS} videos, {COMMENTS:,} comments and {DMS:,} DMs "
        "(seed 2026 + the niche's index), "
        f"then {LIVE} live items. *Repeated*: comments whose exact text an earlier one had "
        "(target < 1%). *Bigrams*: distinct word bigrams / all word bigrams of the comments. "
        "*On topic*: comments naming their video's topic or one of its aliases (target 100%). "
        "*Intent Δ* and *sentiment Δ*: the largest gap, in points, between a measured share and "
        "the configured one (target ≤ 3). *Order*: comments older than their video, replies "
        "older than (or before) their parent, DM thread messages out of sequence (target 0).",
        "",
        "| niche | comments | repeated | bigrams | on topic | intent Δ | sentiment Δ | order |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sentiments = expected_sentiments()
    for niche, r in results.items():
        lines.append(
            f"| {niche} | {r.comments:,} | {r.repeated_share:.2%} | "
            f"{r.distinct_bigrams_ratio:.3f} | {r.on_topic_share:.1%} | "
            f"{_pts(r.intents, COMMENT_INTENTS):.1f} | {_pts(r.sentiments, sentiments):.1f} | "
            f"{len(r.order_violations)} |"
        )
    lines += ["", "### Mix, all niches together", "", "| share | configured | measured |"]
    lines.append("|---|---:|---:|")
    n = len(results)
    for label, configured, key in (
        ("intent", COMMENT_INTENTS, "intents"),
        ("sentiment", sentiments, "sentiments"),
    ):
        for k, v in configured.items():
            measured = sum(getattr(r, key).get(k, 0.0) for r in results.values()) / n
            lines.append(f"| {label} {k} | {v:.1%} | {measured:.1%} |")
    purposes = ", ".join(f"{k} {v:.0%}" for k, v in DM_PURPOSES.items())
    lines += ["", f"DM thread purposes are drawn from: {purposes}.", ""]
    return lines


def _samples(niche: str, drafts: list[Draft]) -> list[str]:
    videos = {d.seq: d for d in drafts if d.kind == "video"}
    comments = [d for d in drafts if d.kind == "comment"]
    rng = Random(SEED)
    picked = sorted(rng.sample(range(len(comments)), 20))
    lines = [
        f"### {niche}",
        "",
        "Videos: " + "; ".join(f"“{v.extra['title']}”" for v in list(videos.values())[:4]) + ".",
        "",
    ]
    for i in picked:
        c = comments[i]
        assert c.video_index is not None
        title = videos[c.video_index].extra["title"]
        text = c.text.replace("|", "\\|")
        lines.append(
            f"- **{c.author['handle']}** on “{title}”: {text} "
            f"`{c.extra['intent']}` `{c.extra['sentiment']}`"
        )
    threads: dict[int, list[Draft]] = {}
    for d in drafts:
        if d.kind == "dm" and d.seq < VIDEOS + COMMENTS + DMS:
            threads.setdefault(d.extra["thread"], []).append(d)
    shown: set[str] = set()
    for messages in threads.values():
        purpose = messages[0].extra["intent"]
        if len(messages) >= 3 and purpose not in shown and len(shown) < 2:
            shown.add(purpose)
            lines += ["", f"DM thread ({purpose}):", ""]
            lines += [f"> **{m.author['handle']}**: {m.text}  " for m in messages]
            lines[-1] = lines[-1].rstrip()
    return [*lines, ""]


def render(quick: bool = False) -> str:
    provider = OfflineProvider()
    comments = 1_000 if quick else COMMENTS
    runs = {niche: _run(provider, niche, comments) for niche in NICHE_KEYS}
    results = {niche: measure(drafts) for niche, drafts in runs.items()}
    lines = [
        "# Content realism",
        "",
        "Written by `make content-report` (`python -m bench.content`); do not edit by hand. "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        "",
        "The offline generator (`sim/pipeline/content/`) writes every item from a template "
        "grammar and the account's niche; the figures below come from "
        "`sim/pipeline/content/checks.py`, the module the tests assert with.",
        "",
        *_figures(results),
        *_speed(provider, 2 if quick else SPEED_ROUNDS),
        "## Samples",
        "",
        "20 comments (drawn at random, with their video's title and labels) and 2 DM threads "
        "per niche.",
        "",
    ]
    for niche, drafts in runs.items():
        lines += _samples(niche, drafts)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.content", description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "CONTENT.md")
    parser.add_argument("--quick", action="store_true", help="1,000 comments per niche")
    parser.add_argument(
        "--speed", action="store_true", help="print only the speed section (no CONTENT.md)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.speed:
        print("\n".join(_speed(OfflineProvider(), 2 if args.quick else SPEED_ROUNDS)))
        return 0
    text = render(args.quick)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
