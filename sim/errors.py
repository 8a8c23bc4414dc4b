"""sim's error hierarchy: every error sim raises on purpose is a ``SimError``.

Errors of the libraries underneath (psycopg, httpx) are mapped to these at the
module that talks to them, with ``raise ... from exc``, so that callers never
need to import those libraries to handle a failure.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatabaseError",
    "DatabaseUnavailable",
    "InvalidInput",
    "NotFound",
    "PoolExhausted",
    "QueryTimeout",
    "SimError",
]


class SimError(Exception):
    """Root of every error sim raises on purpose."""

    #: HTTP status the API answers with when this error escapes a handler.
    status = 500
    #: Stable machine-readable code for the JSON error body.
    code = "internal"


class ContentError(SimError):
    """A content writer (the LLM endpoint) failed or answered something unusable."""

    code = "content"


class ConfigError(SimError):
    """A setting is unknown or has a bad value; start-up stops."""

    code = "config"


class InvalidInput(SimError):
    """A request is malformed or out of bounds."""

    status = 400
    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


class NotFound(SimError):
    """The thing asked for does not exist."""

    status = 404
    code = "not_found"


class DatabaseError(SimError):
    """PostgreSQL refused or failed an operation."""

    status = 500
    code = "database_error"


class DatabaseUnavailable(DatabaseError):
    """PostgreSQL cannot be reached, or the connection broke mid-operation."""

    status = 503
    code = "database_unavailable"


class QueryTimeout(DatabaseError):
    """An operation ran past its deadline and was cancelled server-side."""

    status = 503
    code = "query_timeout"


class PoolExhausted(DatabaseUnavailable):
    """No pooled connection could be had in time (overload)."""

    status = 503
    code = "overloaded"
