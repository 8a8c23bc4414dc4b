"""``sim serve`` (what ``make run`` runs): sim served by hypercorn in this process.

The configuration is ``sim/hypercorn.toml`` (shipped in the package; the checkout's
``hypercorn.toml`` is the same file), so ``sim serve`` and ``hypercorn -c
hypercorn.toml 'sim.app:create_app()'`` serve sim the same way, but for signals.

SIGTERM and SIGINT (Ctrl-C) are handled here, by sim: the handler halts delivery
before anything else runs (``sim.web.lifecycle.halt``: no request starts, those in
flight are cancelled and their rows given back, the bundled sink stores nothing), then
hypercorn's graceful shutdown and sim's own follow. Under hypercorn's command the
signal goes to its master process, which tells the worker through an event polled
every 0.1 s, and sim heard of it only once the server had drained its connections.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from importlib.resources import as_file, files
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import trio

from sim.cli.base import CliError, describe_db, load_settings

if TYPE_CHECKING:
    from hypercorn.config import Config
    from quart_trio import QuartTrio

__all__ = ["APP_PATH", "SIGNALS", "cmd_serve", "hypercorn_config", "serve_app"]

log = logging.getLogger(__name__)

#: what hypercorn's own command serves: the factory, called once in its worker process
APP_PATH = "sim.app:create_app()"
#: the signals that stop ``sim serve`` (Ctrl-C is SIGINT); both the same way
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def hypercorn_config(path: Path | None) -> Config:
    """hypercorn's ``Config`` from ``path``, or from the packaged ``hypercorn.toml``."""
    from hypercorn.config import Config

    if path is not None:
        if not path.is_file():
            raise CliError(f"no hypercorn config at {path}")
        return Config.from_toml(path)
    with as_file(files("sim") / "hypercorn.toml") as packaged:
        return Config.from_toml(packaged)


async def serve_app(app: QuartTrio, config: Config) -> None:
    """Serve ``app`` until SIGTERM or SIGINT; its service is halted in the signal handler.

    The handler does only what is safe there (plain assignments and
    ``TrioToken.run_sync_soon``), so the halt takes effect before any other code runs:
    a request the bundled sink takes after the signal is refused, whichever task was
    running when it came. A second signal changes nothing: the shutdown is bounded
    (``graceful_timeout``, then sim's own deadlines).

    The sockets listen before sim starts, as under hypercorn's command (this is what its
    worker is given): users resumed at start-up are delivered to the bundled sink at once.
    """
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app

    from sim.web.lifecycle import halt

    token = trio.lowlevel.current_trio_token()
    stopping = trio.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        halt(app)
        token.run_sync_soon(_stop, signum, stopping)

    sockets = config.create_sockets()
    listening = [*sockets.secure_sockets, *sockets.insecure_sockets]
    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    try:
        for sock in listening:
            sock.listen(config.backlog)
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, "asgi"),
            config,
            sockets=sockets,
            shutdown_trigger=stopping.wait,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in listening:
            sock.close()


def _stop(signum: int, stopping: trio.Event) -> None:
    if not stopping.is_set():
        log.info("%s: delivery halted, shutting down", signal.Signals(signum).name)
    stopping.set()


def cmd_serve(args: argparse.Namespace) -> int:
    from sim.app import create_app

    if args.bind and "SIM_PUBLIC_URL" not in os.environ:
        # the bundled sink is reached at the public URL: follow the bind address
        os.environ["SIM_PUBLIC_URL"] = f"http://{args.bind}"
    settings = load_settings()
    config = hypercorn_config(Path(args.config) if args.config else None)
    if args.bind:
        config.bind = [args.bind]
    # hypercorn's lines go through sim's log handler (same format, secrets redacted)
    if config.accesslog == "-":
        config.accesslog = logging.getLogger("hypercorn.access")
    if config.errorlog == "-":
        config.errorlog = logging.getLogger("hypercorn.error")
    if settings.log_format == "text":
        print(f"sim: serving with database {describe_db(settings)}", file=sys.stderr, flush=True)
    trio.run(serve_app, create_app(settings), config)
    return 0
