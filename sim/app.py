"""The Quart-Trio application: ``hypercorn -c hypercorn.toml sim.app:app``."""

from __future__ import annotations

import logging
from collections.abc import Callable

from quart_schema import QuartSchema
from quart_trio import QuartTrio

from sim.api.content_view import content_view
from sim.api.dashboard import dashboard
from sim.api.demo import demo
from sim.api.errors import register_error_handlers
from sim.api.health import health
from sim.api.lifecycle import app_from_env, attach_runtime
from sim.api.metrics import metrics
from sim.api.schemas import SimOpenAPIProvider
from sim.pipeline.content import ContentProvider
from sim.runtime import Runtime
from sim.settings import Settings
from sim.sink import register_sink
from sim.sink.app import MAX_BODY_BYTES as SINK_MAX_BODY_BYTES

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    configure_logs: bool = True,
    provider_factory: Callable[[], ContentProvider] | None = None,
) -> QuartTrio:
    """Build the app; its runtime starts before serving and stops after."""
    settings = settings or Settings.from_env()
    app = QuartTrio("sim")
    # the bundled sink takes whole delivery batches; /v1 enforces max_body_bytes itself
    app.config["MAX_CONTENT_LENGTH"] = max(settings.max_body_bytes, SINK_MAX_BODY_BYTES)
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = True
    QuartSchema(
        app,
        info={"title": "sim", "version": "1", "description": "Demo-mode simulator API"},
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        openapi_provider_class=SimOpenAPIProvider,
    )
    runtime = Runtime(settings, provider_factory=provider_factory)
    register_error_handlers(app)
    app.register_blueprint(health)
    app.register_blueprint(demo)
    app.register_blueprint(metrics)
    app.register_blueprint(dashboard)
    app.register_blueprint(content_view)
    register_sink(app, settings)
    attach_runtime(app, runtime, configure_logs=configure_logs)
    return app


#: the app hypercorn serves (``sim.app:app``), configured from the environment
app = app_from_env(create_app, "sim")
