"""Mount the sink under ``/sink`` in an app (sim's own, or the standalone sink's)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from quart import Quart

from sim.db import Database
from sim.settings import Settings
from sim.sink.admin import admin
from sim.sink.receiver import receiver
from sim.sink.state import EXTENSION, SinkState

__all__ = ["register_sink"]

log = logging.getLogger(__name__)


def register_sink(app: Quart, settings: Settings, database: Callable[[], Database]) -> SinkState:
    """Mount the sink's routes and keep its state in ``app.extensions``.

    ``database`` gives the database of the app's running service (the sink stores
    what it receives there).
    """
    state = SinkState.from_settings(settings, database)
    app.extensions[EXTENSION] = state
    app.register_blueprint(receiver)
    app.register_blueprint(admin)
    log.info(
        "Sink mounted at /sink (signatures %s)",
        "required" if state.verifier.enabled else "not checked",
    )
    return state
