"""Liveness and readiness probes.

Both answer within the probe's own timeout (``SIM_READYZ_TIMEOUT_S``) also when sim is
overloaded: ``/healthz`` touches nothing but the runtime, and ``/readyz`` never joins the
queue for a pooled connection (``Database.ping`` connects afresh while requests wait for
one). Its round trip gets half the timeout: the other half is for the request to reach
the handler and the answer to leave while the event loop is busy with everything else.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify
from quart_schema import document_response, tag

from sim.errors import DatabaseError
from sim.web.errors import error_response
from sim.web.lifecycle import service
from sim.web.schemas import ErrorBody, Health, Ready

__all__ = ["health"]

health = Blueprint("health", __name__)

#: share of ``readyz_timeout_s`` the database round trip may take
PING_SHARE = 0.5


@health.get("/healthz")
@tag(["health"])
@document_response(Health, 200)
@document_response(ErrorBody, 503)
async def healthz() -> Response:
    """The process is alive (says nothing about the database); 503 if its runtime died."""
    failure = service().failure
    if failure is not None:
        return error_response(503, "runtime_failed", f"sim's runtime stopped: {failure!r}"[:300])
    return jsonify({"status": "ok"})


@health.get("/readyz")
@tag(["health"])
@document_response(Ready, 200)
@document_response(ErrorBody, 503)
async def readyz() -> Response | tuple[Any, int]:
    """The database answers within ``SIM_READYZ_TIMEOUT_S`` (503 if overloaded); pool statistics."""
    rt = service()
    try:
        await rt.db.ping(rt.settings.readyz_timeout_s * PING_SHARE)
    except DatabaseError as exc:
        return _not_ready(exc)
    return jsonify({"status": "ready", "pool": rt.db.stats(), **rt.readiness()})


def _not_ready(exc: DatabaseError) -> Response:
    return error_response(
        503, exc.code, str(exc), headers={"Retry-After": "1"}, pool=service().db.stats()
    )
