"""sim's settings: one frozen object, built from the environment in one place.

Every field maps to ``SIM_<FIELD>`` (``DATABASE_URL`` is the one exception).
An unknown ``SIM_*`` variable or a value that does not parse or is out of
range raises ``ConfigError`` with one line naming the variable. Bounds are
checked on every construction (``Settings(...)``, ``replace()``, ``from_env()``),
from the ``_opt`` metadata of each field.
"""

from __future__ import annotations

import dataclasses
import math
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
    # server-side bounds on sim's own sessions: no statement, lock wait or idle open
    # transaction holds a pooled connection for longer (migrations are exempt)
    db_statement_timeout_s: float = _opt(60.0, lo=0.1, hi=86400)
    db_lock_timeout_s: float = _opt(10.0, lo=0.1, hi=86400)
    db_idle_in_transaction_timeout_s: float = _opt(60.0, lo=0.1, hi=86400)

    # --- delivery to the main app --------------------------------------------
    main_app_url: str | None = None  # unset → the bundled sink at /sink
    public_url: str = "http://127.0.0.1:8000"  # how sim reaches itself (bundled sink)
    webhook_secret: str | None = None  # one or more whsec_... separated by spaces
    # batch size and concurrencies: measured in BENCHMARKS.md ("Defaults, and why")
    send_batch_size: int = _opt(1000, lo=1, hi=5000)  # per claim and per request
    send_concurrency: int = _opt(2, lo=1, hi=256)  # claim/deliver workers per instance
    http_concurrency: int = _opt(8, lo=1, hi=1024)  # claimed batches in flight, all users
    request_timeout_s: float = _opt(10.0, lo=0.05, hi=600)
    max_attempts: int = _opt(10, lo=1, hi=1000)
    backoff_base_s: float = _opt(0.5, lo=0.0, hi=3600)
    backoff_max_s: float = _opt(300.0, lo=0.0, hi=86400)
    lease_s: float = _opt(60.0, lo=1, hi=86400)
    idle_poll_s: float = _opt(0.5, lo=0.01, hi=60)
    # retry policy and circuit breaker: README "Retries, the circuit breaker and replay"
    retry_max_age_s: float = _opt(432_000.0, lo=1, hi=90 * 86400)  # 5 days, like Svix
    circuit_failure_threshold: int = _opt(10, lo=1, hi=100_000)  # consecutive, like Convoy
    circuit_probe_interval_s: float = _opt(10.0, lo=0.01, hi=3600)
    # the attempt log: one row per delivery request, bounded by count and age
    attempt_log_max_rows: int = _opt(100_000, lo=0, hi=100_000_000)  # 0: no attempt log
    attempt_log_max_age_s: float = _opt(604_800.0, lo=60, hi=365 * 86400)

    # --- recording delivery results -------------------------------------------
    record_batch_size: int = _opt(2500, lo=1, hi=50_000)
    record_concurrency: int = _opt(2, lo=1, hi=64)
    record_flush_interval_s: float = _opt(0.05, lo=0.001, hi=3600)
    batch_timeout_s: float = _opt(10.0, lo=0.05, hi=600)
    record_max_retries: int = _opt(5, lo=0, hi=1000)
    record_backlog: int = _opt(20_000, lo=1, hi=10_000_000)

    # --- retrying database work (claims, stores of generated rows, status updates) ------
    db_retry_base_s: float = _opt(0.05, lo=0.0, hi=60)  # first backoff; doubles, half jitter
    db_retry_max_s: float = _opt(2.0, lo=0.0, hi=600)  # backoff cap
    db_retry_attempts: int = _opt(5, lo=1, hi=1000)  # tries of one store before it fails

    # --- generation -------------------------------------------------------------
    store_batch_size: int = _opt(500, lo=1, hi=50_000)
    store_queue_batches: int = _opt(4, lo=1, hi=1000)  # generated, not yet stored: all users
    store_group_max_rows: int = _opt(5000, lo=1, hi=100_000)  # one store transaction, all users
    max_rows_per_user: int = _opt(50_000, lo=1, hi=100_000_000)
    restart_backoff_s: float = _opt(1.0, lo=0.0, hi=3600)
    restart_backoff_max_s: float = _opt(60.0, lo=0.0, hi=86400)
    # allocations between young-generation garbage collections (Python's default: 700)
    gc_gen0_threshold: int = _opt(10_000, lo=100, hi=10_000_000)
    # glibc allocations from this size are mmapped and unmapped when freed (0: glibc's own)
    malloc_mmap_threshold_bytes: int = _opt(131_072, lo=0, hi=33_554_432)

    # --- the fleet: several instances on one database ------------------------------
    owner_lease_s: float = _opt(6.0, lo=0.5, hi=3600)  # an instance's lease, and its users'
    heartbeat_s: float = _opt(2.0, lo=0.1, hi=1200)  # registry heartbeat and lease renewal
    notify_debounce_s: float = _opt(0.1, lo=0.0, hi=10)  # LISTEN wake-ups coalesced per channel

    # --- API ----------------------------------------------------------------------
    api_token: str | None = None
    max_body_bytes: int = _opt(65_536, lo=256, hi=100_000_000)
    page_size_max: int = _opt(500, lo=1, hi=500)
    dashboard_stream_max_s: float = _opt(30.0, lo=0.1, hi=600)  # one SSE stream, then reconnect

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
    llm_videos_per_call: int = _opt(8, lo=1, hi=100)  # a call: these videos, their comments
    llm_comments_per_call: int = _opt(24, lo=1, hi=500)  # more: the group's next call
    llm_threads_per_call: int = _opt(6, lo=1, hi=100)  # DM threads get their own calls
    llm_concurrency: int = _opt(4, lo=1, hi=64)  # calls in flight, all users together
    llm_timeout_s: float = _opt(60.0, lo=0.1, hi=600)  # per call (each attempt)
    llm_max_retries: int = _opt(3, lo=0, hi=20)

    # --- logging ------------------------------------------------------------------------
    log_level: str = _opt("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = _opt("text", choices=("text", "json"))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_bounds(f, getattr(self, f.name))
        if self.pool_min_size > self.pool_max_size:
            raise ConfigError(
                f"SIM_POOL_MIN_SIZE ({self.pool_min_size}) must not exceed "
                f"SIM_POOL_MAX_SIZE ({self.pool_max_size})"
            )
        if self.heartbeat_s * 2 > self.owner_lease_s:
            raise ConfigError(
                f"SIM_HEARTBEAT_S ({self.heartbeat_s}) must be at most half of "
                f"SIM_OWNER_LEASE_S ({self.owner_lease_s}): a lease must outlive a missed beat"
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
        """A copy with some fields changed (validated again, by ``__post_init__``)."""
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
    return value


def _check_bounds(f: dataclasses.Field[Any], value: Any) -> None:
    """``ConfigError`` naming ``SIM_<FIELD>`` if ``value`` is outside the field's ``_opt``."""
    meta = f.metadata
    key = _PREFIX + f.name.upper()
    choices, lo, hi = meta.get("choices"), meta.get("lo"), meta.get("hi")
    if choices and value not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(f"{key}: must be at least {lo:g}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: must be at most {hi:g}, got {value!r}")


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
