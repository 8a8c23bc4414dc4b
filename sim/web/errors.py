"""Every error leaves the API as JSON: ``{"error": {"code", "message", ...}}``."""

from __future__ import annotations

import logging
from typing import Any

import trio
from pydantic import ValidationError
from quart import Quart, Response, jsonify, request
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from sim.errors import InvalidInput, PoolExhausted, SimError

__all__ = ["error_response", "invalid_input", "register_error_handlers", "validation_details"]

log = logging.getLogger(__name__)

#: how long an answer may wait for the rest of a request body it did not need
DRAIN_TIMEOUT_S = 1.0


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify({"error": body})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def validation_details(exc: ValidationError) -> tuple[str, str | None, list[dict[str, Any]]]:
    """A pydantic error as (message naming the first bad field, that field, every error)."""
    details: list[dict[str, Any]] = [
        {"field": ".".join(str(p) for p in e.get("loc", ())) or None, "message": e["msg"]}
        for e in exc.errors()
    ]
    if not details:
        return str(exc) or "invalid input", None, []
    field, message = details[0]["field"], str(details[0]["message"])
    return (f"{field}: {message}" if field else message), field, details


def invalid_input(exc: ValidationError) -> InvalidInput:
    """The ``InvalidInput`` (400) that answers a pydantic validation error."""
    message, field, _ = validation_details(exc)
    return InvalidInput(message, field=field)


async def _finish_request_body(response: Response) -> Response:
    """Answer only once the request body is all in, or close the connection.

    An early answer (401, 405, a 400 about the path) leaves the body unread; hypercorn
    then sometimes never reads the next request on that keep-alive connection, and the
    client hangs. Reading the rest (bounded by MAX_CONTENT_LENGTH and a deadline) or
    else closing the connection avoids that.
    """
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not request.content_length and not chunked:
        return response
    with trio.move_on_after(DRAIN_TIMEOUT_S):
        try:
            await request.get_data(parse_form_data=False)
        except HTTPException:  # larger than MAX_CONTENT_LENGTH
            pass
        else:
            return response
    response.headers["Connection"] = "close"
    return response


def register_error_handlers(app: Quart) -> None:
    app.after_request(_finish_request_body)

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema(exc: RequestSchemaValidationError) -> Response:
        err = exc.validation_error
        if isinstance(err, ValidationError):
            message, field, details = validation_details(err)
        else:  # a TypeError from a non-pydantic model
            message, field, details = str(err) or "invalid request", None, []
        return error_response(400, "invalid_input", message, field=field, details=details)

    @app.errorhandler(SimError)
    async def _sim(exc: SimError) -> Response:
        headers = (
            {"Retry-After": "1"} if isinstance(exc, PoolExhausted) or exc.status == 503 else {}
        )
        if exc.status >= 500:
            log.warning("Request failed: %s", exc)
        return error_response(
            exc.status, exc.code, str(exc), headers=headers, field=getattr(exc, "field", None)
        )

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = {
            400: "bad_request",
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }.get(status, "http_error")
        # keep the exception's own headers (``Allow`` on 405, for one), not its content type
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return error_response(status, code, exc.description or exc.name, headers=headers)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.error("Unhandled error in request", exc_info=exc)
        return error_response(500, "internal", "internal error; see the server log")
