"""``GET /metrics``: Prometheus text, gauges refreshed from PostgreSQL at scrape time."""

from __future__ import annotations

import logging

import trio
from quart import Blueprint, Response
from quart_schema import tag

from sim.api.deps import runtime
from sim.api.schemas import document_text
from sim.db import users
from sim.errors import DatabaseError, describe
from sim.metrics import CONTENT_TYPE

__all__ = ["metrics"]

log = logging.getLogger(__name__)

metrics = Blueprint("metrics", __name__)


@metrics.get("/metrics")
@tag(["operations"])
@document_text("text/plain", "Prometheus text exposition format (every name starts `sim_`)")
async def scrape() -> Response:
    """Prometheus metrics (text exposition format)."""
    rt = runtime()
    m = rt.metrics
    db = rt.db_or_none
    m.observe_pool(db.stats() if db is not None else {})
    m.observe_tasks()
    try:
        with trio.fail_after(rt.settings.readyz_timeout_s):
            rows = await users.status_totals(rt.db)
    except (DatabaseError, trio.TooSlowError) as exc:
        log.warning("Metrics: could not read totals (%s)", describe(exc))
    else:
        m.observe_totals(rows)
    return Response(m.render(), content_type=CONTENT_TYPE)
