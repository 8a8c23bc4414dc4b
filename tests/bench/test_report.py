"""BENCHMARKS.md's generator: only this run's figures, and the hand-written notes kept."""

from __future__ import annotations

import dataclasses
import random
import re
from datetime import UTC, datetime
from pathlib import Path

from bench.document import BEGIN, END, merge, write
from bench.recording import OLD_BATCH, OLD_PER_SESSION, USERS, RecordingResult, Variant
from bench.relay import RelayResult
from bench.report import TARGETS, Results, render
from bench.scale import PER_USER, ScalePoint
from bench.stats import Series
from bench.tuning import Tuning
from bench.visible import INITIAL, VisibleResult
from sim.settings import Settings

NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _fake(seed: int, rounds: int) -> Results:
    """Results whose every figure is drawn around a plausible value (verdicts all "met")."""
    rng = random.Random(seed)

    def series(base: float) -> Series:
        return Series.of(many(base))

    def many(base: float) -> list[float]:
        return [base * rng.uniform(0.9, 1.1) for _ in range(rounds)]

    def n(base: int) -> int:
        return int(base * rng.uniform(0.9, 1.1)) + 6

    recording = RecordingResult(
        rows=n(77_731),
        old=series(31_337.7),
        sim=series(263_111.3),
        ceiling=series(201_009.9),
        ceiling_label=[f"{n(6_113):,} x {rounds}, any"],
        grid={Variant(n(1_171), rounds + 1, "any"): 111_222.3 * rng.uniform(0.9, 1.1)},
        old_sessions=n(577),
    )
    relay = RelayResult(
        rows=n(88_819),
        users=n(3),
        sim=series(43_210.9),
        pgq=series(19_876.1),
        pgq_label=f"{n(5)} consumers x batch {n(137)}",
        pgq_grid={f"{n(5)} consumers x batch {n(137)}": 23_456.7 * rng.uniform(0.9, 1.1)},
        sessions=[n(11) for _ in range(rounds)],
        peak_backends=[n(17) for _ in range(rounds)],
        transactions=[n(389) for _ in range(rounds)],
        pool_max=n(33),
        requests=[n(103) for _ in range(rounds)],
    )
    visible = VisibleResult(users=n(23), latencies_ms=[many(41.3) * 4 for _ in range(rounds)])
    scale = [
        ScalePoint(
            total=n(total),
            users=n(users),
            seconds=many(seconds),
            peak_rss_mb=many(97.1 + users),
            idle_rss_mb=many(83.3),
            peak_backends=[n(19)],
            generation=many(36_543.2),
        )
        for total, users, seconds in ((13_007, 1, 0.93), (130_073, 11, 8.77))
    ]
    tuning = Tuning(
        recorder={
            "defaults": 250_001.7 * rng.uniform(0.9, 1.1),
            f"record_batch_size={n(503)}": 181_818.1 * rng.uniform(0.9, 1.1),
        },
        relay_one={"defaults": 41_414.1 * rng.uniform(0.9, 1.1)},
        relay_many={f"http_concurrency={n(7)}": 45_454.5 * rng.uniform(0.9, 1.1)},
        recorder_rows=n(100_003),
        one_rows=n(99_991),
        many_users=n(13),
        many_rows=n(55_553),
    )
    return Results(
        command="make bench",
        quick=False,
        sections={"recording", "relay", "visible", "scale", "connections", "defaults"},
        machine=f"{rounds + 7} cores (Test CPU), {n(29)} GiB RAM",
        pg_settings=f"shared_buffers={n(131)}MB",
        duration_s=437.0 * rng.uniform(0.9, 1.1),
        recording=recording,
        relay=relay,
        visible=visible,
        scale=scale,
        tuning=tuning,
    )


def _allowed_fixed() -> set[float]:
    """Figures that do not depend on what was measured: settings, parameters, targets."""
    settings = Settings()
    fixed = {float(v) for v in dataclasses.asdict(settings).values() if isinstance(v, int | float)}
    fixed |= {float(v) for v in TARGETS.values()}
    fixed |= {float(v) for v in (OLD_BATCH, OLD_PER_SESSION, USERS, INITIAL, PER_USER)}
    fixed |= {1.0, 2.0, 3.0, 4.0, 5.0}  # section numbers, round numbers
    fixed |= {50.0, 95.0, 1.1}  # the names p50 and p95, and HTTP/1.1
    return fixed


def test_report_holds_no_figure_that_its_input_does_not_give() -> None:
    """Every number that stays put when every measurement changes is a setting or a target."""
    renders = [
        render(
            _fake(seed, rounds=3),
            when=datetime(2030 + seed, seed, seed + 7, seed, seed, tzinfo=UTC),
        )
        for seed in range(1, 6)
    ]
    assert len({NUMBER.sub("#", text) for text in renders}) == 1, "renders differ in shape"
    columns = zip(*(NUMBER.findall(text) for text in renders), strict=True)
    fixed = {float(c[0].replace(",", "")) for c in columns if len(set(c)) == 1}
    unexplained = sorted(fixed - _allowed_fixed())
    assert unexplained == [], f"figures not from the run's input: {unexplained}"
    for trial in ("19,000", "24,000", "19,400", "22,300", "13%", "about 50 ms"):
        assert all(trial not in text for text in renders)


def test_verdicts_follow_the_measured_numbers() -> None:
    """A missed target is reported missed, a met one met; no fixed prose says otherwise."""
    results = _fake(1, rounds=3)
    assert results.recording is not None
    good = render(results)
    assert "**missed**" not in good and "## Targets missed in this run\n\nNone." in good
    results.recording.sim = Series.of([v / 100 for v in results.recording.sim.values])
    bad = render(results)
    assert "| 1. recording: sim ÷ old method | ≥ 4x |" in bad
    assert "- 1. recording: sim ÷ old method" in bad.split("## Targets missed")[1]


def test_generator_keeps_the_hand_written_part(tmp_path: Path) -> None:
    """Only the text between the markers changes; the notes around it stay byte for byte."""
    head = "# Benchmarks\n\nIntro written by hand: 19,000 → 24,000 in a trial.\n\n"
    tail = "\n## Notes\n\n- pinning was 13% slower (19,400 against 22,300).\n"
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"{head}{BEGIN}\nold figures 1,234\n{END}\n{tail}", encoding="utf-8")
    write(path, "new figures 5,678\n")
    text = path.read_text(encoding="utf-8")
    assert text == f"{head}{BEGIN}\n\nnew figures 5,678\n\n{END}\n{tail}"
    write(path, "newer figures 9,012\n")
    again = path.read_text(encoding="utf-8")
    assert again.startswith(head) and again.endswith(tail) and "5,678" not in again


def test_a_file_without_markers_keeps_all_of_its_old_text() -> None:
    """Before the markers existed: the old text is kept (after the generated part), not lost."""
    merged = merge("# Old\n\nnotes by hand\n", "generated 42\n")
    assert merged.index(BEGIN) < merged.index("generated 42") < merged.index(END)
    assert merged.endswith("# Old\n\nnotes by hand\n")
    fresh = merge(None, "generated 42\n")
    assert fresh.startswith("# Benchmarks") and BEGIN in fresh and END in fresh
