"""The v1 API: demo mode on/off/status, and the user's interactions."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

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
from sim.api.schemas import (
    DemoRequest,
    DemoStatus,
    ErrorBody,
    InteractionPage,
    InteractionsQuery,
    document_errors,
)
from sim.db import users
from sim.db.users import DemoConfig, UserRow
from sim.errors import InvalidInput, NotFound
from sim.pipeline.content import DemoSpec, niche_of
from sim.web.body import read_json_object, validate
from sim.web.schemas import validate_user_id

__all__ = ["demo", "status_document"]

demo = Blueprint("demo", __name__, url_prefix="/v1")
demo.before_request(require_token)
security_scheme_blueprint(demo, [{"bearer": []}])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def status_document(row: UserRow, counts: dict[str, int]) -> dict[str, Any]:
    """The status document of DESIGN.md (timestamps ISO 8601 with offset)."""
    return {
        "user_id": row.user_id,
        "state": row.state,
        "enabled": row.enabled,
        "enabled_at": _iso(row.enabled_at),
        "live_at": _iso(row.live_at),
        "disabled_at": _iso(row.disabled_at),
        "counts": counts,
        "total": sum(counts.values()),
        "initial_total": row.initial_total,
        "videos": row.videos,
        "comments": row.comments,
        "dms": row.dms,
        "live_per_minute": row.live_per_minute,
        "seed": row.seed,
        "last_error": row.last_error,
        "restarts": row.restarts,
        "owner": str(row.owner_id) if row.owner_id else None,
        "niche": row.niche,
    }


async def _status_response(user_id: str, status: int) -> tuple[Response, int]:
    found = await users.get_status(runtime().db, user_id)
    if found is None:
        raise NotFound(f"user {user_id!r} never had demo mode")
    return jsonify(status_document(*found)), status


@demo.put("/users/<user_id>/demo")
@tag(["demo"])
@document_request(DemoRequest)
@document_response(DemoStatus, 202)
@document_response(DemoStatus, 200)
@document_response(ErrorBody, 400)
@document_errors(401, 413, 503)
async def enable(user_id: str) -> tuple[Response, int]:
    """Turn demo mode on: 202 when it starts, 200 when it was already on."""
    validate_user_id(user_id)
    rt = runtime()
    req = validate(DemoRequest, await read_json_object(rt.settings.max_body_bytes, empty={}))
    counts = {"videos": req.videos, "comments": req.comments, "dms": req.dms}
    total = sum(counts.values())
    if total > rt.settings.max_rows_per_user:
        raise InvalidInput(
            f"videos + comments + dms = {total} exceeds the limit of "
            f"{rt.settings.max_rows_per_user} rows per user",
            field=max(counts, key=counts.__getitem__),  # the largest part: the one to lower
        )
    if req.comments and not req.videos:
        raise InvalidInput("comments need at least one video", field="videos")
    seed = req.seed if req.seed is not None else random.SystemRandom().randrange(2**53)
    niche = req.niche or niche_of(DemoSpec(0, 0, 0, seed)).key
    cfg = DemoConfig(req.videos, req.comments, req.dms, float(req.live_per_minute), seed, niche)
    row, started = await rt.pipeline().enable(user_id, cfg)
    if started and row.generated == 0:
        # a fresh run has no rows as of its enable: answered from the row just written
        return jsonify(status_document(row, dict.fromkeys(users.STATUSES, 0))), 202
    return await _status_response(user_id, 202 if started else 200)


@demo.get("/users/<user_id>/demo")
@tag(["demo"])
@document_response(DemoStatus, 200)
@document_response(ErrorBody, 404)
@document_errors(400, 401, 503)
async def status(user_id: str) -> tuple[Response, int]:
    """The user's demo status: state, counts by delivery status, last error."""
    validate_user_id(user_id)
    return await _status_response(user_id, 200)


@demo.delete("/users/<user_id>/demo")
@tag(["demo"])
@document_response(DemoStatus, 200)
@document_response(ErrorBody, 404)
@document_errors(400, 401, 503)
async def disable(user_id: str) -> tuple[Response, int]:
    """Turn demo mode off (idempotent); ``?purge=true`` also deletes the user's rows."""
    validate_user_id(user_id)
    unknown = set(request.args) - {"purge"}
    if unknown:
        raise InvalidInput(
            f"unknown query parameter {sorted(unknown)[0]!r}", field=sorted(unknown)[0]
        )
    purge_arg = request.args.get("purge", "false").lower()
    if purge_arg not in ("true", "false", "1", "0"):
        raise InvalidInput("purge must be true or false", field="purge")
    row, _ = await runtime().pipeline().disable(user_id, purge=purge_arg in ("true", "1"))
    if row is None:
        raise NotFound(f"user {user_id!r} never had demo mode")
    return await _status_response(user_id, 200)


@demo.get("/users/<user_id>/interactions")
@tag(["demo"])
@document_querystring(InteractionsQuery)
@document_response(InteractionPage, 200)
@document_response(ErrorBody, 400)
@document_errors(401, 503)
async def interactions(user_id: str) -> tuple[Response, int]:
    """A page of the user's interactions in generation order (keyset pagination)."""
    validate_user_id(user_id)
    rt = runtime()
    q = validate(InteractionsQuery, request.args.to_dict())
    # an omitted limit is the default, lowered to SIM_PAGE_SIZE_MAX when that is smaller
    limit = q.limit if "limit" in q.model_fields_set else min(q.limit, rt.settings.page_size_max)
    if limit > rt.settings.page_size_max:
        raise InvalidInput(f"limit must be at most {rt.settings.page_size_max}", field="limit")
    after = -1
    if q.cursor is not None:
        if not (q.cursor.isascii() and q.cursor.isdigit()) or len(q.cursor) > 18:
            raise InvalidInput("cursor is not one this API gave out", field="cursor")
        after = int(q.cursor)
    rows = await users.page_interactions(
        rt.db, user_id, status=q.status, kind=q.kind, limit=limit, after=after
    )
    items = [
        {
            "id": r["id"],
            "kind": r["kind"],
            "status": r["status"],
            "attempts": r["attempts"],
            "created_at": _iso(r["created_at"]),
            "sent_at": _iso(r["sent_at"]),
            "last_error": r["last_error"],
            "payload": r["payload"],
        }
        for r in rows
    ]
    next_cursor = str(rows[-1]["seq"]) if len(rows) == limit else None
    return jsonify({"items": items, "next_cursor": next_cursor}), 200
