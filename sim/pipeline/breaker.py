"""The main app's circuit breaker: stop hammering an endpoint that is down.

``closed``: every sender claims and delivers. After ``circuit_failure_threshold``
consecutive delivery requests failed with the endpoint down (connection error,
timeout, 5xx) the circuit opens: ``admit()`` blocks every sender, so nothing is
claimed and no row spends an attempt, except that one caller per
``circuit_probe_interval_s`` gets a probe pass (a one-row delivery; the state
reads ``half_open`` while it is out). The first request that gets an answer
other than a 5xx closes the circuit and delivery resumes at full speed.

The state is this process's own: with several instances each probes on its own,
so a down main app sees at most one probe per interval per instance (see README).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from sim.metrics import Metrics
from sim.settings import Settings

__all__ = ["FREE", "Breaker", "Pass"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pass:
    """What ``admit()`` hands out: a normal claim, or the probe of an open circuit."""

    probe: bool = False


#: the pass of a closed circuit
FREE = Pass()
_PROBE = Pass(probe=True)


class Breaker:
    """One per delivery endpoint. Senders: ``admit()`` before claiming, then ``report``."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.threshold = settings.circuit_failure_threshold
        self.interval_s = settings.circuit_probe_interval_s
        self.metrics = metrics
        self._clock = clock
        self.state = "closed"  # or "open"
        self.failures = 0  # consecutive, while closed
        self.probes = 0  # sent during the current opening
        self.opened_at: datetime | None = None
        self.last_error: str | None = None
        self._probe_at = 0.0  # trio time when the next probe may go
        self._probing = False
        self._changed = trio.Event()

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    async def admit(self) -> Pass:
        """Wait until a claim may be made: at once when closed, else for a probe pass."""
        while True:
            if self.state == "closed":
                return FREE
            now = self._clock()
            if now >= self._probe_at:
                # at most one probe per interval, even if an earlier one never reported
                self._probe_at = now + self.interval_s
                self._probing = True
                self._show("half_open")
                return _PROBE
            changed = self._changed
            with trio.move_on_after(self._probe_at - now):
                await changed.wait()

    def unused(self, ticket: Pass) -> None:
        """The pass claimed nothing: another caller may probe at once."""
        if ticket.probe and self.state == "open":
            self._probe_at = self._clock()
            self._probing = False
            self._show("open")
            self._wake()

    def report(self, ticket: Pass, *, down: bool, reason: str | None = None) -> None:
        """A delivery request of ``ticket`` ended: ``down`` = connection error, timeout, 5xx."""
        if ticket.probe:
            self.probes += 1
            self.metrics.circuit_probes.inc()
        if not down:
            self._close()
            return
        self.last_error = reason
        if self.state == "closed":
            self.failures += 1
            if self.failures >= self.threshold:
                self._open(reason)
        elif ticket.probe:
            self._probing = False
            self._show("open")
            log.debug("Probe of the main app failed (%s); next in %.1fs", reason, self.interval_s)

    def snapshot(self) -> dict[str, Any]:
        """The state for /readyz and the dashboard (timestamps ISO 8601 with offset)."""
        next_probe: str | None = None
        if self.state == "open":
            wait_s = max(0.0, self._probe_at - self._clock())
            next_probe = (datetime.now(UTC) + timedelta(seconds=wait_s)).isoformat()
        return {
            "state": "half_open" if self.state == "open" and self._probing else self.state,
            "consecutive_failures": self.failures,
            "failure_threshold": self.threshold,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "next_probe_at": next_probe,
            "probes": self.probes,
            "last_error": self.last_error,
        }

    # --- transitions ------------------------------------------------------------------
    def _open(self, reason: str | None) -> None:
        self.state = "open"
        self.opened_at = datetime.now(UTC)
        self.probes = 0
        self._probe_at = self._clock() + self.interval_s
        self.metrics.circuit_transitions.labels("open").inc()
        self._show("open")
        log.warning(
            "Circuit to the main app opened after %d consecutive failures (%s); "
            "delivery paused, one probe every %.1fs",
            self.failures,
            reason,
            self.interval_s,
        )
        self._wake()

    def _close(self) -> None:
        self.failures = 0
        if self.state == "closed":
            return
        opened_at = self.opened_at
        self.state = "closed"
        self._probing = False
        self.metrics.circuit_transitions.labels("closed").inc()
        self._show("closed")
        log.warning(
            "Circuit to the main app closed after %.1fs open and %d probes; delivery resumes",
            (datetime.now(UTC) - opened_at).total_seconds() if opened_at else 0.0,
            self.probes,
        )
        self.opened_at = None
        self._wake()

    def _show(self, state: str) -> None:
        for name in ("closed", "open", "half_open"):
            self.metrics.circuit_state.labels(name).set(1 if name == state else 0)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
