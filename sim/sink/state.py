"""What the sink keeps besides its store: settings, knobs, signature checks, counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from quart import current_app

from sim.db import Database
from sim.settings import Settings
from sim.sink.faults import Faults, FaultsHolder
from sim.sink.signatures import Verifier

__all__ = ["MAX_TRACKED_USERS", "SinkCounters", "SinkState", "sink_state"]

EXTENSION = "sim_sink"
#: per-user counters kept at most for this many users (the rest count only in the totals)
MAX_TRACKED_USERS = 100_000


@dataclass
class SinkCounters:
    """The in-memory counters (the store keeps ``received`` / ``unique``)."""

    requests: int = 0
    rejected: int = 0
    orphan_comments: int = 0


@dataclass
class SinkState:
    """Everything the sink keeps besides the store, and how it reaches the store."""

    settings: Settings
    faults: FaultsHolder
    verifier: Verifier
    #: the database of the app the sink is mounted in (available while it serves)
    database: Callable[[], Database]
    totals: SinkCounters = field(default_factory=SinkCounters)
    users: dict[str, SinkCounters] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, database: Callable[[], Database]) -> SinkState:
        faults = FaultsHolder(Faults.from_settings(settings))
        return cls(settings, faults, Verifier(settings.webhook_secrets), database)

    @property
    def db(self) -> Database:
        return self.database()

    def user(self, user_id: str) -> SinkCounters:
        if user_id not in self.users and len(self.users) >= MAX_TRACKED_USERS:
            return SinkCounters()  # counted nowhere but in the totals
        return self.users.setdefault(user_id, SinkCounters())

    def reset_counters(self) -> None:
        self.totals = SinkCounters()
        self.users.clear()


def sink_state() -> SinkState:
    """The ``SinkState`` of the current app."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]
