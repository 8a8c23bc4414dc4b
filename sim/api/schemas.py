"""Request and response models: validation and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sim.pipeline.content import NICHE_KEYS
from sim.web.schemas import (
    USER_ID_PATTERN,
    ErrorBody,
    ErrorDetail,
    Health,
    Ready,
    SimOpenAPIProvider,
    document_errors,
    document_text,
)

__all__ = [
    "USER_ID_PATTERN",
    "Counts",
    "DashboardQuery",
    "DashboardUser",
    "DashboardUsers",
    "DemoRequest",
    "DemoStatus",
    "ErrorBody",
    "ErrorDetail",
    "Health",
    "InteractionPage",
    "InteractionsQuery",
    "Ready",
    "SimOpenAPIProvider",
    "SinkStats",
    "document_errors",
    "document_text",
]

MAX_PER_KIND = 10_000
MAX_VIDEOS = 1_000
MAX_LIVE_PER_MINUTE = 600


class DemoRequest(BaseModel):
    """What to invent when demo mode is turned on (every field optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    videos: int = Field(8, ge=0, le=MAX_VIDEOS, description="videos in the initial burst")
    comments: int = Field(100, ge=0, le=MAX_PER_KIND, description="comments in the initial burst")
    dms: int = Field(100, ge=0, le=MAX_PER_KIND, description="DMs in the initial burst")
    live_per_minute: float = Field(
        6, ge=0, le=MAX_LIVE_PER_MINUTE, description="new comments/DMs per minute once live"
    )
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="same seed, same content; random when omitted"
    )
    niche: str | None = Field(
        None,
        pattern=f"^({'|'.join(NICHE_KEYS)})$",
        json_schema_extra={"enum": list(NICHE_KEYS)},
        description="what the account's content is about; derived from the seed when omitted",
    )


class Counts(BaseModel):
    pending: int
    sending: int
    sent: int
    failed: int


class DemoStatus(BaseModel):
    user_id: str
    state: Literal["initializing", "live", "disabled", "failed"]
    enabled: bool
    enabled_at: datetime
    live_at: datetime | None
    disabled_at: datetime | None
    counts: Counts
    total: int
    initial_total: int
    videos: int
    comments: int
    dms: int
    live_per_minute: float
    seed: int
    last_error: str | None
    restarts: int
    owner: str | None = Field(None, description="id of the sim instance running it (fleet)")
    niche: str | None = Field(None, description="what the account's content is about")


class InteractionsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["pending", "sending", "sent", "failed"] | None = None
    kind: Literal["video", "comment", "dm"] | None = None
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(
        None, pattern=r"^[0-9]{1,18}$", description="next_cursor of the previous page"
    )


class InteractionItem(BaseModel):
    id: str
    kind: Literal["video", "comment", "dm"]
    status: Literal["pending", "sending", "sent", "failed"]
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
    payload: dict[str, Any]


class InteractionPage(BaseModel):
    items: list[InteractionItem]
    next_cursor: str | None


class SinkStats(BaseModel):
    received: int
    unique: int
    duplicates: int
    requests: int
    rejected: int


class DashboardUser(DemoStatus):
    """A demo user as the dashboard shows it."""

    initial_done: int = Field(description="interactions of the initial burst sent or failed")
    rate_per_s: float | None = Field(description="interactions sent per second, recently")


class DashboardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=500, description="users per page")
    offset: int = Field(0, ge=0, le=1_000_000, description="users skipped (next_offset)")


class DashboardUsers(BaseModel):
    """A page of demo users (enabled first, newest first) and how many are in each state."""

    users: list[DashboardUser]
    limit: int
    offset: int
    next_offset: int | None = Field(description="the next page's offset; null on the last")
    total: int = Field(description="demo users in all")
    states: dict[str, int] = Field(description="demo users by state, all of them")
    time: datetime
    circuit: dict[str, Any] | None = Field(None, description="the main app's circuit breaker")
    recent_errors: list[dict[str, Any]] = Field(
        default_factory=list, description="the newest failed delivery requests (attempt log)"
    )
