"""An orchestrator's view of sim: ``/healthz`` and ``/readyz`` probed from a process of its own.

A probe answered slowly because the test's own event loop is busy (200 requests in
flight from the same process) says nothing about sim, so the probes run in a separate
process, like a kubelet: one new connection per probe, one probe at a time, both paths
in turn every ``interval_s``. Each answer (or failure) is a line of the log file;
``Prober.stats()`` turns them into the p50/p95/max figures of ``RELIABILITY.md``.

Run directly (``python faultprobe.py URL LOGFILE INTERVAL_S``) it is that process.
"""

from __future__ import annotations

import http.client
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["PATHS", "ProbeStats", "Prober"]

PATHS = ("/healthz", "/readyz")
PROBE_TIMEOUT_S = 10.0  # the prober's own limit: long enough to measure, not to cut off


@dataclass(frozen=True)
class ProbeStats:
    """Latency of one probe path over a scenario (seconds), and how its answers went."""

    path: str
    count: int
    p50: float
    p95: float
    max: float
    over_limit: int  # answers slower than the probe timeout sim is configured with
    statuses: dict[int, int]  # HTTP status (0: no answer) -> count

    @classmethod
    def of(cls, path: str, samples: list[tuple[int, float]], limit_s: float) -> ProbeStats:
        seconds = sorted(s for _, s in samples)
        statuses: dict[int, int] = {}
        for status, _ in samples:
            statuses[status] = statuses.get(status, 0) + 1
        if not seconds:
            return cls(path, 0, 0.0, 0.0, 0.0, 0, statuses)
        p95 = (
            statistics.quantiles(seconds, n=20, method="inclusive")[-1]
            if len(seconds) > 1
            else seconds[0]
        )
        return cls(
            path,
            len(seconds),
            statistics.median(seconds),
            p95,
            seconds[-1],
            sum(s > limit_s for s in seconds),
            statuses,
        )


class Prober:
    """The probing process for sim at ``url``, from ``with`` to the end of the block."""

    def __init__(self, url: str, logfile: Path, *, interval_s: float = 0.1) -> None:
        self.url = url
        self.logfile = logfile
        self.interval_s = interval_s
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prober:
        self.logfile.write_text("")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, self.url, str(self.logfile), str(self.interval_s)],
            stdin=subprocess.DEVNULL,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self.proc
        if proc is None:
            return
        proc.terminate()  # it finishes the probe in flight, writes it, and exits
        try:
            proc.wait(PROBE_TIMEOUT_S + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def samples(self) -> dict[str, list[tuple[int, float]]]:
        found: dict[str, list[tuple[int, float]]] = {path: [] for path in PATHS}
        for line in self.logfile.read_text().splitlines():
            fields = line.split()
            if len(fields) == 3:  # else a line being written
                path, status, seconds = fields
                found[path].append((int(status), float(seconds)))
        return found

    def stats(self, limit_s: float) -> list[ProbeStats]:
        """Per path: latency percentiles and answers slower than ``limit_s``."""
        return [ProbeStats.of(path, samples, limit_s) for path, samples in self.samples().items()]


def _probe(host: str, port: int, path: str) -> tuple[int, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        status = response.status
    except OSError:
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - start


def main(url: str, logfile: str, interval_s: float) -> None:
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    with open(logfile, "a", buffering=1) as out:
        while not stop:
            for path in PATHS:
                status, seconds = _probe(host, port, path)
                out.write(f"{path} {status} {seconds:.4f}\n")
            time.sleep(interval_s)  # the probing process's own pace, not a test's wait


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
