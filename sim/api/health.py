"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify
from quart_schema import document_response, tag

from sim.api.deps import runtime
from sim.api.errors import error_response
from sim.api.schemas import ErrorBody, Health, Ready
from sim.errors import DatabaseError

__all__ = ["health"]

health = Blueprint("health", __name__)


@health.get("/healthz")
@tag(["health"])
@document_response(Health, 200)
@document_response(ErrorBody, 503)
async def healthz() -> Response:
    """The process is alive (says nothing about the database); 503 if its runtime died."""
    failure = runtime().failure
    if failure is not None:
        return error_response(503, "runtime_failed", f"sim's runtime stopped: {failure!r}"[:300])
    return jsonify({"status": "ok"})


@health.get("/readyz")
@tag(["health"])
@document_response(Ready, 200)
@document_response(ErrorBody, 503)
async def readyz() -> Response | tuple[Any, int]:
    """The database answers a query within ``SIM_READYZ_TIMEOUT_S``; pool statistics.

    ``circuit`` tells whether the main app's circuit breaker is open (readiness stays 200).
    """
    rt = runtime()
    try:
        await rt.db.ping(rt.settings.readyz_timeout_s)
    except DatabaseError as exc:
        return error_response(
            503, exc.code, str(exc), headers={"Retry-After": "1"}, pool=rt.db.stats()
        )
    doc: dict[str, Any] = {"status": "ready", "pool": rt.db.stats()}
    if rt.breaker is not None:  # the main app down is not sim unready: detail only
        doc["circuit"] = rt.breaker.snapshot()
    return jsonify(doc)
