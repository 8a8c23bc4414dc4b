"""The Quart-Trio application: ``hypercorn -c hypercorn.toml 'sim.app:create_app()'``.

Nothing is built at import: hypercorn calls the factory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from quart_schema import QuartSchema
from quart_trio import QuartTrio

from sim.api.content_view import content_view
from sim.api.dashboard import dashboard
from sim.api.deliveries import deliveries
from sim.api.demo import demo
from sim.api.docs import register_docs
from sim.api.instances import instances
from sim.api.metrics import metrics
from sim.api.schemas import SimOpenAPIProvider
from sim.pipeline.content import ContentProvider
from sim.runtime import Runtime
from sim.settings import Settings
from sim.sink import register_sink
from sim.sink.app import MAX_BODY_BYTES as SINK_MAX_BODY_BYTES
from sim.web.errors import register_error_handlers
from sim.web.health import health
from sim.web.lifecycle import app_from_env, attach_service

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    configure_logs: bool = True,
    provider_factory: Callable[[], ContentProvider] | None = None,
) -> QuartTrio:
    """Build the app; its runtime starts before serving and stops after.

    Without ``settings`` they come from the environment, and a bad one ends the
    process with one line naming it (this is what hypercorn calls).
    """
    if settings is None:
        factory = partial(
            create_app, configure_logs=configure_logs, provider_factory=provider_factory
        )
        return app_from_env(factory, "sim")
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
    register_docs(app)
    register_error_handlers(app)
    app.register_blueprint(health)
    app.register_blueprint(demo)
    app.register_blueprint(instances)
    app.register_blueprint(deliveries)
    app.register_blueprint(metrics)
    app.register_blueprint(dashboard)
    app.register_blueprint(content_view)
    register_sink(app, settings, lambda: runtime.db)
    attach_service(app, runtime, configure_logs=configure_logs)
    return app
