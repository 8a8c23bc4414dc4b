"""``GET /metrics``: Prometheus text, gauges refreshed from PostgreSQL at scrape time."""

from __future__ import annotations

import logging

import trio
from quart import Blueprint, Response
from quart_schema import tag

from sim.api.deps import runtime
from sim.db import users
from sim.errors import DatabaseError
from sim.metrics import CONTENT_TYPE

__all__ = ["metrics"]

log = logging.getLogger(__name__)

metrics = Blueprint("metrics", __name__)


@metrics.get("/metrics")
@tag(["operations"])
async def scrape() -> Response:
    """Prometheus metrics (text exposition format)."""
    rt = runtime()
    m = rt.metrics
    stats = rt.db.stats() if rt._db is not None else {}
    for kind, key in (
        ("size", "pool_size"),
        ("available", "pool_available"),
        ("waiting", "requests_waiting"),
        ("max", "pool_max"),
    ):
        m.pool.labels(kind).set(stats.get(key, 0))
    m.pool_errors.set(stats.get("connections_errors", 0) + stats.get("connection_errors_mapped", 0))
    try:
        with trio.fail_after(rt.settings.readyz_timeout_s):
            rows = await users.status_totals(rt.db)
    except (DatabaseError, trio.TooSlowError) as exc:
        log.warning("Metrics: could not read totals (%s)", exc or "timeout")
    else:
        m.interactions.clear()
        m.users.clear()
        for state in ("initializing", "live", "disabled", "failed"):
            m.users.labels(state).set(0)
        for r in rows:
            if "state" in r:
                m.users.labels(r["state"]).set(r["n"])
            else:
                m.interactions.labels(r["kind"], r["status"]).set(r["n"])
    return Response(m.render(), content_type=CONTENT_TYPE)
