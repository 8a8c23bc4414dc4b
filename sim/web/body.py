"""Strict JSON request bodies: UTF-8, finite numbers, bounded size and depth.

Every route that takes JSON reads it through here, so bad bytes, ``NaN``, a
number too large for a float, nesting deeper than the parser can follow and
an oversized body all end as the same 4xx JSON error, never a 500.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import request

from sim.errors import InvalidInput
from sim.web.errors import invalid_input

__all__ = ["loads_strict", "read_json_object", "validate"]

M = TypeVar("M", bound=BaseModel)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_strict(raw: bytes | str) -> Any:
    """``raw`` parsed as JSON (UTF-8 only, no NaN/Infinity); ``InvalidInput`` if it is not."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError:
        raise InvalidInput("the body is not valid JSON: nested too deeply", field="body") from None
    except ValueError as exc:  # bad JSON or UTF-8, NaN/Infinity, integers of >4300 digits
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None


async def read_json_object(limit: int, *, empty: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request body as a JSON object of at most ``limit`` bytes.

    An empty body is ``empty`` when given (an optional body), else an error; a body
    over ``limit`` is a 413, anything but a JSON object a 400.
    """
    if (request.content_length or 0) > limit:
        raise InvalidInput(f"body larger than {limit} bytes", field="body", status=413)
    raw = await request.get_data(as_text=False, parse_form_data=False)
    if len(raw) > limit:
        raise InvalidInput(f"body larger than {limit} bytes", field="body", status=413)
    if not raw.strip():
        if empty is not None:
            return dict(empty)
        raise InvalidInput("expected a JSON object, got an empty body", field="body")
    data = loads_strict(raw)
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return data


def validate(model: type[M], data: Any) -> M:
    """``data`` validated as ``model``; ``InvalidInput`` naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc) from None
