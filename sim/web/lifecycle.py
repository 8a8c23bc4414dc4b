"""Tie a service (sim's ``Runtime``, the sink's) to an app's serving lifetime.

``service()`` is how shared handlers (the probes, the sink) reach the running
service of the current app, whichever app it is. ``halt(app)`` is the first thing a
shutdown does (``sim serve`` calls it from its signal handler): the service delivers
and stores nothing from then on, while the server still drains its connections.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import trio
from quart import current_app
from quart_trio import QuartTrio

from sim.errors import ConfigError, SimError
from sim.logs import configure_logging
from sim.settings import Settings

if TYPE_CHECKING:
    from sim.db import Database

__all__ = [
    "EXTENSION",
    "Service",
    "ShuttingDown",
    "app_from_env",
    "attach_service",
    "halt",
    "service",
]

#: the key of the running service in ``app.extensions``
EXTENSION = "sim"


class ShuttingDown(SimError):
    """The service is shutting down: the work asked for is not taken (503, Retry-After)."""

    status = 503
    code = "shutting_down"


class Service(Protocol):
    """What an app runs while it serves: a database, settings, start, halt and stop."""

    settings: Settings
    #: set when the service ended with an error while serving: /healthz then fails
    failure: BaseException | None
    #: set by ``halt()``: nothing more is delivered nor stored
    halted: bool

    def halt(self) -> None:
        """Deliver and store nothing more, at once; safe to call from a signal handler."""
        ...

    @property
    def db(self) -> Database: ...

    async def run(self, *, task_status: trio.TaskStatus[Any] = ...) -> None: ...

    async def shutdown(self, timeout_s: float) -> None: ...

    def readiness(self) -> dict[str, Any]:
        """Details for ``/readyz`` that do not make the service unready."""
        ...


def attach_service(app: QuartTrio, runtime: Service, *, configure_logs: bool) -> None:
    """Start ``runtime`` in the app's nursery before serving; stop it (bounded) after."""
    app.extensions[EXTENSION] = runtime
    settings = runtime.settings

    @app.before_serving
    async def _start() -> None:
        if configure_logs:
            configure_logging(settings)
        await app.nursery.start(runtime.run)

    @app.after_serving
    async def _stop() -> None:
        await runtime.shutdown(timeout_s=settings.db_close_timeout_s + 5)


def service() -> Service:
    """The running service of the current app."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def halt(app: QuartTrio) -> None:
    """Halt ``app``'s service (see ``Service.halt``); safe to call from a signal handler."""
    runtime: Service = app.extensions[EXTENSION]
    runtime.halt()


def app_from_env(factory: Callable[[Settings], QuartTrio], label: str) -> QuartTrio:
    """``factory(Settings.from_env())``, or exit with one line naming the bad setting."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"{label}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return factory(settings)
