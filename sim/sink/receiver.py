"""The bundled sink: a reference receiver for sim's deliveries, under ``/sink``.

It verifies Standard Webhooks signatures (any of ``SIM_WEBHOOK_SECRET``'s
secrets), validates the body, stores every item in PostgreSQL de-duplicated on
its id (one statement per request), counts comments delivered before their
video, and can be told to misbehave (see ``sim.sink.faults``). Fault decisions
are made before anything is stored; an injected error stores nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import trio
from pydantic import ValidationError
from quart import Blueprint, Quart, Response, current_app, jsonify, request
from quart_schema import document_querystring, document_request, document_response, tag
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sim.api.deps import runtime
from sim.api.errors import error_response
from sim.api.schemas import ErrorBody
from sim.db.sink_store import ReceivedRow, received_ids, reset_sink, sink_counts, store_received
from sim.errors import ConfigError, InvalidInput
from sim.settings import Settings
from sim.sink.faults import Faults, FaultsHolder, format_retry_after
from sim.sink.schemas import (
    USER_ID_PATTERN,
    FaultsDoc,
    FaultsPatch,
    Parsed,
    ReceivedIds,
    ResetDone,
    SinkAccepted,
    SinkBatch,
    SinkStatsDoc,
    StatsQuery,
    comment_order,
    parse_batch,
)

__all__ = ["SinkCounters", "SinkState", "register_sink", "sink", "sink_state"]

log = logging.getLogger(__name__)

EXTENSION = "sim_sink"
#: per-user counters kept at most for this many users (the rest count only in the totals)
MAX_TRACKED_USERS = 100_000
GARBAGE = b"\x00\xff<html>definitely not JSON\x7f"

USER_ID = re.compile(USER_ID_PATTERN)

sink = Blueprint("sink", __name__, url_prefix="/sink")


@dataclass
class SinkCounters:
    """The in-memory counters (the store keeps ``received`` / ``unique``)."""

    requests: int = 0
    rejected: int = 0
    orphan_comments: int = 0


@dataclass
class SinkState:
    """Everything the sink keeps besides the store: secrets, knobs, counters."""

    settings: Settings
    faults: FaultsHolder
    webhooks: tuple[Webhook, ...] = ()
    totals: SinkCounters = field(default_factory=SinkCounters)
    users: dict[str, SinkCounters] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> SinkState:
        webhooks = []
        for secret in settings.webhook_secrets:
            try:
                webhooks.append(Webhook(secret))
            except Exception as exc:  # binascii.Error, EmptyWebhookSecretError
                raise ConfigError(
                    f"SIM_WEBHOOK_SECRET: not a valid whsec_ secret ({exc})"
                ) from None
        return cls(settings, FaultsHolder(Faults.from_settings(settings)), tuple(webhooks))

    def user(self, user_id: str) -> SinkCounters:
        if user_id not in self.users and len(self.users) >= MAX_TRACKED_USERS:
            return SinkCounters()  # counted nowhere but in the totals
        return self.users.setdefault(user_id, SinkCounters())

    def reset_counters(self) -> None:
        self.totals = SinkCounters()
        self.users.clear()

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """``None`` when signatures are off or one secret matches, else why not."""
        if not self.webhooks:
            return None
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return "the body is not UTF-8, so its signature cannot match"
        problem = "no matching signature"
        for webhook in self.webhooks:
            try:
                webhook.verify(text, dict(headers), json_parse=False)
                return None
            except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed header
                problem = str(exc) or type(exc).__name__
        return problem


def register_sink(app: Quart, settings: Settings) -> SinkState:
    """Mount the sink under ``/sink`` and keep its state in ``app.extensions``."""
    state = SinkState.from_settings(settings)
    app.extensions[EXTENSION] = state
    app.register_blueprint(sink)
    log.info(
        "Sink mounted at /sink (signatures %s)",
        "required" if state.webhooks else "not checked",
    )
    return state


def sink_state() -> SinkState:
    """The ``SinkState`` of the current app."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


# --- receiving ---------------------------------------------------------------------------
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


@sink.post("/interactions")
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
    problem = state.verify(body, dict(request.headers.items()))
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
        runtime().db,
        distinct_rows(items),
        webhook_id=request.headers.get("webhook-id"),
        check_videos=[video for _, video in lookups],
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


def _count_stored(state: SinkState, items: list[Parsed], orphans: Counter[str]) -> None:
    for user_id in {item.user_id for item, _ in items}:
        state.user(user_id).requests += 1
    for user_id, n in orphans.items():
        state.user(user_id).orphan_comments += n
        state.totals.orphan_comments += n


def _count_rejected(state: SinkState, body: bytes) -> None:
    state.totals.rejected += 1
    try:  # attribute the rejection to the users named in the body, if any
        items = json.loads(body).get("interactions", [])
        users = {str(item.get("user_id")) for item in items}
    except (ValueError, RecursionError, AttributeError, TypeError):
        return
    for user_id in users:
        if USER_ID.fullmatch(user_id):
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


# --- stats and admin -------------------------------------------------------------------------
@sink.get("/stats")
@tag(["sink"])
@document_querystring(StatsQuery)
@document_response(SinkStatsDoc, 200)
@document_response(ErrorBody, 400)
async def stats() -> Response:
    """What the sink received, overall or (``?user_id=``) for one user."""
    state = sink_state()
    user_id = request.args.get("user_id")
    if user_id is not None:
        try:
            StatsQuery(user_id=user_id)
        except ValidationError:
            return error_response(
                400, "invalid_input", "user_id: not a valid user id", field="user_id"
            )
    counts = await sink_counts(runtime().db, user_id)
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
    token = sink_state().settings.api_token
    if token is None:
        return None
    given = request.headers.get("Authorization", "")
    if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return None
    return error_response(401, "unauthorized", "the sink's admin endpoints need the API token")


@sink.get("/admin/faults")
@tag(["sink"])
@document_response(FaultsDoc, 200)
async def get_faults() -> Response:
    """The sink's current misbehaviour."""
    if denied := _admin_denied():
        return denied
    return jsonify(sink_state().faults.current.as_dict())


@sink.put("/admin/faults")
@tag(["sink"])
@document_request(FaultsPatch)
@document_response(FaultsDoc, 200)
@document_response(ErrorBody, 400)
async def put_faults() -> Response:
    """Change some knobs (the others keep their value); ``seed`` reseeds the random source."""
    if denied := _admin_denied():
        return denied
    data = await request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        return error_response(400, "invalid_input", "expected a JSON object of fault settings")
    holder = sink_state().faults
    seed = data.pop("seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return error_response(400, "invalid_input", "seed: expected an integer", field="seed")
    try:
        faults = holder.update(data)
    except InvalidInput as exc:
        return error_response(400, exc.code, str(exc), field=exc.field)
    if seed is not None:
        holder.seed(seed)
    return jsonify(faults.as_dict())


@sink.delete("/admin/faults")
@tag(["sink"])
@document_response(FaultsDoc, 200)
async def delete_faults() -> Response:
    """Back to the misbehaviour configured at start-up (``SIM_SINK_*``)."""
    if denied := _admin_denied():
        return denied
    return jsonify(sink_state().faults.restore().as_dict())


@sink.post("/admin/reset")
@tag(["sink"])
@document_response(ResetDone, 200)
async def reset() -> Response:
    """Forget everything received and zero the counters (the knobs stay)."""
    if denied := _admin_denied():
        return denied
    await reset_sink(runtime().db)
    sink_state().reset_counters()
    return jsonify({"status": "reset"})


@sink.get("/admin/received")
@tag(["sink"])
@document_querystring(StatsQuery)
@document_response(ReceivedIds, 200)
async def received() -> Response:
    """The distinct interaction ids received for ``?user_id=`` (for tests)."""
    if denied := _admin_denied():
        return denied
    user_id = request.args.get("user_id", "")
    try:
        StatsQuery(user_id=user_id)
    except ValidationError:
        return error_response(
            400, "invalid_input", "user_id: required, a valid user id", field="user_id"
        )
    ids = await received_ids(runtime().db, user_id)
    return jsonify({"user_id": user_id, "ids": [str(i) for i in ids]})
