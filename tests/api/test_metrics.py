"""``/metrics``: Prometheus names and labels, and numbers that follow a real demo run."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import trio
from conftest import free_port, served
from prometheus_client.parser import text_string_to_metric_families

from sim.app import create_app
from sim.metrics import CIRCUIT_STATES, KINDS, OUTCOMES, STATES, STATUSES, Metrics
from sim.settings import Settings

USER = "metrics-user-4711"
PLAN = {"videos": 5, "comments": 150, "dms": 145, "live_per_minute": 30, "seed": 11}
TOTAL = 300
BOUNDED = {
    "kind": set(KINDS),
    "status": set(STATUSES),
    "outcome": set(OUTCOMES),
    "state": set(STATES) | set(CIRCUIT_STATES),
}


def _parse(text: str) -> tuple[dict[str, str], dict[tuple[str, frozenset[Any]], float]]:
    """(family name → type, (sample name, labels) → value)."""
    types, samples = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return types, samples


def _value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _total(samples: dict[tuple[str, frozenset[Any]], float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def _scrape(http: httpx.AsyncClient) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_names_and_labels_follow_prometheus_conventions() -> None:
    """sim_ prefix, _total counters, _seconds durations, and only bounded label names."""
    types, samples = _parse(Metrics().render().decode())
    assert types, "no metrics registered"
    for name, kind in types.items():
        assert name.startswith("sim_"), name
        if kind == "histogram" and ("duration" in name or "latency" in name):
            assert name.endswith("_seconds"), name
    for (name, labels), _ in samples.items():
        if types.get(name.removesuffix("_total")) == "counter":
            assert name.endswith(("_total", "_created")), name
        for label, value in labels:
            if label == "le":
                continue
            assert label in BOUNDED, f"{name} has an unexpected label {label}"
            assert value in BOUNDED[label], f"{name}{{{label}={value!r}}}"
    expected = {
        "sim_interactions",
        "sim_demo_users",
        "sim_deliveries",
        "sim_delivery_duration_seconds",
        "sim_recorder_batches",
        "sim_recorder_batch_rows",
        "sim_recorder_batch_duration_seconds",
        "sim_recorder_failures",
        "sim_recorder_retries",
        "sim_db_pool_connections",
        "sim_db_pool_idle_connections",
        "sim_db_pool_waiting_requests",
        "sim_db_pool_connection_errors",
        "sim_generated_interactions",
        "sim_generator_live_rate_per_second",
    }
    assert expected <= set(types), expected - set(types)


def test_pool_connection_errors_count_up_only() -> None:
    """Pool error counts become a counter that only grows, across a pool's counter reset."""
    m = Metrics()

    def errors() -> float:
        _, samples = _parse(m.render().decode())
        return _value(samples, "sim_db_pool_connection_errors_total")

    m.observe_pool({"connections_errors": 3})
    assert errors() == 3
    m.observe_pool({"connections_errors": 4, "connection_errors_mapped": 1})
    assert errors() == 5
    m.observe_pool({"connections_errors": 1})  # a new pool started counting again
    assert errors() == 5
    m.observe_pool({"connections_errors": 2})
    assert errors() == 6


def test_pool_stats_become_gauges() -> None:
    """Each pool gauge shows its own psycopg_pool figure, refreshed on every observation."""
    m = Metrics()
    for size, idle, waiting in ((4, 3, 0), (6, 0, 7)):
        m.observe_pool(
            {"pool_size": size, "pool_available": idle, "requests_waiting": waiting, "pool_max": 9}
        )
        _, samples = _parse(m.render().decode())
        assert _value(samples, "sim_db_pool_connections") == size
        assert _value(samples, "sim_db_pool_idle_connections") == idle
        assert _value(samples, "sim_db_pool_waiting_requests") == waiting
        assert _value(samples, "sim_db_pool_max_connections") == 9


async def test_metrics_follow_a_demo_run_with_retries(settings: Settings) -> None:
    """After a run against a flaky sink every metric family has the numbers of that run."""
    port = free_port()
    app = create_app(
        settings.replace(
            public_url=f"http://127.0.0.1:{port}",
            send_batch_size=10,
            sink_error_rate=0.5,
            sink_retry_after_s=0.0,
            max_attempts=100,
        ),
        configure_logs=False,
    )
    with trio.fail_after(120):
        async with served(app, port) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            assert (await http.put(f"/v1/users/{USER}/demo", json=PLAN)).status_code == 202
            while True:
                status = (await http.get(f"/v1/users/{USER}/demo")).json()
                if status["state"] != "initializing":
                    break
                await trio.sleep(0.1)
            assert status["state"] == "live", status
            text = await _scrape(http)
            assert USER not in text

            types, samples = _parse(text)
            by_kind: dict[str, float] = defaultdict(float)
            for (name, labels), value in samples.items():
                if name == "sim_interactions" and dict(labels)["status"] == "sent":
                    by_kind[dict(labels)["kind"]] += value
            assert by_kind["video"] == 5
            assert by_kind["comment"] + by_kind["dm"] >= 295  # live items may have joined
            assert _value(samples, "sim_interactions", kind="video", status="failed") == 0
            assert _value(samples, "sim_generated_interactions_total", kind="video") == 5

            ok = _value(samples, "sim_deliveries_total", outcome="ok")
            retry = _value(samples, "sim_deliveries_total", outcome="retry")
            assert ok >= TOTAL / 10 and retry >= 1
            assert _value(samples, "sim_delivery_items_total", outcome="ok") >= TOTAL
            assert _value(samples, "sim_delivery_duration_seconds_count", outcome="ok") == ok
            assert _value(samples, "sim_delivery_duration_seconds_count", outcome="retry") == retry

            assert _value(samples, "sim_recorder_batches_total") >= 1
            assert _value(samples, "sim_recorder_batch_rows_sum") >= TOTAL
            assert _value(samples, "sim_recorder_batch_duration_seconds_count") >= 1
            assert _value(samples, "sim_recorder_failures_total") == 0

            assert _value(samples, "sim_db_pool_connections") >= 1
            assert _value(samples, "sim_db_pool_max_connections") == settings.pool_max_size
            assert _value(samples, "sim_db_pool_waiting_requests") == 0
            idle = _value(samples, "sim_db_pool_idle_connections")
            assert 0 <= idle <= _value(samples, "sim_db_pool_connections"), idle
            assert _value(samples, "sim_demo_users", state="live") == 1
            assert _value(samples, "sim_demo_users", state="disabled") == 0
            assert _value(samples, "sim_generator_live_rate_per_second") == 30 / 60

            assert (await http.delete(f"/v1/users/{USER}/demo")).status_code == 200
            _, samples = _parse(await _scrape(http))
            assert _value(samples, "sim_demo_users", state="disabled") == 1
            assert _value(samples, "sim_demo_users", state="live") == 0
            assert _value(samples, "sim_generator_live_rate_per_second") == 0
            assert types["sim_delivery_duration_seconds"] == "histogram"
