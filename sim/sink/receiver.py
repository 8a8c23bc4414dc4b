"""The bundled sink's receiving end: ``POST /sink/interactions``.

It verifies Standard Webhooks signatures (any of ``SIM_WEBHOOK_SECRET``'s
secrets), validates the body, stores every item in PostgreSQL de-duplicated on
its id (one statement per request), counts comments delivered before their
video, and can be told to misbehave (see ``sim.sink.faults``). Fault decisions
are made before anything is stored; an injected error stores nothing. Once the
service is halted (sim stops) it stores nothing either: 503 with ``Retry-After``,
so the sender keeps the rows pending.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import trio
from quart import Blueprint, Response, jsonify, request
from quart_schema import document_request, document_response, tag

from sim.db.sink_store import ReceivedRow, store_received
from sim.errors import InvalidInput
from sim.sink.faults import format_retry_after
from sim.sink.schemas import Parsed, SinkAccepted, SinkBatch, comment_order, parse_batch
from sim.sink.state import SinkState, sink_state
from sim.web.body import loads_strict
from sim.web.errors import error_response
from sim.web.lifecycle import ShuttingDown, service
from sim.web.schemas import ErrorBody, validate_user_id

__all__ = ["distinct_rows", "receiver"]

log = logging.getLogger(__name__)

GARBAGE = b"\x00\xff<html>definitely not JSON\x7f"

receiver = Blueprint("sink", __name__, url_prefix="/sink")


def distinct_rows(items: list[Parsed]) -> list[ReceivedRow]:
    """One row per id (the first occurrence), counting how often each id occurred."""
    counts = Counter(item.id for item, _ in items)
    rows: dict[uuid.UUID, ReceivedRow] = {}
    for item, raw in items:
        if item.id not in rows:
            rows[item.id] = ReceivedRow(
                item.id, item.user_id, item.kind, item.video_id, raw, counts[item.id]
            )
    return list(rows.values())


@receiver.post("/interactions")
@tag(["sink"])
@document_request(SinkBatch)
@document_response(SinkAccepted, 200)
@document_response(ErrorBody, 400)
@document_response(ErrorBody, 401)
@document_response(ErrorBody, 413)
@document_response(ErrorBody, 503)
async def receive() -> Response:
    """Receive interactions: verify, validate, store de-duplicated; maybe misbehave."""
    state = sink_state()
    state.totals.requests += 1
    body = await request.get_data(cache=False, as_text=False, parse_form_data=False)
    faults = state.faults.current
    decision = state.faults.draw()
    if decision.hang:
        log.info("Sink fault: hanging for %.1fs", faults.hang_s)
        await trio.sleep(faults.hang_s)
    if faults.latency_s:
        await trio.sleep(faults.latency_s)
    if decision.error:
        log.info("Sink fault: answering %d", faults.status)
        return error_response(
            faults.status,
            "injected_fault",
            "the sink was told to fail this request",
            headers={"Retry-After": format_retry_after(faults.retry_after_s)},
        )
    problem = state.verifier.verify(body, dict(request.headers.items()))
    if problem is not None:
        _count_rejected(state, body)
        log.warning("Sink rejected a request: %s", problem)
        return error_response(401, "invalid_signature", f"webhook signature: {problem}")
    try:
        items = parse_batch(body)
    except InvalidInput as exc:
        log.info("Sink refused a malformed request: %s", exc)
        return error_response(400, exc.code, str(exc), field=exc.field)
    if faults.too_large_over is not None and len(items) > faults.too_large_over:
        return error_response(
            413,
            "payload_too_large",
            f"the sink was told to refuse more than {faults.too_large_over} items per request",
        )
    orphans, lookups = comment_order(items)
    result = await store_received(
        state.db,
        distinct_rows(items),
        webhook_id=request.headers.get("webhook-id"),
        check_videos=[video for _, video in lookups],
        received_at=_taken_at(),
    )
    orphans.update(user for user, video in lookups if video not in result.known_videos)
    _count_stored(state, items, orphans)
    if orphans:
        log.warning("Sink got %d comment(s) before their video", orphans.total())
    accepted = {"accepted": len(items), "new": result.new, "duplicates": len(items) - result.new}
    if faults.mode == "garbage":
        return Response(GARBAGE, 200, content_type="application/json")
    if faults.mode == "close":
        return _dropped_response(json.dumps(accepted).encode())
    return jsonify(accepted)


def _taken_at() -> datetime:
    """The time the request is taken (stored as ``first_seen_at``); 503 once halted.

    The clock is read before the halt flag: whenever the halt happens (a signal handler
    runs between any two bytecodes), a request taken has a time before it.
    """
    now = datetime.now(UTC)
    if service().halted:
        raise ShuttingDown("the sink is shutting down: retry later")
    return now


def _count_stored(state: SinkState, items: list[Parsed], orphans: Counter[str]) -> None:
    for user_id in {item.user_id for item, _ in items}:
        state.user(user_id).requests += 1
    for user_id, n in orphans.items():
        state.user(user_id).orphan_comments += n
        state.totals.orphan_comments += n


def _count_rejected(state: SinkState, body: bytes) -> None:
    state.totals.rejected += 1
    try:  # attribute the rejection to the users named in the body, if any
        items = loads_strict(body).get("interactions", [])
        users = {validate_user_id(str(item.get("user_id"))) for item in items}
    except (InvalidInput, AttributeError, TypeError):
        return
    for user_id in users:
        state.user(user_id).rejected += 1


def _dropped_response(body: bytes) -> Response:
    """Headers and half the body, then the connection closes (the rest never comes)."""

    async def half() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        await trio.sleep_forever()

    response = Response(half(), 200, content_type="application/json")
    response.headers["Content-Length"] = str(len(body))
    # quart-trio stops sending at the timeout and returns; hypercorn then closes the
    # connection because the response is incomplete.
    response.timeout = 0.05
    return response
