"""Processes the benchmarks start: measured workers, the ack-only receiver, the sim app."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

__all__ = [
    "Receiver",
    "SimApp",
    "WorkerError",
    "pin",
    "receiver",
    "run_worker",
    "sim_app",
]

ROOT = Path(__file__).resolve().parent.parent


class WorkerError(RuntimeError):
    """A measured run failed."""


def pin(pid: int, cpus: set[int] | None) -> None:
    """Restrict ``pid`` (and threads it starts later) to ``cpus``; None leaves it free."""
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, cpus)


def run_worker(
    kind: str,
    args: dict[str, Any],
    *,
    log: IO[str] | None = None,
    cpus: set[int] | None = None,
    during: Callable[[], None] | None = None,
    timeout_s: float = 900,
) -> dict[str, Any]:
    """Run ``python -m bench.worker kind`` with ``args``; return its JSON result.

    ``during`` is called repeatedly (from this thread) while the worker runs.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.worker", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log if log is not None else subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    pin(proc.pid, cpus)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(args))
    proc.stdin.close()
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise WorkerError(f"{kind} did not finish within {timeout_s:.0f}s")
        if during is not None:
            during()
        time.sleep(0.05)
    reader.join(5)
    if proc.returncode != 0 or not out:
        raise WorkerError(f"{kind} failed (exit {proc.returncode}); see the bench log")
    result: dict[str, Any] = json.loads(out[-1])
    return result


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT, timeout_s: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Receiver:
    """A running ``bench.receiver`` process."""

    url: str
    pid: int
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=600))

    @property
    def ingest_url(self) -> str:
        return self.url + "/ingest"

    def stats(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.client.get(self.url + "/stats").json()
        return doc

    def wait(self, user: str, n: int, timeout_s: float) -> dict[str, Any]:
        params: dict[str, str | int | float] = {"user": user, "n": n, "timeout": timeout_s}
        doc: dict[str, Any] = self.client.get(self.url + "/wait", params=params).json()
        return doc

    def reset(self) -> None:
        self.client.post(self.url + "/reset").raise_for_status()


@contextmanager
def receiver(*, log: IO[str] | None = None, cpus: set[int] | None = None) -> Iterator[Receiver]:
    """Start the ack-only receiver in its own process; stop it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.receiver"],
        stdout=subprocess.PIPE,
        stderr=log if log is not None else subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        pin(proc.pid, cpus)
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise WorkerError("the receiver did not start")
        rec = Receiver(url, proc.pid)
        try:
            yield rec
        finally:
            rec.client.close()
    finally:
        _stop(proc)


@dataclass
class SimApp:
    """sim served by hypercorn (``make run``'s config) in a subprocess."""

    url: str
    proc: subprocess.Popen[str]
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    def worker_pid(self) -> int:
        """The hypercorn worker process (spawned by multiprocessing): where sim runs."""
        for pid in _children(self.proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                return pid
        raise WorkerError("cannot find hypercorn's worker process")

    def peak_rss_mb(self) -> float:
        """VmHWM (the kernel's record of the peak resident set) of the worker, in MB."""
        return _status_kib(self.worker_pid(), "VmHWM") * 1024 / 1e6

    def rss_mb(self) -> float:
        return _status_kib(self.worker_pid(), "VmRSS") * 1024 / 1e6


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc), oldest first."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append((int(fields[19]), int(entry.name)))
    return [p for _, p in sorted(found)]


def _status_kib(pid: int, key: str) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def sim_app(
    env: dict[str, str],
    *,
    log: IO[str] | None = None,
    cpus: set[int] | None = None,
    ready_timeout_s: float = 60,
) -> Iterator[SimApp]:
    """``hypercorn -c hypercorn.toml 'sim.app:create_app()'`` on a free port, ready at /readyz."""
    port = _free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    full_env.update(env)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "-c",
            str(ROOT / "hypercorn.toml"),
            "--bind",
            f"127.0.0.1:{port}",
            "sim.app:create_app()",
        ],
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=full_env,
    )
    app = SimApp(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise WorkerError(f"sim exited with {proc.returncode} before it was ready")
            try:
                if app.client.get(app.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise WorkerError("sim did not become ready")
            time.sleep(0.1)
        if cpus is not None:
            for pid in (proc.pid, *_children(proc.pid)):
                pin(pid, cpus)
        yield app
    finally:
        app.client.close()
        _stop(proc, signal.SIGTERM, 30)
