"""Prometheus metrics: one registry per running sim, bounded label values only."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_ROW_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class Metrics:
    """Everything sim counts. Labels: kind, status, outcome, state (never user ids)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.interactions = Gauge(
            "sim_interactions",
            "Interactions in the outbox by kind and status",
            ["kind", "status"],
            registry=r,
        )
        self.users = Gauge("sim_demo_users", "Demo users by state", ["state"], registry=r)
        self.generated = Counter(
            "sim_generated_interactions_total",
            "Interactions generated and stored",
            ["kind"],
            registry=r,
        )
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
            "Delivery request latency",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
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
        self.pool = Gauge(
            "sim_db_pool_connections",
            "Pool connections (size, available, waiting requests)",
            ["kind"],
            registry=r,
        )
        self.pool_errors = Gauge(
            "sim_db_pool_connection_errors", "Connection errors seen by the pool", registry=r
        )
        self.user_restarts = Counter(
            "sim_user_simulation_restarts_total",
            "User simulations restarted after an error",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
