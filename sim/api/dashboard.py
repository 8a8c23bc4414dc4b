"""The dashboard: every demo user's progress at ``/``, kept live by Server-Sent Events.

``/`` is a static page (``sim/api/static``); its data comes from
``/dashboard/api/users`` (one JSON snapshot) and ``/dashboard/events`` (the same
snapshot pushed every second as ``event: users``). Both need the bearer token
when ``SIM_API_TOKEN`` is set; the page sends it as a header, never in a URL.

A stream is bounded: it ends by itself after ``STREAM_MAX_S`` (the page
reconnects), when the client goes away (Quart cancels it), and when sim's
database closes at shutdown. At most ``MAX_STREAMS`` run at once.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from quart import Blueprint, Response, current_app, jsonify, send_from_directory
from quart_schema import document_response, hide, tag

from sim.api.auth import require_token
from sim.api.deliveries import outage_view
from sim.api.demo import status_document
from sim.api.deps import runtime
from sim.api.errors import error_response
from sim.api.schemas import DashboardUsers, document_errors, document_text
from sim.db import users
from sim.errors import DatabaseError

if TYPE_CHECKING:
    from sim.runtime import Runtime

__all__ = ["RateTracker", "dashboard", "snapshot"]

log = logging.getLogger(__name__)

EXTENSION = "sim_dashboard"
USERS_LIMIT = 500
STREAM_INTERVAL_S = 1.0
STREAM_MAX_S = 30.0  # below Quart's RESPONSE_TIMEOUT; the page reconnects
MAX_STREAMS = 32
RATE_WINDOW_S = 10.0

STATIC_DIR = Path(__file__).parent / "static"
dashboard = Blueprint("dashboard", __name__)


@dashboard.get("/dashboard/static/<path:filename>")
@hide
async def static_file(filename: str) -> Response:
    """The page's script and style sheet (not part of the API document)."""
    return await send_from_directory(STATIC_DIR, filename)


class RateTracker:
    """Interactions sent per second per user, over a sliding window of snapshots."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: dict[str, tuple[str, deque[tuple[float, int]]]] = {}

    def observe(self, user_id: str, run: str, now: float, sent: int) -> float | None:
        """Record ``sent`` at ``now``; the rate over the window (None until measurable)."""
        kept = self._samples.get(user_id)
        if kept is None or kept[0] != run or (kept[1] and kept[1][-1][1] > sent):
            kept = (run, deque())  # new user, new run, or rows purged: start over
            self._samples[user_id] = kept
        samples = kept[1]
        if not samples or now > samples[-1][0]:
            samples.append((now, sent))
        while len(samples) > 2 and samples[1][0] <= now - self.window_s:
            samples.popleft()
        (t0, s0), (t1, s1) = samples[0], samples[-1]
        if t1 - t0 < 0.5:
            return None
        return round((s1 - s0) / (t1 - t0), 2)

    def keep_only(self, user_ids: set[str]) -> None:
        for user_id in set(self._samples) - user_ids:
            del self._samples[user_id]


@dataclass
class _State:
    rates: RateTracker = field(default_factory=RateTracker)
    streams: int = 0


def _state() -> _State:
    state: _State = current_app.extensions.setdefault(EXTENSION, _State())
    return state


async def snapshot(rt: Runtime, rates: RateTracker) -> dict[str, Any]:
    """Every demo user's status document, plus initial-burst progress and sending rate."""
    rows = await users.list_statuses(rt.db, USERS_LIMIT)
    now = trio.current_time()
    docs = []
    for row, counts, initial_done in rows:
        doc = status_document(row, counts)
        doc["initial_done"] = initial_done
        doc["rate_per_s"] = rates.observe(row.user_id, str(row.run_id), now, counts["sent"])
        docs.append(doc)
    rates.keep_only({d["user_id"] for d in docs})
    doc = {"users": docs, "limit": USERS_LIMIT, "time": datetime.now(UTC).isoformat()}
    doc.update(await outage_view(rt))  # the circuit banner and the last errors
    return doc


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(rt: Runtime, state: _State) -> AsyncIterator[bytes]:
    state.streams += 1
    try:
        yield b"retry: 2000\n\n"
        end = trio.current_time() + STREAM_MAX_S
        while trio.current_time() < end:
            try:
                if not rt.db.is_open:
                    return  # shutting down
                with trio.fail_after(rt.settings.readyz_timeout_s):
                    doc = await snapshot(rt, state.rates)
            except (DatabaseError, trio.TooSlowError) as exc:
                yield _event("problem", {"message": str(exc) or "the database did not answer"})
            else:
                yield _event("users", doc)
            await trio.sleep(STREAM_INTERVAL_S)
        yield _event("bye", {"reconnect": True})
    finally:
        state.streams -= 1


@dashboard.get("/")
@tag(["dashboard"])
@document_text("text/html", "The dashboard page (plain HTML and JavaScript)")
async def page() -> Response:
    """The dashboard: demo users, their progress and live delivery rate; enable/disable."""
    response = await send_from_directory(STATIC_DIR, "dashboard.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@dashboard.get("/dashboard/api/users")
@tag(["dashboard"])
@document_response(DashboardUsers, 200)
@document_errors(401, 503)
async def list_users() -> Response:
    """Every demo user's status with initial-burst progress and recent sending rate."""
    if (denied := await require_token()) is not None:
        return denied
    rt = runtime()
    try:
        with trio.fail_after(rt.settings.readyz_timeout_s):
            doc = await snapshot(rt, _state().rates)
    except trio.TooSlowError:
        return error_response(
            503,
            "query_timeout",
            "the database did not answer in time",
            headers={"Retry-After": "1"},
        )
    return jsonify(doc)


@dashboard.get("/dashboard/events")
@tag(["dashboard"])
@document_text(
    "text/event-stream",
    "Server-Sent Events: `users` (the /dashboard/api/users document) every second, "
    "`problem` when the database does not answer, `bye` before the stream ends",
)
@document_errors(401, 503)
async def events() -> Response:
    """Live updates of every demo user's status, as Server-Sent Events."""
    if (denied := await require_token()) is not None:
        return denied
    rt, state = runtime(), _state()
    if state.streams >= MAX_STREAMS:
        return error_response(
            503, "too_many_streams", "too many open dashboards", headers={"Retry-After": "5"}
        )
    response = Response(_stream(rt, state), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = STREAM_MAX_S + 10
    return response
