"""The sink on its own: ``hypercorn sim.sink.app:app`` serves only ``/sink`` and the probes.

It plays "the main app" for a sim running elsewhere (``SIM_MAIN_APP_URL`` pointing
here), with its own database and no delivery pipeline.
"""

from __future__ import annotations

import logging

from quart_schema import QuartSchema
from quart_trio import QuartTrio

from sim.api.errors import register_error_handlers
from sim.api.health import health
from sim.api.lifecycle import app_from_env, attach_runtime
from sim.runtime import Runtime
from sim.settings import Settings
from sim.sink.receiver import register_sink
from sim.sink.schemas import MAX_ITEMS

__all__ = ["MAX_BODY_BYTES", "create_sink_app"]

log = logging.getLogger(__name__)

#: room for a full request (MAX_ITEMS items of a few KiB each)
MAX_BODY_BYTES = MAX_ITEMS * 4096


def create_sink_app(settings: Settings | None = None, *, configure_logs: bool = True) -> QuartTrio:
    """Build the standalone receiver; its runtime (database only) starts before serving."""
    settings = settings or Settings.from_env()
    app = QuartTrio("sim.sink")
    app.config["MAX_CONTENT_LENGTH"] = max(settings.max_body_bytes, MAX_BODY_BYTES)
    QuartSchema(
        app,
        info={"title": "sim sink", "version": "1", "description": "sim's reference receiver"},
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    runtime = Runtime(settings, pipeline=False)
    register_error_handlers(app)
    app.register_blueprint(health)
    register_sink(app, settings)
    attach_runtime(app, runtime, configure_logs=configure_logs)
    return app


#: the app hypercorn serves (``sim.sink.app:app``), configured from the environment
app = app_from_env(create_sink_app, "sim sink")
