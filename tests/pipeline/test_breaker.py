"""The circuit breaker: opens on consecutive failures, one probe per interval, closes on success."""

from __future__ import annotations

import trio
import trio.testing

from sim.metrics import Metrics
from sim.pipeline.breaker import FREE, Breaker
from sim.settings import Settings


def breaker(threshold: int = 3, interval_s: float = 10.0) -> tuple[Breaker, Metrics]:
    metrics = Metrics()
    settings = Settings(circuit_failure_threshold=threshold, circuit_probe_interval_s=interval_s)
    return Breaker(settings, metrics), metrics


def value(metrics: Metrics, name: str, **labels: str) -> float:
    got = metrics.registry.get_sample_value(name, labels)
    return got if got is not None else 0.0


async def test_opens_after_threshold_consecutive_failures() -> None:
    """Two failures, a success, three failures: only the last run opens the circuit."""
    b, metrics = breaker(threshold=3)
    for _ in range(2):
        b.report(FREE, down=True, reason="ConnectError")
    b.report(FREE, down=False)
    assert b.state == "closed" and b.failures == 0
    for _ in range(3):
        b.report(FREE, down=True, reason="HTTP 503")
    assert b.is_open
    assert value(metrics, "sim_circuit_state", state="open") == 1
    assert value(metrics, "sim_circuit_transitions_total", state="open") == 1
    assert b.snapshot()["last_error"] == "HTTP 503"


async def test_closed_admits_at_once() -> None:
    """A closed circuit hands out normal passes without waiting."""
    b, _ = breaker()
    with trio.fail_after(0.1):
        assert (await b.admit()).probe is False


async def test_one_probe_per_interval_while_open(autojump_clock: trio.testing.MockClock) -> None:
    """While open, callers wait; exactly one probe goes out per interval."""
    b, metrics = breaker(threshold=1, interval_s=10.0)
    b.report(FREE, down=True, reason="refused")
    probes: list[float] = []

    async def caller() -> None:
        while True:
            ticket = await b.admit()
            assert ticket.probe
            probes.append(trio.current_time())
            b.report(ticket, down=True, reason="still refused")

    start = trio.current_time()
    with trio.move_on_after(45):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(caller)
    gaps = [round(t - start) for t in probes]
    assert gaps == [10, 20, 30, 40]
    assert value(metrics, "sim_circuit_probes_total") == 4
    assert b.is_open


async def test_probe_success_closes_and_releases_waiters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The first success closes the circuit; every waiting caller proceeds normally."""
    b, metrics = breaker(threshold=1, interval_s=5.0)
    b.report(FREE, down=True, reason="refused")
    admitted: list[bool] = []

    async def caller() -> None:
        ticket = await b.admit()
        admitted.append(ticket.probe)
        if ticket.probe:
            b.report(ticket, down=False)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(caller)
    assert sorted(admitted) == [False, False, False, True]
    assert b.state == "closed"
    assert value(metrics, "sim_circuit_transitions_total", state="closed") == 1
    assert value(metrics, "sim_circuit_state", state="closed") == 1


async def test_unused_probe_lets_another_probe_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A probe pass that claimed nothing is handed to the next caller without waiting."""
    b, _ = breaker(threshold=1, interval_s=10.0)
    b.report(FREE, down=True, reason="refused")
    first = await b.admit()
    assert b.snapshot()["state"] == "half_open"
    b.unused(first)
    before = trio.current_time()
    second = await b.admit()
    assert second.probe and trio.current_time() == before


async def test_failures_of_requests_in_flight_do_not_reschedule_the_probe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Failures of normal passes while open change nothing: the probe still comes on time."""
    b, metrics = breaker(threshold=1, interval_s=10.0)
    start = trio.current_time()
    b.report(FREE, down=True, reason="refused")
    await trio.sleep(5)
    b.report(FREE, down=True, reason="late failure")
    ticket = await b.admit()
    assert ticket.probe and trio.current_time() - start == 10
    assert value(metrics, "sim_circuit_probes_total") == 0  # counted once it reports
    b.report(ticket, down=True, reason="still down")
    assert value(metrics, "sim_circuit_probes_total") == 1 and b.snapshot()["probes"] == 1
