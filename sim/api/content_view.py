"""The content view: one user's demo as the main app would show it.

``/dashboard/content`` is a static page (``static/content.html``); it reads
``/dashboard/api/users/<user_id>/content``: the user's videos with their comments
(replies under their parent), and DM threads, each item with its labels. Like the rest of
the dashboard it needs the bearer token when ``SIM_API_TOKEN`` is set.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify, send_from_directory
from quart_schema import document_response, tag

from sim.api.auth import require_token
from sim.api.deps import runtime
from sim.api.schemas import document_errors, document_text
from sim.db import users
from sim.errors import NotFound, QueryTimeout
from sim.web.schemas import validate_user_id

__all__ = ["UserContent", "content_view", "user_content"]

STATIC_DIR = Path(__file__).parent / "static"
LIMITS = {"video": 50, "comment": 500, "dm": 300}  # the first items of each kind shown

content_view = Blueprint("content_view", __name__)


class UserContent(BaseModel):
    """A user's first videos (each with its comments, replies under ``replies``) and DMs."""

    user_id: str
    niche: str | None
    videos: list[dict[str, Any]] = Field(description="delivered documents, plus comments")
    threads: list[dict[str, Any]] = Field(description="{thread_id, messages} in order")
    limits: dict[str, int] = Field(description="how many items of each kind are shown")


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {**row["payload"], "status": row["status"]}


async def user_content(user_id: str) -> dict[str, Any]:
    """The user's first videos (comments nested, replies under parents) and DM threads."""
    rt = runtime()
    row = await users.get_user(rt.db, user_id)
    if row is None:
        raise NotFound(f"user {user_id!r} never had demo mode")
    pages = {}
    for kind, limit in LIMITS.items():
        pages[kind] = await users.page_interactions(
            rt.db, user_id, status=None, kind=kind, limit=limit, after=-1
        )
    videos = [{**_item(r), "comments": []} for r in pages["video"]]
    by_id = {v["id"]: v for v in videos}
    comments = {r["payload"]["id"]: {**_item(r), "replies": []} for r in pages["comment"]}
    for c in comments.values():
        parent = comments.get(c.get("parent_id") or "")
        if parent is not None:
            parent["replies"].append(c)
        elif c.get("video_id") in by_id:
            by_id[c["video_id"]]["comments"].append(c)
    threads: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in pages["dm"]:
        threads[r["payload"].get("thread_id") or r["payload"]["id"]].append(_item(r))
    return {
        "user_id": user_id,
        "niche": row.niche,
        "videos": videos,
        "threads": [{"thread_id": t, "messages": m} for t, m in threads.items()],
        "limits": LIMITS,
    }


@content_view.get("/dashboard/content")
@tag(["dashboard"])
@document_text("text/html", "The content view: a user's videos, comments and DMs")
async def page() -> Response:
    """The content view page (``?user=<user_id>``)."""
    response = await send_from_directory(STATIC_DIR, "content.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@content_view.get("/dashboard/api/users/<user_id>/content")
@tag(["dashboard"])
@document_response(UserContent, 200)
@document_errors(400, 401, 404, 503)
async def content(user_id: str) -> Response | tuple[Response, int]:
    """A user's demo content, nested as the main app shows it, with labels."""
    if (denied := await require_token()) is not None:
        return denied
    validate_user_id(user_id)
    try:
        with trio.fail_after(runtime().settings.readyz_timeout_s * 5):
            doc = await user_content(user_id)
    except trio.TooSlowError:
        raise QueryTimeout("the database did not answer in time") from None
    return jsonify(doc)
