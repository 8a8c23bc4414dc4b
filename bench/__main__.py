"""``python -m bench [SECTION ...] [--quick] [--output PATH]``: run the benchmarks.

With no section every one runs and, unless ``--quick``, the generated part of
``BENCHMARKS.md`` is rewritten (its hand-written notes are kept). A subset or a quick
run prints its report (``--output`` puts it into the generated part of another file).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.document import write
from bench.pg import bench_postgres
from bench.proc import ROOT, receiver
from bench.report import Results, render
from bench.stats import machine_line

SECTIONS = (
    "recording",
    "relay",
    "visible",
    "scale",
    "connections",
    "defaults",
    "fleet",
    "attemptlog",
)


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=" | ".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (smoke)")
    parser.add_argument("--output", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r} (choose from {', '.join(SECTIONS)})")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _args(argv)
    wanted = set(args.sections or SECTIONS)
    quick = bool(args.quick)
    full = not args.sections and not quick
    output = args.output or (ROOT / "BENCHMARKS.md" if full else None)
    log_path = Path(tempfile.gettempdir()) / f"sim-bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {line}", flush=True)

    from bench import fleet, recording, relay, scale, tuning, visible

    command = "make bench" if full else "python -m bench " + shlex.join(argv)
    results = Results(command=command, quick=quick, sections=wanted)
    say(f"log: {log_path}")
    with log_path.open("w") as log, bench_postgres() as pg, receiver(log=log) as rec:
        results.machine = machine_line(pg.version)
        results.pg_settings = pg.settings_line()
        say(results.machine)
        if "recording" in wanted:
            say("1. recording throughput")
            results.recording = recording.run_recording(
                pg,
                rows=10_000 if quick else 100_000,
                rounds=1 if quick else 3,
                quick=quick,
                log=log,
                say=say,
            )
        if wanted & {"relay", "connections"}:
            say("2. relay throughput (and 5. connections)")
            results.relay = relay.run_relay(
                pg,
                rec,
                rows=10_000 if quick else 100_000,
                n_users=1,
                rounds=1 if quick else 3,
                quick=quick,
                log=log,
                say=say,
            )
        if "visible" in wanted:
            say("3. time to visible")
            results.visible = visible.run_visible(
                pg, rec, users=5 if quick else 20, rounds=1 if quick else 3, log=log, say=say
            )
        if "scale" in wanted:
            say("4. scale curve")
            sizes = (
                [(10_000, 1), (20_000, 1)] if quick else [(10_000, 3), (100_000, 3), (1_000_000, 2)]
            )
            results.scale = scale.run_scale(pg, rec, sizes=sizes, log=log, say=say)
        if "fleet" in wanted:
            say("6. fleet: many users, several instances")
            results.fleet = fleet.run_fleet(
                pg,
                rec,
                users=200 if quick else 2000,
                burst_users=200 if quick else 2000,
                per_user=10,
                clients=16,
                probes=3 if quick else 10,
                live_probes=3 if quick else 60,
                rounds=1 if quick else 2,
                burst_rounds=1,
                relay_rows=20_000 if quick else 50_000,
                idle_window_s=5.0 if quick else 30.0,
                log=log,
                say=say,
            )
        if "attemptlog" in wanted:
            from bench import attemptlog

            say("the attempt log's cost (relay with the log on and off)")
            results.attempt_log = attemptlog.run_attempt_log(
                pg,
                rec,
                rows=10_000 if quick else 50_000,
                rounds=1 if quick else 5,
                log=log,
                say=say,
            )
        if "defaults" in wanted and not quick:
            say("defaults: sensitivity of the tunables")
            results.tuning = tuning.run_tuning(pg, rec, log=log, say=say)
    results.duration_s = time.monotonic() - started
    text = render(results)
    if output is not None:
        write(output, text)
        say(f"wrote {output}")
    else:
        print(text)
    say(f"done in {results.duration_s:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
