"""The bundled sink's statistics and admin endpoints: counts, fault knobs, reset.

``/sink/stats`` is open; ``/sink/admin/*`` needs the API token when
``SIM_API_TOKEN`` is set (the same bearer rule as ``/v1``).
"""

from __future__ import annotations

import logging

from quart import Blueprint, Response, jsonify, request
from quart_schema import document_querystring, document_request, document_response, tag

from sim.db.sink_store import received_ids, reset_sink, sink_counts
from sim.sink.faults import Faults, FaultsPatch
from sim.sink.schemas import ReceivedIds, ResetDone, SinkStatsDoc, StatsQuery
from sim.sink.state import SinkCounters, sink_state
from sim.web.auth import check_bearer
from sim.web.body import read_json_object, validate
from sim.web.schemas import document_errors, validate_user_id

__all__ = ["admin"]

log = logging.getLogger(__name__)

admin = Blueprint("sink_admin", __name__, url_prefix="/sink")


@admin.get("/stats")
@tag(["sink"])
@document_querystring(StatsQuery)
@document_response(SinkStatsDoc, 200)
@document_errors(400, 503)
async def stats() -> Response:
    """What the sink received, overall or (``?user_id=``) for one user."""
    state = sink_state()
    user_id = request.args.get("user_id")
    if user_id is not None:
        validate_user_id(user_id)
    counts = await sink_counts(state.db, user_id)
    counters = state.totals if user_id is None else state.users.get(user_id, SinkCounters())
    return jsonify(
        {
            "received": counts.received,
            "unique": counts.unique,
            "duplicates": counts.duplicates,
            "requests": counters.requests,
            "rejected": counters.rejected,
            "orphan_comments": counters.orphan_comments,
        }
    )


def _admin_denied() -> Response | None:
    return check_bearer(
        sink_state().settings.api_token, "the sink's admin endpoints need the API token"
    )


@admin.get("/admin/faults")
@tag(["sink"])
@document_response(Faults, 200)
@document_errors(401)
async def get_faults() -> Response:
    """The sink's current misbehaviour."""
    if denied := _admin_denied():
        return denied
    return jsonify(sink_state().faults.current.as_dict())


@admin.put("/admin/faults")
@tag(["sink"])
@document_request(FaultsPatch)
@document_response(Faults, 200)
@document_errors(400, 401, 413)
async def put_faults() -> Response:
    """Change some knobs (the others keep their value); ``seed`` reseeds the random source."""
    if denied := _admin_denied():
        return denied
    state = sink_state()
    data = await read_json_object(state.settings.max_body_bytes)
    changes = validate(FaultsPatch, data).model_dump(exclude_unset=True)
    seed = changes.pop("seed", None)
    faults = state.faults.update(changes)
    if seed is not None:
        state.faults.seed(seed)
    return jsonify(faults.as_dict())


@admin.delete("/admin/faults")
@tag(["sink"])
@document_response(Faults, 200)
@document_errors(401)
async def delete_faults() -> Response:
    """Back to the misbehaviour configured at start-up (``SIM_SINK_*``)."""
    if denied := _admin_denied():
        return denied
    return jsonify(sink_state().faults.restore().as_dict())


@admin.post("/admin/reset")
@tag(["sink"])
@document_response(ResetDone, 200)
@document_errors(401, 503)
async def reset() -> Response:
    """Forget everything received and zero the counters (the knobs stay)."""
    if denied := _admin_denied():
        return denied
    await reset_sink(sink_state().db)
    sink_state().reset_counters()
    return jsonify({"status": "reset"})


@admin.get("/admin/received")
@tag(["sink"])
@document_querystring(StatsQuery)
@document_response(ReceivedIds, 200)
@document_errors(400, 401, 503)
async def received() -> Response:
    """The distinct interaction ids received for ``?user_id=`` (for tests)."""
    if denied := _admin_denied():
        return denied
    user_id = validate_user_id(request.args.get("user_id", ""))
    ids = await received_ids(sink_state().db, user_id)
    return jsonify({"user_id": user_id, "ids": [str(i) for i in ids]})
