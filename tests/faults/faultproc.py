"""The fault suite's processes: sim or its receiver as a real ``hypercorn`` process.

``Service`` is one ``hypercorn -c hypercorn.toml <app>`` process (master + one worker),
configured by environment variables only, its output captured to a file. Every wait here
is bounded.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path

import httpx
import psutil
import trio

__all__ = ["REPO", "Service", "free_port", "wait_until"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


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
