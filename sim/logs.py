"""Logging set-up: readable text by default, one JSON object per line on request.

Both formats carry the same fields: time, level, logger, message, and any
``extra=`` fields of the record (text appends them as ``key=value``).
hypercorn's own loggers are routed through the same handler, so with
``SIM_LOG_FORMAT=json`` every line is JSON, however sim is served.

Secrets never reach the output: known secret values (the API token, webhook
secrets, the database password) are registered with ``redact`` and replaced by
``***`` in every formatted record.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from sim.settings import Settings

__all__ = ["JsonFormatter", "RedactingFilter", "TextFormatter", "configure_logging", "redact"]

_SECRETS: set[str] = set()
_STD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_HYPERCORN_LOGGERS = ("hypercorn.error", "hypercorn.access")


def redact(*values: str | None) -> None:
    """Register values (tokens, secrets, passwords) that must never be logged."""
    for value in values:
        if value and len(value) >= 4:
            _SECRETS.add(value)


def _scrub(text: str) -> str:
    # longest first, so that a secret containing another is replaced whole
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STD_ATTRS and not key.startswith("_")
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, type(None))):
        return value
    return _scrub(str(value))


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
            "message": _scrub(record.getMessage()),
        }
        for key, value in _extras(record).items():
            doc.setdefault(key, _plain(value))
        if record.exc_info:
            doc["exc_info"] = _scrub(self.formatException(record.exc_info))
        if record.stack_info:
            doc["stack_info"] = _scrub(self.formatStack(record.stack_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2025-01-01T12:00:00.000Z INFO    logger: message key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return (
            datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        )

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={_plain(v)}" for k, v in extras.items())
        return line

    def format(self, record: logging.LogRecord) -> str:
        return _scrub(super().format(record))


def _register_secrets(settings: Settings) -> None:
    redact(settings.api_token, settings.llm_api_key, *settings.webhook_secrets)
    for secret in settings.webhook_secrets:  # the key part, in case it is logged alone
        redact(secret.removeprefix("whsec_"))
    if settings.database_url:
        try:
            password = urlsplit(settings.database_url).password
        except ValueError:
            password = None
        redact(password, unquote(password) if password else None)


class _ToSimHandler(logging.Filter):
    """On hypercorn's loggers: hand each record to sim's handler, and stop it there.

    A logger's filters outlive hypercorn's handler set-up (which replaces the
    handlers when it creates its loggers, possibly after sim configured logging),
    so hypercorn's lines come out once, in sim's format, secrets masked.
    """

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.handler.level:
            self.handler.handle(record)
        return False


def _route_hypercorn(handler: logging.Handler) -> None:
    for name in _HYPERCORN_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, _ToSimHandler)]:
            logger.removeFilter(old)
        logger.addFilter(_ToSimHandler(handler))


def configure_logging(settings: Settings, stream: Any = None) -> None:
    """Install sim's handler on the root logger (idempotent)."""
    _register_secrets(settings)
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
    _route_hypercorn(handler)
    for noisy in ("httpx", "httpcore", "pgserver", "psycopg.pool", "hpack"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
