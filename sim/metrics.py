"""Prometheus metrics: one registry per running sim, bounded label values only.

Names follow Prometheus conventions: the ``sim_`` prefix, ``_total`` on counters,
``_seconds`` on durations. Labels are ``kind``, ``status``, ``outcome`` and
``state``, each with a handful of values; never user ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import trio
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_ROW_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

KINDS = ("video", "comment", "dm")
STATUSES = ("pending", "sending", "sent", "failed")
STATES = ("initializing", "live", "disabled", "failed")
OUTCOMES = ("ok", "retry", "failed")
CIRCUIT_STATES = ("closed", "open", "half_open")


class Metrics:
    """Everything sim counts. Labels: kind, status, outcome, state (never user ids)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # --- interactions and users (refreshed from PostgreSQL at scrape time) ---------
        self.interactions = Gauge(
            "sim_interactions",
            "Interactions in the outbox by kind and status",
            ["kind", "status"],
            registry=r,
        )
        self.users = Gauge("sim_demo_users", "Demo users by state", ["state"], registry=r)
        # --- generation -------------------------------------------------------------------
        self.generated = Counter(
            "sim_generated_interactions_total",
            "Interactions generated and stored (rate() of it is the generator rate)",
            ["kind"],
            registry=r,
        )
        self.live_rate = Gauge(
            "sim_generator_live_rate_per_second",
            "Configured live generation rate summed over running simulations",
            registry=r,
        )
        self.user_restarts = Counter(
            "sim_user_simulation_restarts_total",
            "User simulations restarted after an error",
            registry=r,
        )
        # --- delivery -----------------------------------------------------------------------
        self.deliveries = Counter(
            "sim_deliveries_total",
            "Delivery requests by outcome (ok, retry, failed)",
            ["outcome"],
            registry=r,
        )
        self.delivered_items = Counter(
            "sim_delivery_items_total",
            "Interactions in delivery requests by outcome",
            ["outcome"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "sim_delivery_duration_seconds",
            "Delivery request latency by outcome",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # --- the main app's circuit breaker and the attempt log ---------------------------------
        self.circuit_state = Gauge(
            "sim_circuit_state",
            "The main-app circuit breaker: 1 for its current state (closed, open, half_open)",
            ["state"],
            registry=r,
        )
        self.circuit_transitions = Counter(
            "sim_circuit_transitions_total",
            "Circuit-breaker state changes, by the state entered (open, closed)",
            ["state"],
            registry=r,
        )
        self.circuit_probes = Counter(
            "sim_circuit_probes_total", "Probe requests sent while the circuit was open", registry=r
        )
        self.attempts_logged = Counter(
            "sim_attempt_log_rows_total", "Delivery attempts written to the attempt log", registry=r
        )
        self.attempts_dropped = Counter(
            "sim_attempt_log_dropped_total",
            "Delivery attempts not logged (backlog full or the write failed)",
            registry=r,
        )
        # --- recording ------------------------------------------------------------------------
        self.record_batches = Counter(
            "sim_recorder_batches_total", "Status-update batches written", registry=r
        )
        self.record_rows = Histogram(
            "sim_recorder_batch_rows",
            "Rows per status-update batch",
            buckets=_ROW_BUCKETS,
            registry=r,
        )
        self.record_seconds = Histogram(
            "sim_recorder_batch_duration_seconds",
            "Status-update batch latency",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.record_failures = Counter(
            "sim_recorder_failures_total", "Status-update batch attempts that failed", registry=r
        )
        self.record_retries = Counter(
            "sim_recorder_retries_total", "Status-update batch retries", registry=r
        )
        self.record_dropped = Counter(
            "sim_recorder_abandoned_batches_total",
            "Batches given up on (their rows come back when the lease expires)",
            registry=r,
        )
        # --- the connection pool (refreshed at scrape time) ------------------------------------
        self.pool_size = Gauge(
            "sim_db_pool_connections", "Connections the pool holds (busy and idle)", registry=r
        )
        self.pool_idle = Gauge(
            "sim_db_pool_idle_connections", "Idle connections ready in the pool", registry=r
        )
        self.pool_max = Gauge(
            "sim_db_pool_max_connections", "Most connections the pool may open", registry=r
        )
        self.pool_waiting = Gauge(
            "sim_db_pool_waiting_requests",
            "Requests waiting for a connection from the pool",
            registry=r,
        )
        self.pool_errors = Counter(
            "sim_db_pool_connection_errors_total",
            "Connection errors (failed connection attempts and connections lost mid-operation)",
            registry=r,
        )
        self._pool_errors_seen = 0
        # --- the fleet (refreshed at each heartbeat) ------------------------------------------
        self.instances = Gauge(
            "sim_instances", "Live sim instances on this database (this one included)", registry=r
        )
        self.owned_users = Gauge(
            "sim_owned_users", "Demo users whose simulation this instance owns", registry=r
        )
        self.tasks = Gauge("sim_trio_tasks", "Trio tasks alive in the process", registry=r)
        # --- LLM content (outcome: ok, retry, failed; fallback reason: bounded set) -----------
        self.llm_calls = Counter(
            "sim_llm_calls_total", "LLM Chat Completions calls by outcome", ["outcome"], registry=r
        )
        self.llm_tokens = Counter(
            "sim_llm_tokens_total",
            "LLM tokens used by kind (prompt, completion)",
            ["kind"],
            registry=r,
        )
        self.llm_seconds = Histogram(
            "sim_llm_call_duration_seconds",
            "LLM call latency (one attempt) by outcome",
            ["outcome"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
            registry=r,
        )
        self.llm_fallbacks = Counter(
            "sim_llm_fallbacks_total",
            "LLM batches (or live items) written offline instead, by kind",
            ["kind"],
            registry=r,
        )
        # every bounded label value exists from the start, so a rate() sees the first event
        for kind in KINDS:
            self.generated.labels(kind)
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)
            self.delivered_items.labels(outcome)
            self.delivery_seconds.labels(outcome)
        for state in STATES:
            self.users.labels(state)
        for state in CIRCUIT_STATES:
            self.circuit_state.labels(state).set(1 if state == "closed" else 0)
        for state in ("closed", "open"):
            self.circuit_transitions.labels(state)

    def observe_pool(self, stats: Mapping[str, int]) -> None:
        """Refresh the pool metrics from ``Database.stats()`` (psycopg_pool's counters)."""
        self.pool_size.set(stats.get("pool_size", 0))
        self.pool_idle.set(stats.get("pool_available", 0))
        self.pool_max.set(stats.get("pool_max", 0))
        self.pool_waiting.set(stats.get("requests_waiting", 0))
        errors = stats.get("connections_errors", 0) + stats.get("connection_errors_mapped", 0)
        if errors > self._pool_errors_seen:
            self.pool_errors.inc(errors - self._pool_errors_seen)
        self._pool_errors_seen = errors

    def observe_totals(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Refresh interactions by kind/status and users by state from ``status_totals``."""
        self.interactions.clear()
        self.users.clear()
        for kind in KINDS:
            for status in STATUSES:
                self.interactions.labels(kind, status).set(0)
        for state in STATES:
            self.users.labels(state).set(0)
        for r in rows:
            n = r["n"]
            assert isinstance(n, int)
            if "state" in r:
                self.users.labels(str(r["state"])).set(n)
            else:
                self.interactions.labels(str(r["kind"]), str(r["status"])).set(n)

    def observe_tasks(self) -> None:
        """Count the process's Trio tasks (a leak shows as growth at a steady load)."""
        self.tasks.set(count_trio_tasks())

    def render(self) -> bytes:
        return generate_latest(self.registry)


def count_trio_tasks() -> int:
    """Every task below the run's root task (call from inside ``trio.run``)."""
    count, todo = 0, [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        if task is None:
            continue
        count += 1
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return count
