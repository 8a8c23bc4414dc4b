"""sim: demo mode for a social-media SaaS, on Trio and PostgreSQL."""

from sim.errors import (
    ConfigError,
    DatabaseError,
    DatabaseUnavailable,
    InvalidInput,
    NotFound,
    PoolExhausted,
    QueryTimeout,
    SimError,
)
from sim.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DatabaseError",
    "DatabaseUnavailable",
    "InvalidInput",
    "NotFound",
    "PoolExhausted",
    "QueryTimeout",
    "Settings",
    "SimError",
    "__version__",
]
