"""The sink on its own: ``hypercorn 'sim.sink.app:create_sink_app()'`` serves ``/sink`` and probes.

It plays "the main app" for a sim running elsewhere (``SIM_MAIN_APP_URL`` pointing
here), with its own database and no delivery pipeline.
"""

from __future__ import annotations

import logging

from quart_schema import QuartSchema
from quart_trio import QuartTrio

from sim.settings import Settings
from sim.sink.mount import register_sink
from sim.sink.schemas import MAX_ITEMS
from sim.sink.service import SinkService
from sim.web.errors import register_error_handlers
from sim.web.health import health
from sim.web.lifecycle import app_from_env, attach_service

__all__ = ["MAX_BODY_BYTES", "create_sink_app"]

log = logging.getLogger(__name__)

#: room for a full request (MAX_ITEMS items of a few KiB each)
MAX_BODY_BYTES = MAX_ITEMS * 4096


def create_sink_app(settings: Settings | None = None, *, configure_logs: bool = True) -> QuartTrio:
    """Build the standalone receiver; its database opens before serving.

    Without ``settings`` they come from the environment, and a bad one ends the
    process with one line naming it (this is what hypercorn calls).
    """
    if settings is None:
        return app_from_env(create_sink_app, "sim sink")
    app = QuartTrio("sim.sink")
    app.config["MAX_CONTENT_LENGTH"] = max(settings.max_body_bytes, MAX_BODY_BYTES)
    QuartSchema(
        app,
        info={"title": "sim sink", "version": "1", "description": "sim's reference receiver"},
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    service = SinkService(settings)
    register_error_handlers(app)
    app.register_blueprint(health)
    register_sink(app, settings, lambda: service.db)
    attach_service(app, service, configure_logs=configure_logs)
    return app
