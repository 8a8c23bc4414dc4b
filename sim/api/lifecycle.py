"""Tie a ``Runtime`` to an app's serving lifetime, and build apps from the environment."""

from __future__ import annotations

import sys
from collections.abc import Callable

from quart_trio import QuartTrio

from sim.errors import ConfigError
from sim.logs import configure_logging
from sim.runtime import Runtime

__all__ = ["app_from_env", "attach_runtime"]


def attach_runtime(app: QuartTrio, runtime: Runtime, *, configure_logs: bool) -> None:
    """Start ``runtime`` in the app's nursery before serving; stop it (bounded) after."""
    app.extensions["sim"] = runtime
    settings = runtime.settings

    @app.before_serving
    async def _start() -> None:
        if configure_logs:
            configure_logging(settings)
        await app.nursery.start(runtime.run)

    @app.after_serving
    async def _stop() -> None:
        await runtime.shutdown(timeout_s=settings.db_close_timeout_s + 5)


def app_from_env(factory: Callable[[], QuartTrio], label: str) -> QuartTrio:
    """``factory()``, or exit with one line naming the bad setting."""
    try:
        return factory()
    except ConfigError as exc:
        print(f"{label}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
