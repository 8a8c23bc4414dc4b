"""Operators' delivery tools: re-queue a user's rows, and read the user's attempt log."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify, request
from quart_schema import (
    document_querystring,
    document_request,
    document_response,
    security_scheme_blueprint,
    tag,
)

from sim.api.auth import require_token
from sim.api.deps import runtime
from sim.db import attempts, users
from sim.errors import NotFound
from sim.web.body import read_json_object, validate
from sim.web.schemas import ErrorBody, document_errors, validate_user_id

if TYPE_CHECKING:
    from sim.runtime import Runtime

__all__ = [
    "AttemptItem",
    "AttemptPage",
    "DeliveriesQuery",
    "RedeliverRequest",
    "Redelivered",
    "deliveries",
    "outage_view",
]

#: failed requests the dashboard lists
RECENT_ERRORS = 8

Status = Literal["failed", "sent"]

deliveries = Blueprint("deliveries", __name__, url_prefix="/v1")
deliveries.before_request(require_token)
security_scheme_blueprint(deliveries, [{"bearer": []}])


class RedeliverRequest(BaseModel):
    """Which of the user's rows to deliver again (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[Status] = Field(
        default_factory=lambda: list[Status](["failed"]),
        min_length=1,
        max_length=2,
        description='"failed" (default); add "sent" for a main app that lost its data',
    )
    since: AwareDatetime | None = Field(
        None, description="only rows queued at or after this time (ISO 8601 with offset)"
    )


class Redelivered(BaseModel):
    user_id: str
    requeued: int = Field(description="rows now pending again")
    statuses: list[str]
    since: datetime | None
    enabled: bool = Field(description="re-queued rows are delivered while demo mode is on")


class DeliveriesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(
        None, pattern=r"^[0-9]{1,18}$", description="next_cursor of the previous page"
    )


class AttemptItem(BaseModel):
    id: int
    at: datetime
    webhook_id: str | None = Field(description="null when deliveries are not signed")
    attempt: int = Field(description="the highest attempt number among the request's rows")
    items: int
    first_seq: int
    outcome: Literal["ok", "retry", "failed", "gone"]
    status_code: int | None = Field(description="null: no HTTP answer (see error)")
    error: str | None
    latency_s: float
    next_attempt_at: datetime | None


class AttemptPage(BaseModel):
    """The user's delivery attempts, newest first."""

    items: list[AttemptItem]
    next_cursor: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@deliveries.post("/users/<user_id>/demo/redeliver")
@tag(["deliveries"])
@document_request(RedeliverRequest)
@document_response(Redelivered, 200)
@document_response(ErrorBody, 404)
@document_errors(400, 401, 413, 503)
async def redeliver(user_id: str) -> tuple[Response, int]:
    """Re-queue the user's failed (and optionally sent) rows, in batches; idempotent."""
    validate_user_id(user_id)
    req = validate(
        RedeliverRequest, await read_json_object(runtime().settings.max_body_bytes, empty={})
    )
    rt = runtime()
    row = await users.get_user(rt.db, user_id)
    if row is None:
        raise NotFound(f"user {user_id!r} never had demo mode")
    statuses = sorted(set(req.statuses))
    n = await attempts.requeue(rt.db, user_id, statuses, req.since)
    doc = {
        "user_id": user_id,
        "requeued": n,
        "statuses": statuses,
        "since": _iso(req.since),
        "enabled": row.enabled,
    }
    return jsonify(doc), 200


@deliveries.get("/users/<user_id>/deliveries")
@tag(["deliveries"])
@document_querystring(DeliveriesQuery)
@document_response(AttemptPage, 200)
@document_errors(400, 401, 503)
async def delivery_attempts(user_id: str) -> tuple[Response, int]:
    """The user's delivery attempts (attempt log), newest first, keyset pagination."""
    validate_user_id(user_id)
    q = validate(DeliveriesQuery, request.args.to_dict())
    before = int(q.cursor) if q.cursor is not None else None
    rows = await attempts.page_attempts(runtime().db, user_id, limit=q.limit, before=before)
    items = [
        {
            **r,
            "at": _iso(r["at"]),
            "next_attempt_at": _iso(r["next_attempt_at"]),
        }
        for r in rows
    ]
    next_cursor = str(rows[-1]["id"]) if len(rows) == q.limit else None
    return jsonify({"items": items, "next_cursor": next_cursor}), 200


async def outage_view(rt: Runtime) -> dict[str, Any]:
    """For the dashboard: the circuit breaker's state and the newest failed requests."""
    errors = await attempts.recent_errors(rt.db, RECENT_ERRORS)
    return {
        "circuit": rt.breaker.snapshot() if rt.breaker is not None else None,
        "recent_errors": [{**e, "at": _iso(e["at"])} for e in errors],
    }
