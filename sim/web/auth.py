"""The bearer-token rule, one for every route that needs the API token.

``Authorization: Bearer <token>``: the scheme in any case, the token compared
in constant time, an empty token never matches; a refusal is a 401 JSON error
with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import hmac

from quart import Response, request

from sim.web.errors import error_response

__all__ = ["bearer_matches", "check_bearer"]

CHALLENGE = 'Bearer realm="sim"'


def bearer_matches(header: str | None, token: str) -> bool:
    """True if ``header`` is ``Bearer <token>`` (scheme case-insensitive, token non-empty)."""
    scheme, _, given = (header or "").strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given or not token:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def check_bearer(
    token: str | None, message: str = "missing or invalid bearer token"
) -> Response | None:
    """None when ``token`` is unset or the request carries it; else the 401 to answer."""
    if not token:
        return None
    if bearer_matches(request.headers.get("Authorization"), token):
        return None
    return error_response(401, "unauthorized", message, headers={"WWW-Authenticate": CHALLENGE})
