"""The attempt log's cost: sim's relay with the log on and off, side by side.

Both runs relay the same stored interactions through sim's whole pipeline (as in the
relay section) against the ack-only receiver; "off" is ``SIM_ATTEMPT_LOG_MAX_ROWS=0``.
The runs alternate (on, off, then off, on, ...) and each is a fresh process. Measured
at the default batch size and at a tenth of it (ten times the requests, so ten times
the log rows per interaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any

from bench.data import outbox_rows
from bench.pg import BenchPostgres
from bench.proc import Receiver
from bench.relay import DB, _sim_run
from bench.stats import Series, ratio_series
from sim.settings import Settings

__all__ = ["AttemptLogResult", "run_attempt_log"]


@dataclass
class AttemptLogResult:
    rows: int
    #: batch size → (rates with the log on, rates with it off)
    runs: dict[int, tuple[Series, Series]] = field(default_factory=dict)
    #: batch size → (sim's CPU µs per interaction with the log on, with it off)
    cpu: dict[int, tuple[Series, Series]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The BENCHMARKS.md section."""
        out = [
            "## The attempt log's cost",
            "",
            f"sim's relay of {self.rows:,} stored interactions (one user), with the attempt log"
            " on (default) and off (`SIM_ATTEMPT_LOG_MAX_ROWS=0`), alternating, each run a"
            " fresh process (`bench/attemptlog.py`). The log writes one row per delivery"
            " request, in batches of up to 500 from its own task; the budget is 15% of the"
            " relay's throughput.",
            "",
            "Throughput is wall-clock interactions/s; sim's CPU is the sim process's CPU time"
            " per interaction (`time.process_time`), which a busy machine disturbs much less.",
            "",
            "| batch size | requests | log on | log off | on ÷ off | sim CPU on | sim CPU off"
            " | CPU on ÷ off |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for batch, (on, off) in self.runs.items():
            ratio = ratio_series(on, off)
            cpu_on, cpu_off = self.cpu[batch]
            cpu_ratio = ratio_series(cpu_on, cpu_off)
            out.append(
                f"| {batch:,} | {self.rows // batch:,} | {on.fmt(',.0f', '/s')}"
                f" | {off.fmt(',.0f', '/s')} | {ratio.fmt('.2f', 'x')}"
                f" | {cpu_on.fmt('.1f', ' µs')} | {cpu_off.fmt('.1f', ' µs')}"
                f" | {cpu_ratio.fmt('.2f', 'x')} |"
            )
        out.append("")
        return out


def run_attempt_log(
    pg: BenchPostgres,
    receiver: Receiver,
    *,
    rows: int,
    rounds: int,
    log: IO[str],
    say: Any,
) -> AttemptLogResult:
    pg.create(DB)
    data = list(outbox_rows(1, rows))
    result = AttemptLogResult(rows=len(data))
    default_batch = Settings().send_batch_size
    for batch in (default_batch, default_batch // 10):
        rates: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        for r in range(rounds):
            for on in (True, False) if r % 2 == 0 else (False, True):
                overrides: dict[str, Any] = {"send_batch_size": batch}
                if not on:
                    overrides["attempt_log_max_rows"] = 0
                out, _ = _sim_run(pg, receiver, data, 1, len(data), overrides, log)
                rates[on].append(out["rate"])
                cpu[on].append(out["cpu_s"] / len(data) * 1e6)
            say(
                f"  batch {batch}, round {r + 1}: log on {rates[True][-1]:,.0f}/s,"
                f" off {rates[False][-1]:,.0f}/s; sim CPU {cpu[True][-1]:.1f}"
                f" against {cpu[False][-1]:.1f} µs per interaction"
            )
        result.runs[batch] = (Series.of(rates[True]), Series.of(rates[False]))
        result.cpu[batch] = (Series.of(cpu[True]), Series.of(cpu[False]))
    pg.drop(DB)
    return result
