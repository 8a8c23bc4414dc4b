"""Settings are built once from the environment and reject what they do not know."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ConfigError
from sim.settings import Settings, mask_url


def test_defaults_carry_the_pool_fix_over() -> None:
    """Defaults: the pool sizes and timeouts that fixed the old service."""
    s = Settings.from_env({})
    assert (s.pool_min_size, s.pool_max_size) == (10, 30)
    assert (s.pool_timeout_s, s.pool_max_lifetime_s) == (30.0, 3600.0)
    assert s.database_url is None and s.data_dir == Path(".sim")


def test_values_are_parsed_from_the_environment() -> None:
    """SIM_* variables override the defaults with their types."""
    s = Settings.from_env(
        {"SIM_POOL_MIN_SIZE": "3", "SIM_BATCH_TIMEOUT_S": "2.5", "DATABASE_URL": "postgresql://x/y"}
    )
    assert s.pool_min_size == 3 and s.batch_timeout_s == 2.5
    assert s.database_url == "postgresql://x/y"


def test_settings_are_frozen() -> None:
    """The settings object cannot be changed after it is built."""
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.pool_min_size = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SIM_POOL_MIN_SIZ": "3"}, "SIM_POOL_MIN_SIZ"),
        ({"SIM_POOL_MIN_SIZE": "abc"}, "SIM_POOL_MIN_SIZE"),
        ({"SIM_POOL_MAX_SIZE": "0"}, "SIM_POOL_MAX_SIZE"),
        ({"SIM_BATCH_TIMEOUT_S": "soon"}, "SIM_BATCH_TIMEOUT_S"),
        ({"SIM_BATCH_TIMEOUT_S": "nan"}, "SIM_BATCH_TIMEOUT_S"),
        ({"SIM_LOG_FORMAT": "xml"}, "SIM_LOG_FORMAT"),
        ({"SIM_POOL_MIN_SIZE": "40"}, "SIM_POOL_MIN_SIZE"),
        ({"SIM_MAIN_APP_URL": "ftp://x"}, "SIM_MAIN_APP_URL"),
        ({"SIM_WEBHOOK_SECRET": "nope"}, "SIM_WEBHOOK_SECRET"),
    ],
)
def test_bad_settings_are_rejected_by_name(env: dict[str, str], named: str) -> None:
    """An unknown key or a bad value raises ConfigError naming the variable."""
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_describe_masks_secrets() -> None:
    """describe() never shows passwords, tokens or webhook secrets."""
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://sim:hunter2@db/sim",
            "SIM_API_TOKEN": "tok-123456",
            "SIM_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        }
    )
    text = repr(s.describe())
    assert "hunter2" not in text and "tok-123456" not in text and "MfKQ9r8" not in text
    assert mask_url("postgresql://u:p@h/d") == "postgresql://u:***@h/d"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"record_batch_size": 0}, "SIM_RECORD_BATCH_SIZE"),
        ({"pool_timeout_s": float("nan")}, "SIM_POOL_TIMEOUT_S"),
        ({"sink_error_rate": 1.5}, "SIM_SINK_ERROR_RATE"),
        ({"db_retry_attempts": 0}, "SIM_DB_RETRY_ATTEMPTS"),
        ({"log_format": "xml"}, "SIM_LOG_FORMAT"),
    ],
)
def test_bounds_hold_on_every_construction(changes: dict[str, object], named: str) -> None:
    """Settings(...) and replace() check the same bounds as the environment does."""
    with pytest.raises(ConfigError, match=named):
        Settings(**changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=named):
        Settings().replace(**changes)


def test_every_default_is_within_its_bounds() -> None:
    """The defaults themselves pass the checks (a bound can't silently exclude its default)."""
    assert Settings() == Settings.from_env({})
