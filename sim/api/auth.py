"""Bearer-token authentication for ``/v1/*`` and dashboard actions."""

from __future__ import annotations

import hmac

from quart import Response, request

from sim.api.deps import runtime
from sim.api.errors import error_response

__all__ = ["require_token"]


async def require_token() -> Response | None:
    """``before_request`` hook: 401 unless ``Authorization: Bearer <SIM_API_TOKEN>``."""
    token = runtime().settings.api_token
    if not token:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    return error_response(
        401,
        "unauthorized",
        "missing or invalid bearer token",
        headers={"WWW-Authenticate": 'Bearer realm="sim"'},
    )
