"""Request and response models: validation and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from quart_schema import OpenAPIProvider, document_response
from werkzeug.routing import BaseConverter, Rule

from sim.pipeline.content import NICHE_KEYS

__all__ = [
    "USER_ID_PATTERN",
    "Counts",
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

#: DESIGN.md's user id; documented on every ``{user_id}`` path parameter
USER_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_PER_KIND = 10_000
MAX_VIDEOS = 1_000
MAX_LIVE_PER_MINUTE = 600


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer has this shape."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    pool: dict[str, int]


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


class DashboardUsers(BaseModel):
    """Every demo user (enabled first, newest first; at most ``limit``)."""

    users: list[DashboardUser]
    limit: int
    time: datetime


# --- OpenAPI: error responses and non-JSON bodies ------------------------------------------
F = TypeVar("F", bound=Callable[..., Any])

_TEXT_RESPONSES = "_sim_text_responses"
_ERROR_DESCRIPTIONS = {
    400: "Invalid input (the body names the field)",
    401: "Missing or invalid bearer token (only when SIM_API_TOKEN is set)",
    404: "Not found",
    413: "Request body too large",
    500: "Internal error",
    503: "Database unavailable or overloaded; retry after Retry-After seconds",
}


def document_errors(*codes: int) -> Callable[[F], F]:
    """Document the JSON error body (``ErrorBody``) for each status code."""

    def decorator(func: F) -> F:
        for code in codes:
            func = document_response(ErrorBody, code)(func)
        return func

    return decorator


def document_text(
    content_type: str, description: str, status: int = 200, *, schema: dict[str, Any] | None = None
) -> Callable[[F], F]:
    """Document a response that is not JSON (HTML, Prometheus text, an event stream)."""

    def decorator(func: F) -> F:
        responses = dict(getattr(func, _TEXT_RESPONSES, {}))
        responses[status] = (content_type, description, schema or {"type": "string"})
        setattr(func, _TEXT_RESPONSES, responses)
        return func

    return decorator


class SimOpenAPIProvider(OpenAPIProvider):
    """quart-schema's provider plus non-JSON responses and per-status error descriptions."""

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        text = dict(getattr(func, _TEXT_RESPONSES, {}))
        if rule.endpoint.endswith(".static"):  # a blueprint's static files (the dashboard's)
            text[200] = ("*/*", "The file (CSS, JavaScript, HTML)", {"type": "string"})
            not_found, definitions = self.build_response_object(ErrorBody, None)
            components.update(definitions)
            for operations in paths.values():
                for operation in operations.values():
                    operation["summary"] = "A static file of the dashboard"
                    operation["responses"] = {**operation["responses"], 404: not_found}
        for operations in paths.values():
            for operation in operations.values():
                responses = operation["responses"] = dict(operation["responses"])
                for status, (content_type, description, schema) in text.items():
                    responses[status] = {
                        "description": description,
                        "content": {content_type: {"schema": schema}},
                    }
                for status, response in list(responses.items()):
                    if int(status) in _ERROR_DESCRIPTIONS and _is_error_body(response):
                        responses[status] = {
                            **response,
                            "description": _ERROR_DESCRIPTIONS[int(status)],
                        }
        return paths, components

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if name == "user_id":
            parameter["schema"] = {"type": "string", "pattern": USER_ID_PATTERN}
        return parameter


def _is_error_body(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("title") == ErrorBody.__name__)
