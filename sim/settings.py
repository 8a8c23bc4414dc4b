"""sim's settings: one frozen object, built from the environment in one place.

Every field maps to ``SIM_<FIELD>`` (``DATABASE_URL`` is the one exception).
An unknown ``SIM_*`` variable or a value that does not parse or is out of
range raises ``ConfigError`` with one line naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sim.errors import ConfigError

__all__ = ["Settings", "mask_url"]

_PREFIX = "SIM_"


def _opt(
    default: Any, *, lo: float | None = None, hi: float | None = None, choices: tuple[str, ...] = ()
) -> Any:
    return field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything sim can be configured with. Units are in the names."""

    # --- database -----------------------------------------------------------
    database_url: str | None = None  # from DATABASE_URL; unset → embedded PostgreSQL
    data_dir: Path = Path(".sim")
    pool_min_size: int = _opt(10, lo=1, hi=500)
    pool_max_size: int = _opt(30, lo=1, hi=500)
    pool_timeout_s: float = _opt(30.0, lo=0.1, hi=600)
    pool_max_lifetime_s: float = _opt(3600.0, lo=10, hi=86400)
    pool_max_idle_s: float = _opt(600.0, lo=1, hi=86400)
    pool_max_waiting: int = _opt(200, lo=0, hi=100_000)
    pool_open_timeout_s: float = _opt(30.0, lo=0.1, hi=600)
    db_close_timeout_s: float = _opt(5.0, lo=0.1, hi=120)
    readyz_timeout_s: float = _opt(2.0, lo=0.1, hi=60)

    # --- delivery to the main app --------------------------------------------
    main_app_url: str | None = None  # unset → the bundled sink at /sink
    public_url: str = "http://127.0.0.1:8000"  # how sim reaches itself (bundled sink)
    webhook_secret: str | None = None  # one or more whsec_... separated by spaces
    # batch size and concurrencies: measured in BENCHMARKS.md ("Defaults, and why")
    send_batch_size: int = _opt(1000, lo=1, hi=5000)  # per claim and per request
    send_concurrency: int = _opt(2, lo=1, hi=256)  # claim/deliver workers per user
    http_concurrency: int = _opt(8, lo=1, hi=1024)  # claimed batches in flight, all users
    request_timeout_s: float = _opt(10.0, lo=0.05, hi=600)
    max_attempts: int = _opt(10, lo=1, hi=1000)
    backoff_base_s: float = _opt(0.5, lo=0.0, hi=3600)
    backoff_max_s: float = _opt(300.0, lo=0.0, hi=86400)
    lease_s: float = _opt(60.0, lo=1, hi=86400)
    idle_poll_s: float = _opt(0.5, lo=0.01, hi=60)

    # --- recording delivery results -------------------------------------------
    record_batch_size: int = _opt(2500, lo=1, hi=50_000)
    record_concurrency: int = _opt(2, lo=1, hi=64)
    record_flush_interval_s: float = _opt(0.05, lo=0.001, hi=60)
    batch_timeout_s: float = _opt(10.0, lo=0.05, hi=600)
    record_max_retries: int = _opt(5, lo=0, hi=1000)
    record_backlog: int = _opt(20_000, lo=1, hi=10_000_000)

    # --- generation -------------------------------------------------------------
    store_batch_size: int = _opt(500, lo=1, hi=50_000)
    store_queue_batches: int = _opt(4, lo=1, hi=1000)  # generated, not yet stored: all users
    max_rows_per_user: int = _opt(50_000, lo=1, hi=100_000_000)
    restart_backoff_s: float = _opt(1.0, lo=0.0, hi=3600)
    restart_backoff_max_s: float = _opt(60.0, lo=0.0, hi=86400)

    # --- API ----------------------------------------------------------------------
    api_token: str | None = None
    max_body_bytes: int = _opt(65_536, lo=256, hi=100_000_000)
    page_size_max: int = _opt(500, lo=1, hi=500)

    # --- the bundled sink -----------------------------------------------------------
    sink_error_rate: float = _opt(0.0, lo=0.0, hi=1.0)
    sink_hang_rate: float = _opt(0.0, lo=0.0, hi=1.0)
    sink_latency_s: float = _opt(0.0, lo=0.0, hi=600)
    sink_retry_after_s: float = _opt(1.0, lo=0.0, hi=3600)
    sink_hang_s: float = _opt(3600.0, lo=0.0, hi=86400)

    # --- LLM content (optional): any OpenAI-compatible Chat Completions endpoint -------------
    llm_base_url: str | None = None  # e.g. https://api.openai.com/v1; unset → offline content
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str | None = None
    llm_videos_per_call: int = _opt(8, lo=1, hi=100)  # a call writes videos and comments
    llm_comments_per_call: int = _opt(24, lo=1, hi=500)
    llm_threads_per_call: int = _opt(6, lo=1, hi=100)  # DM threads get their own calls
    llm_concurrency: int = _opt(4, lo=1, hi=64)  # calls in flight, all users together
    llm_timeout_s: float = _opt(60.0, lo=0.1, hi=600)  # per call (each attempt)
    llm_max_retries: int = _opt(3, lo=0, hi=20)

    # --- logging ------------------------------------------------------------------------
    log_level: str = _opt("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = _opt("text", choices=("text", "json"))

    def __post_init__(self) -> None:
        if self.pool_min_size > self.pool_max_size:
            raise ConfigError(
                f"SIM_POOL_MIN_SIZE ({self.pool_min_size}) must not exceed "
                f"SIM_POOL_MAX_SIZE ({self.pool_max_size})"
            )
        for name in ("main_app_url", "public_url", "llm_base_url"):
            url = getattr(self, name)
            if url is not None and urlsplit(url).scheme not in ("http", "https"):
                raise ConfigError(
                    f"SIM_{name.upper()}: expected an http(s) URL, got {mask_url(url)!r}"
                )
        for secret in self.webhook_secrets:
            if not secret.startswith("whsec_"):
                raise ConfigError("SIM_WEBHOOK_SECRET: each secret must start with 'whsec_'")

    # --- derived --------------------------------------------------------------------------
    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """Secrets for signing (the first) and verifying (any), for rotation."""
        return tuple((self.webhook_secret or "").split())

    @property
    def delivery_url(self) -> str:
        """Where interactions are POSTed: the main app, or the bundled sink."""
        if self.main_app_url:
            return self.main_app_url
        return self.public_url.rstrip("/") + "/sink/interactions"

    def __repr__(self) -> str:
        """Like the generated repr, with secrets and passwords masked (see ``describe``)."""
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in self.describe().items())})"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """The settings as a dict safe to log: secrets and passwords masked."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("api_token", "webhook_secret", "llm_api_key") and value:
                value = "***"
            elif f.name in ("database_url", "main_app_url", "llm_base_url") and value:
                value = mask_url(value)
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from ``environ`` (default ``os.environ``)."""
        env = os.environ if environ is None else environ
        fields = {f.name: f for f in dataclasses.fields(cls)}
        known = {_PREFIX + name.upper(): name for name in fields if name != "database_url"}
        values: dict[str, Any] = {}
        unknown = sorted(k for k in env if k.startswith(_PREFIX) and k not in known)
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]}"
                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
                + "; see README 'Configuration'"
            )
        if env.get("DATABASE_URL"):
            values["database_url"] = env["DATABASE_URL"]
        for key, name in known.items():
            if key in env:
                values[name] = _parse(key, env[key], fields[name])
        return cls(**values)


def _parse(key: str, raw: str, f: dataclasses.Field[Any]) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    meta = f.metadata
    text = raw.strip()
    value: Any
    if kind == "int":
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ConfigError(f"{key}: expected an integer, got {raw!r}")
        value = int(text)
    elif kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{key}: expected a finite number, got {raw!r}")
    elif kind == "Path":
        if not text:
            raise ConfigError(f"{key}: expected a path, got an empty value")
        value = Path(text)
    else:  # str or str | None
        value = text or None if "None" in kind else text
        if meta.get("choices"):
            value = text.upper() if key == "SIM_LOG_LEVEL" else text.lower()
            if value not in meta["choices"]:
                raise ConfigError(
                    f"{key}: expected one of {', '.join(meta['choices'])}, got {raw!r}"
                )
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and value < lo:
        raise ConfigError(f"{key}: must be at least {lo}, got {raw!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: must be at most {hi}, got {raw!r}")
    return value


#: ``password=...`` in a URL's query or a key=value DSN (quoted or not)
_PASSWORD_PARAM = re.compile(r"""(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)""", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` (or a key=value DSN) with any password replaced by ``***``."""
    url = _PASSWORD_PARAM.sub(r"\1***", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
