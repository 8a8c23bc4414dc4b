"""sim's error hierarchy: every error sim raises on purpose is a ``SimError``.

Errors of the libraries underneath (psycopg, httpx) are mapped to these at the
module that talks to them, with ``raise ... from exc``, so that callers never
need to import those libraries to handle a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "ConfigError",
    "DatabaseError",
    "DatabaseUnavailable",
    "InvalidInput",
    "LeaseLost",
    "NotFound",
    "PoolExhausted",
    "QueryTimeout",
    "SimError",
    "describe",
    "first_error",
    "is_only",
    "leaves",
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


class LeaseLost(SimError):
    """This instance no longer owns a user's simulation (lease expired or taken over, demo
    mode turned off, or a new run): the write was refused and the simulation stops."""

    status = 409
    code = "lease_lost"


# --- describing and unwrapping exceptions ---------------------------------------------------
def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``exc``, exception groups (nested too) flattened, in order."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def first_error(
    exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...] = SimError
) -> BaseException:
    """The first ``kind`` inside ``exc`` (groups unwrapped), else its first exception."""
    if isinstance(exc, BaseExceptionGroup):
        match, _ = exc.split(kind)
        return next(leaves(match if match is not None else exc))
    return exc


def is_only(
    exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> bool:
    """True if ``exc`` is a ``kind``, or a group holding nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(kind)[1] is None
    return isinstance(exc, kind)


def describe(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` for a log line or a status document; ``Type`` when there is no message.

    A group of one is described by what it holds. (``str(exc) or ...`` does not do: an
    exception is always truthy, and ``trio.TooSlowError()`` has an empty message.)
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    name = type(exc).__name__
    return (f"{name}: {text}" if text else name)[:limit]
