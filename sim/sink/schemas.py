"""The sink's request and response models: body validation and the OpenAPI document.

``parse_batch`` turns a request body into validated items (or an ``InvalidInput``
naming the first bad field); ``comment_order`` finds comments sent before their video.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from sim.errors import InvalidInput
from sim.web.body import loads_strict, validate
from sim.web.schemas import UserId

__all__ = [
    "MAX_ITEMS",
    "Parsed",
    "ReceivedIds",
    "ResetDone",
    "SinkAccepted",
    "SinkBatch",
    "SinkItem",
    "SinkStatsDoc",
    "StatsQuery",
    "comment_order",
    "parse_batch",
]

log = logging.getLogger(__name__)

MAX_ITEMS = 5000


def _must_be_str(value: Any) -> Any:
    # JSON numbers are not ids or timestamps (pydantic would take a number as epoch seconds).
    if not isinstance(value, str | uuid.UUID):
        raise ValueError("expected a string")
    return value


UUIDStr = Annotated[uuid.UUID, BeforeValidator(_must_be_str)]
AwareTimestamp = Annotated[AwareDatetime, BeforeValidator(_must_be_str)]


class SinkItem(BaseModel):
    """One interaction as the main app receives it (further fields are kept as sent)."""

    model_config = ConfigDict(extra="allow")

    id: UUIDStr = Field(description="the idempotency key")
    user_id: UserId
    kind: Literal["video", "comment", "dm"]
    video_id: UUIDStr | None = Field(None, description="required for comments")
    created_at: AwareTimestamp = Field(description="ISO 8601 with an offset")
    # labels (additive: senders may omit them, receivers may ignore them)
    niche: str | None = Field(None, description="the account's niche, e.g. cooking")
    topic: str | None = Field(None, description="what the video (or comment, DM) is about")
    intent: str | None = Field(
        None,
        description="video: its format (tutorial, review, ...); comment: praise, question, "
        "suggestion, criticism, joke, reply or spam; dm: the thread's purpose "
        "(collaboration, question, fan_mail, support, spam)",
    )
    sentiment: str | None = Field(None, description="positive, neutral or negative")
    language: str | None = Field(None, description="ISO 639-1 code of the text, e.g. en")
    parent_id: str | None = Field(
        None, description="a reply's comment, or the previous message of a DM thread"
    )
    thread_id: str | None = Field(None, description="dm: the thread it belongs to")
    direction: str | None = Field(
        None, description="dm: inbound (from the fan) or outbound (the account's reply)"
    )


class SinkBatch(BaseModel):
    """``POST /sink/interactions``: what sim (or any sender) delivers."""

    interactions: list[SinkItem] = Field(min_length=1, max_length=MAX_ITEMS)


class SinkAccepted(BaseModel):
    accepted: int = Field(description="items in the request")
    new: int = Field(description="items whose id the sink had not seen")
    duplicates: int = Field(description="accepted - new")


class SinkStatsDoc(BaseModel):
    received: int = Field(description="every delivered item, duplicates included")
    unique: int = Field(description="distinct interaction ids")
    duplicates: int = Field(description="received - unique")
    requests: int = Field(description="POST /sink/interactions requests since the last reset")
    rejected: int = Field(description="requests refused for a missing or bad signature (401)")
    orphan_comments: int = Field(description="comments delivered before their video")


class StatsQuery(BaseModel):
    user_id: UserId | None = None


class ReceivedIds(BaseModel):
    user_id: str
    ids: list[uuid.UUID]


class ResetDone(BaseModel):
    status: Literal["reset"]


# --- validating and analysing a request ----------------------------------------------
#: one validated item and the JSON object it came from (stored as sent)
Parsed: TypeAlias = tuple[SinkItem, dict[str, Any]]


def _unstorable(value: Any) -> bool:
    """True if ``value`` holds text PostgreSQL's jsonb refuses: NUL, unpaired surrogates."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
            stack.extend(v.keys())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str):
            if "\x00" in v:
                return True
            try:
                v.encode()
            except UnicodeEncodeError:
                return True
    return False


def parse_batch(body: bytes) -> list[Parsed]:
    """The validated items with their raw JSON objects; ``InvalidInput`` says what is wrong."""
    data = loads_strict(body)
    if not isinstance(data, dict):
        raise InvalidInput('the body must be a JSON object {"interactions": [...]}', field="body")
    batch = validate(SinkBatch, data)
    for i, item in enumerate(batch.interactions):
        if item.kind == "comment" and item.video_id is None:
            where = f"interactions.{i}.video_id"
            raise InvalidInput(f"{where}: a comment needs a video_id", field=where)
        if _unstorable(data["interactions"][i]):
            where = f"interactions.{i}"
            raise InvalidInput(f"{where}: text with NUL or an unpaired surrogate", field=where)
    return list(zip(batch.interactions, data["interactions"], strict=True))


def comment_order(items: list[Parsed]) -> tuple[Counter[str], list[tuple[str, uuid.UUID]]]:
    """Orphans found within the request (by user), and (user, video) pairs to look up.

    A comment is an orphan when its video comes later in the same request, or
    (decided after the look-up) when the sink has never received its video.
    """
    videos_here = {item.id for item, _ in items if item.kind == "video"}
    seen: set[uuid.UUID] = set()
    orphans: Counter[str] = Counter()
    lookups: list[tuple[str, uuid.UUID]] = []
    for item, _ in items:
        if item.kind == "video":
            seen.add(item.id)
        elif item.kind == "comment" and item.video_id not in seen:
            assert item.video_id is not None
            if item.video_id in videos_here:
                orphans[item.user_id] += 1
            else:
                lookups.append((item.user_id, item.video_id))
    return orphans, lookups
