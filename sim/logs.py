"""Logging set-up: readable text by default, one JSON object per line on request.

Secrets never reach the output: known secret values are registered with
``redact`` and replaced by ``***`` in every formatted record.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from sim.settings import Settings

__all__ = ["RedactingFilter", "configure_logging", "redact"]

_SECRETS: set[str] = set()
_STD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact(*values: str | None) -> None:
    """Register values (tokens, secrets, passwords) that must never be logged."""
    for value in values:
        if value and len(value) >= 4:
            _SECRETS.add(value)


def _scrub(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """Replaces registered secrets in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = _scrub(record.getMessage())
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                doc[key] = (
                    value if isinstance(value, (int, float, bool, type(None))) else str(value)
                )
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        return _scrub(json.dumps(doc, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return (
            datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        )

    def format(self, record: logging.LogRecord) -> str:
        return _scrub(super().format(record))


def configure_logging(settings: Settings, stream: Any = None) -> None:
    """Install sim's handler on the root logger (idempotent)."""
    redact(settings.api_token, *settings.webhook_secrets)
    if settings.database_url:
        from urllib.parse import urlsplit

        try:
            redact(urlsplit(settings.database_url).password)
        except ValueError:
            pass
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_sim", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._sim = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for noisy in ("httpx", "httpcore", "pgserver", "psycopg.pool", "hpack"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
