"""Bearer-token authentication for ``/v1/*`` and dashboard actions (rule: ``sim.web.auth``)."""

from __future__ import annotations

from quart import Response

from sim.api.deps import runtime
from sim.web.auth import check_bearer

__all__ = ["require_token"]


async def require_token() -> Response | None:
    """``before_request`` hook: 401 unless ``Authorization: Bearer <SIM_API_TOKEN>``."""
    return check_bearer(runtime().settings.api_token)
