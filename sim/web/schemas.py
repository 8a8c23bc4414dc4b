"""Schemas and OpenAPI pieces every sim app shares: the error body, the probes, user ids.

``USER_ID_PATTERN`` is DESIGN.md's user id, defined here once: the API's path
parameter, the sink's items and queries, and the dashboard page all take it from here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, StrictStr
from quart_schema import OpenAPIProvider, document_response
from werkzeug.routing import BaseConverter, Rule

from sim.errors import InvalidInput

__all__ = [
    "USER_ID_PATTERN",
    "ErrorBody",
    "ErrorDetail",
    "Health",
    "Ready",
    "SimOpenAPIProvider",
    "UserId",
    "document_errors",
    "document_text",
    "validate_user_id",
]

#: DESIGN.md's user id: 1-64 characters of ``[A-Za-z0-9._-]``
USER_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_USER_ID = re.compile(USER_ID_PATTERN)
#: a user id in a JSON body or query (a string, never a number)
UserId = Annotated[StrictStr, Field(pattern=USER_ID_PATTERN)]


def validate_user_id(user_id: str, field: str = "user_id") -> str:
    """``user_id`` if it is a valid user id, else ``InvalidInput`` naming ``field``."""
    if not _USER_ID.fullmatch(user_id):
        raise InvalidInput(
            f"{field} must be 1-64 characters of letters, digits, '.', '_' or '-'", field=field
        )
    return user_id


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
    circuit: dict[str, Any] | None = Field(
        None, description="the main app's circuit breaker: state, opened_at, next_probe_at"
    )


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
