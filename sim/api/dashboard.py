"""The dashboard: every demo user's progress at ``/``, kept live by Server-Sent Events.

``/`` is a static page (``sim/api/static``); its data comes from
``/dashboard/api/users`` (one JSON snapshot) and ``/dashboard/events`` (the same
snapshot pushed every second as ``event: users``). A snapshot is one page of users
(``limit``, ``offset``) with how many users are in each state: its size does not
grow with the number of users. Both need the bearer token
when ``SIM_API_TOKEN`` is set; the page sends it as a header, never in a URL.

A stream is bounded: it ends by itself after ``SIM_DASHBOARD_STREAM_MAX_S`` (the page
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
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from pydantic import ValidationError
from quart import Blueprint, Response, current_app, jsonify, request, send_from_directory
from quart_schema import document_querystring, document_response, hide, tag

from sim.api.auth import require_token
from sim.api.deliveries import outage_view
from sim.api.demo import status_document
from sim.api.deps import runtime
from sim.api.schemas import DashboardQuery, DashboardUsers, document_errors, document_text
from sim.db import users
from sim.errors import DatabaseError, InvalidInput, QueryTimeout
from sim.web.errors import error_response
from sim.web.schemas import USER_ID_PATTERN

if TYPE_CHECKING:
    from sim.runtime import Runtime

__all__ = ["RateTracker", "dashboard", "snapshot"]

log = logging.getLogger(__name__)

EXTENSION = "sim_dashboard"
STREAM_INTERVAL_S = 1.0
MAX_STREAMS = 32
RATE_WINDOW_S = 10.0

STATIC_DIR = Path(__file__).parent / "static"
#: one event of ``/dashboard/events`` (``data`` is a JSON document)
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["users", "problem", "bye"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}
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


def _page_query() -> DashboardQuery:
    try:
        return DashboardQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None


async def snapshot(rt: Runtime, rates: RateTracker, page: DashboardQuery) -> dict[str, Any]:
    """A page of demo users' status documents, plus initial-burst progress and sending
    rate, and how many users are in each state."""
    states = await users.count_by_state(rt.db)
    rows = await users.list_statuses(rt.db, page.limit, page.offset)
    now = trio.current_time()
    docs = []
    for row, counts, initial_done in rows:
        doc = status_document(row, counts)
        doc["initial_done"] = initial_done
        doc["rate_per_s"] = rates.observe(row.user_id, str(row.run_id), now, counts["sent"])
        docs.append(doc)
    rates.keep_only({d["user_id"] for d in docs})
    total = sum(states.values())
    more = page.offset + len(docs) < total and len(docs) == page.limit
    doc = {
        "users": docs,
        "limit": page.limit,
        "offset": page.offset,
        "next_offset": page.offset + page.limit if more else None,
        "total": total,
        "states": states,
        "time": datetime.now(UTC).isoformat(),
    }
    doc.update(await outage_view(rt))  # the circuit banner and the last errors
    return doc


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(rt: Runtime, state: _State, page: DashboardQuery) -> AsyncIterator[bytes]:
    state.streams += 1
    try:
        yield b"retry: 2000\n\n"
        end = trio.current_time() + rt.settings.dashboard_stream_max_s
        while trio.current_time() < end:
            try:
                if not rt.db.is_open:
                    return  # shutting down
                with trio.fail_after(rt.settings.readyz_timeout_s):
                    doc = await snapshot(rt, state.rates, page)
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
    html = await trio.Path(STATIC_DIR / "dashboard.html").read_text(encoding="utf-8")
    # the page's form checks user ids with the server's own pattern (HTML anchors it itself)
    pattern = escape(USER_ID_PATTERN.removeprefix("^").removesuffix("$"), quote=True)
    response = Response(html.replace("{{USER_ID_PATTERN}}", pattern), mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@dashboard.get("/dashboard/api/users")
@tag(["dashboard"])
@document_querystring(DashboardQuery)
@document_response(DashboardUsers, 200)
@document_errors(400, 401, 503)
async def list_users() -> Response:
    """A page of demo users' status with initial-burst progress and recent sending rate."""
    if (denied := await require_token()) is not None:
        return denied
    rt, page = runtime(), _page_query()
    try:
        with trio.fail_after(rt.settings.readyz_timeout_s):
            doc = await snapshot(rt, _state().rates, page)
    except trio.TooSlowError:
        raise QueryTimeout("the database did not answer in time") from None
    return jsonify(doc)


@dashboard.get("/dashboard/events")
@tag(["dashboard"])
@document_querystring(DashboardQuery)
@document_text(
    "text/event-stream",
    "Server-Sent Events: `users` (the /dashboard/api/users document) every second, "
    "`problem` when the database does not answer, `bye` before the stream ends",
    schema=SSE_EVENT,
)
@document_errors(400, 401, 503)
async def events() -> Response:
    """Live updates of a page of demo users' status, as Server-Sent Events."""
    if (denied := await require_token()) is not None:
        return denied
    rt, state, page = runtime(), _state(), _page_query()
    if state.streams >= MAX_STREAMS:
        return error_response(
            503, "too_many_streams", "too many open dashboards", headers={"Retry-After": "5"}
        )
    response = Response(_stream(rt, state, page), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = rt.settings.dashboard_stream_max_s + 10
    return response
